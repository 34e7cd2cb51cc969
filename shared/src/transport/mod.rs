//! What a connection runs over: the seam between the peer engine and the
//! socket.
//!
//! Terms:
//! - a **frame** is one JSON text: one WebSocket text message, or one line
//!   of a newline-delimited byte stream;
//! - a **transport** becomes one **I/O object**, a sink that takes frames
//!   out and a stream that yields what was read, driven by the connection's
//!   task alone (not split in two halves: each frame written would take the
//!   halves' lock); [`Transport::read`] turns each read into an [`Inbound`]
//!   event the engine understands (a text, the other side's close, a message
//!   over the size limit...);
//! - **keep-alive pings** exist on some transports only ([`Transport::ping`]):
//!   on one without them the engine runs no [`Heartbeat`](crate::Heartbeat)
//!   (an idle peer is not "silent", it has no way to say it is alive); use an
//!   application-level heartbeat there (a server's `app_heartbeat`);
//! - a **close frame** carries a code and a reason on some transports only
//!   ([`Transport::close`]); on the others the engine closes the sink (its
//!   write half is shut down, which the other side reads as the end).
//!
//! Three transports come with the crate: [`WebSocketStream`](tokio_tungstenite::WebSocketStream)
//! (`websocket.rs`, either side), [`ServerSocket`] (`server_socket.rs`, a
//! server's side, its text frames written without going through
//! tungstenite) and [`Lines`], newline-delimited JSON over any byte
//! stream (`lines.rs`: TCP, Unix sockets, pipes). The engine is generic over
//! the transport and monomorphized for each: nothing is boxed or converted
//! twice per frame.

mod lines;
mod server_socket;
mod websocket;

use futures_util::{Sink, Stream};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Bytes, Utf8Bytes};

use crate::peer::CloseReason;

pub use lines::{DEFAULT_READ_BUFFER, LineCodec, LineError, Lines};
pub use server_socket::{OUT_KEEP, OUT_LIMIT, OutBuffer, ServerSocket};

/// One read, as the engine sees it.
#[derive(Debug)]
#[non_exhaustive]
pub enum Inbound {
    /// A frame of text: one JSON text.
    Text(Utf8Bytes),
    /// A frame of bytes: taken as JSON text when it is UTF-8, else answered
    /// (or reported) as a -32700 parse error.
    Binary(Bytes),
    /// Traffic that only says the other side is alive (pings, pongs).
    Heard,
    /// The other side closed, with its close code and reason when the
    /// transport carries them; also the end of the stream.
    Closed {
        /// The close code it sent.
        code: Option<u16>,
        /// The reason it gave.
        reason: String,
    },
    /// The other side sends nothing more but may still read: a byte
    /// stream's end (a half-close, `shutdown(Write)`, looks the same as a
    /// close). The engine stops reading, fails our calls still waiting for a
    /// reply, writes the answers to what was received, then closes.
    EndOfInput,
    /// A message over the transport's size limit: the connection is closed
    /// ([`CloseReason::MessageTooBig`]).
    TooBig {
        /// Bytes seen of it (at least; it was not read whole).
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The connection ended otherwise (a reset, a protocol violation, an I/O
    /// error), for this reason.
    Ended(CloseReason),
}

/// A connection the peer engine can run over ([`spawn`](crate::peer::spawn)).
///
/// Implemented for [`WebSocketStream`](tokio_tungstenite::WebSocketStream)
/// and [`Lines`]; implement it for another framing of JSON texts.
pub trait Transport: Send + 'static {
    /// What the sink takes.
    type Frame: Send;
    /// Why writing failed.
    type Error: std::fmt::Display + Send;
    /// Frames out (as a sink) and reads in (as a stream; each item goes
    /// through [`read`](Self::read)).
    type Io: Sink<Self::Frame, Error = Self::Error> + Stream + Unpin + Send + 'static;

    /// The connection as the engine drives it.
    fn into_io(self) -> Self::Io;

    /// A frame carrying one JSON text.
    fn text(text: Utf8Bytes) -> Self::Frame;

    /// A frame carrying one JSON text the engine encoded itself with
    /// serde_json (so UTF-8: a transport may send it without checking
    /// again). The default checks and calls [`text`](Self::text).
    fn encoded(text: Bytes) -> Self::Frame {
        Self::text(Utf8Bytes::try_from(text).expect("the engine encodes UTF-8 JSON"))
    }

    /// Ready when [`start_send_text`](Self::start_send_text) takes a frame.
    /// The default is the sink's `poll_ready`.
    fn poll_ready_text(io: &mut Self::Io, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        std::pin::Pin::new(io).poll_ready(cx)
    }

    /// Sends one JSON text (UTF-8, as [`encoded`](Self::encoded) says) after
    /// [`poll_ready_text`](Self::poll_ready_text) was ready; the sink's flush
    /// writes it out. The default sends [`encoded`](Self::encoded) into the
    /// sink; [`ServerSocket`] frames it straight into its out buffer.
    fn start_send_text(io: &mut Self::Io, text: Bytes) -> Result<(), Self::Error> {
        std::pin::Pin::new(io).start_send(Self::encoded(text))
    }

    /// How this transport frames a text on the wire when that is a header
    /// followed by the text (a server's WebSocket frames are not masked):
    /// the engine then frames the texts it encodes itself into runs of
    /// ready bytes, written with [`start_send_framed`](Self::start_send_framed).
    /// `None` (the default): every text goes through
    /// [`start_send_text`](Self::start_send_text).
    fn text_header() -> Option<crate::TextHeader> {
        None
    }

    /// Sends a run of texts framed with [`text_header`](Self::text_header),
    /// after [`poll_ready_text`](Self::poll_ready_text) was ready. Only
    /// called when `text_header` is `Some`; the default fails.
    fn start_send_framed(io: &mut Self::Io, run: Bytes) -> Result<(), Self::Error> {
        let _ = (io, run);
        unreachable!("start_send_framed is only called on a transport with a text_header")
    }

    /// A keep-alive ping; `None` when the transport has no pings (the engine
    /// then runs no heartbeat on it).
    fn ping() -> Option<Self::Frame>;

    /// The frame that closes the connection with `code` and `reason`; `None`
    /// when the transport has none: the engine then closes the sink instead.
    fn close(code: CloseCode, reason: Utf8Bytes) -> Option<Self::Frame>;

    /// What one read of the stream means (`None`: the stream ended).
    fn read(item: Option<<Self::Io as Stream>::Item>) -> Inbound;
}
