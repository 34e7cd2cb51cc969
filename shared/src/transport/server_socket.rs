//! The server side of a WebSocket, with its text frames written by the
//! engine itself.
//!
//! Terms:
//! - the **out buffer** ([`OutBuffer`]) sits between tungstenite and the
//!   socket and holds every byte on its way out. Data frames (JSON texts)
//!   are framed here and appended to it directly: a server's frames are not
//!   masked, so the frame is a 2-10 byte header and the text, and going
//!   through tungstenite (a `Message`, its frame, its own buffer) cost a
//!   pushed notification more than its encoding. Runs of frames the
//!   engine framed itself are not copied: they are written from where they
//!   are, in order with the rest (vectored writes). Control frames (pings,
//!   pongs, the close) still come from tungstenite, whose writes land in
//!   the same buffer;
//! - a write into the out buffer is **whole or nothing**: it takes all the
//!   bytes offered or none (`WouldBlock`), so a frame tungstenite has not
//!   handed over yet stays whole in tungstenite's buffer, and frames
//!   appended meanwhile can never land inside it;
//! - the out buffer takes more bytes while it holds less than [`OUT_LIMIT`];
//!   past that, it first writes to the socket, and waits when the socket
//!   does not drain. Its room is kept while it is being written in the
//!   middle of a burst; a flush (the end of a burst) that empties it gives
//!   back a buffer grown past [`OUT_KEEP`], so an idle connection holds at
//!   most that. The limit is tungstenite's default write buffer: a big
//!   answer costs one system call per 128 KiB, not per frame.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, BufMut, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::Error as WsError;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Bytes, Message, Utf8Bytes};

use super::{Inbound, Transport};

/// The out buffer takes more bytes while it holds less than this.
pub const OUT_LIMIT: usize = 128 << 10;

/// An emptied out buffer bigger than this is given back.
pub const OUT_KEEP: usize = 4 << 10;

/// A byte stream with an out buffer the engine writes frames into (see the
/// module docs). Reads pass straight through.
#[derive(Debug)]
pub struct OutBuffer<S> {
    inner: S,
    /// Runs of ready frames handed over whole, and cut-off pieces of `out`
    /// before them: written where they are (vectored), not copied. They all
    /// go out before `out`.
    runs: VecDeque<Bytes>,
    /// The bytes in `runs`.
    run_bytes: usize,
    out: BytesMut,
}

/// The most pieces one vectored write takes.
const MAX_SLICES: usize = 64;

impl<S: AsyncWrite + Unpin> OutBuffer<S> {
    fn new(inner: S) -> Self {
        OutBuffer { inner, runs: VecDeque::new(), run_bytes: 0, out: BytesMut::new() }
    }

    /// Writes what the buffer holds until it is empty.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.runs.is_empty() {
            let mut slices = [IoSlice::new(&[]); MAX_SLICES];
            let mut count = 0;
            for run in self.runs.iter().take(MAX_SLICES - 1) {
                slices[count] = IoSlice::new(run);
                count += 1;
            }
            slices[count] = IoSlice::new(&self.out);
            count += 1;
            let mut n = ready!(Pin::new(&mut self.inner).poll_write_vectored(cx, &slices[..count]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            while n > 0 {
                match self.runs.front_mut() {
                    Some(run) if n >= run.len() => {
                        n -= run.len();
                        self.run_bytes -= run.len();
                        self.runs.pop_front();
                    }
                    Some(run) => {
                        run.advance(n);
                        self.run_bytes -= n;
                        n = 0;
                    }
                    None => {
                        self.out.advance(n);
                        n = 0;
                    }
                }
            }
        }
        while !self.out.is_empty() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.out))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.out.advance(n);
        }
        // Empty: the next bytes start at the front again.
        self.out.clear();
        Poll::Ready(Ok(()))
    }

    /// Ready when the buffer takes more: under [`OUT_LIMIT`], or once written down.
    fn poll_room(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.run_bytes + self.out.len() < OUT_LIMIT {
            return Poll::Ready(Ok(()));
        }
        self.poll_drain(cx)
    }

    /// Appends a run of ready frames, to be written from where it is.
    fn put_run(&mut self, run: Bytes) {
        if !self.out.is_empty() {
            let before = self.out.split().freeze();
            self.run_bytes += before.len();
            self.runs.push_back(before);
        }
        self.run_bytes += run.len();
        self.runs.push_back(run);
    }

    /// Appends `text` as one unmasked WebSocket text frame.
    fn put_text(&mut self, text: &[u8]) {
        self.out.reserve(text.len() + 10);
        text_header(&mut self.out, text.len());
        self.out.extend_from_slice(text);
    }
}

/// The header of an unmasked WebSocket text frame of `len` bytes: FIN and
/// opcode 1, then the length in 1, 3 or 9 bytes (RFC 6455, 5.2).
fn text_header(out: &mut BytesMut, len: usize) {
    out.put_u8(0x81);
    match len {
        0..=125 => out.put_u8(len as u8),
        126..=0xFFFF => {
            out.put_u8(126);
            out.put_u16(len as u16);
        }
        _ => {
            out.put_u8(127);
            out.put_u64(len as u64);
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for OutBuffer<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for OutBuffer<S> {
    /// Whole or nothing: tungstenite's frames are never split (module docs).
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        ready!(self.poll_room(cx))?;
        self.out.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_drain(cx))?;
        if self.out.capacity() > OUT_KEEP {
            self.out = BytesMut::new();
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A server's WebSocket connection whose text frames skip tungstenite's
/// writer (see the module docs): the [`Transport`] a hub serves its
/// WebSocket connections with. The bytes on the wire are the same as a
/// [`WebSocketStream`]'s.
///
/// ```no_run
/// use std::sync::Arc;
/// use switchboard_shared::transport::ServerSocket;
/// use switchboard_shared::{ConnectionInfo, Methods, PeerConfig, peer};
///
/// # async fn demo(tcp: tokio::net::TcpStream) {
/// // After the HTTP upgrade has been answered on `tcp`:
/// let socket = ServerSocket::from_raw_socket(tcp, None).await;
/// let peer = peer::spawn(socket, Arc::new(Methods::new()), ConnectionInfo::new(), PeerConfig::default());
/// # let _ = peer; }
/// ```
#[derive(Debug)]
pub struct ServerSocket<S> {
    ws: WebSocketStream<OutBuffer<S>>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> ServerSocket<S> {
    /// The server side of a WebSocket over `stream`, whose upgrade was
    /// already answered. `config` as tungstenite takes it (its write buffer
    /// is not used: the out buffer does that job).
    pub async fn from_raw_socket(stream: S, config: Option<WebSocketConfig>) -> Self {
        Self::from_partially_read(stream, Vec::new(), config).await
    }

    /// [`from_raw_socket`](Self::from_raw_socket) with `part`, bytes already
    /// read from `stream` after the upgrade request, read first.
    pub async fn from_partially_read(stream: S, part: Vec<u8>, config: Option<WebSocketConfig>) -> Self {
        // tungstenite hands every control frame to the out buffer at once.
        let config = config.unwrap_or_default().write_buffer_size(0);
        let ws = WebSocketStream::from_partially_read(OutBuffer::new(stream), part, Role::Server, Some(config)).await;
        ServerSocket { ws }
    }

    /// The byte stream beneath.
    pub fn get_ref(&self) -> &S {
        &self.ws.get_ref().inner
    }
}

type Ws<S> = WebSocketStream<OutBuffer<S>>;

impl<S> Transport for ServerSocket<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Frame = Message;
    type Error = WsError;
    type Io = Ws<S>;

    fn into_io(self) -> Ws<S> {
        self.ws
    }

    fn text(text: Utf8Bytes) -> Message {
        <Ws<S> as Transport>::text(text)
    }

    fn encoded(text: Bytes) -> Message {
        <Ws<S> as Transport>::encoded(text)
    }

    fn ping() -> Option<Message> {
        <Ws<S> as Transport>::ping()
    }

    fn close(code: CloseCode, reason: Utf8Bytes) -> Option<Message> {
        <Ws<S> as Transport>::close(code, reason)
    }

    fn read(item: Option<Result<Message, WsError>>) -> Inbound {
        <Ws<S> as Transport>::read(item)
    }

    #[inline]
    fn poll_ready_text(io: &mut Ws<S>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        io.get_mut().poll_room(cx).map_err(WsError::Io)
    }

    #[inline]
    fn start_send_text(io: &mut Ws<S>, text: Bytes) -> Result<(), WsError> {
        io.get_mut().put_text(&text);
        Ok(())
    }

    fn text_header() -> Option<crate::TextHeader> {
        Some(text_header)
    }

    #[inline]
    fn start_send_framed(io: &mut Ws<S>, run: Bytes) -> Result<(), WsError> {
        io.get_mut().put_run(run);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::{SinkExt, StreamExt};
    use std::future::poll_fn;

    /// Frames written directly and through tungstenite read back, in order,
    /// by a tungstenite client: every length class of the header.
    #[tokio::test]
    async fn text_frames_written_directly_are_read_as_text_messages_in_order() {
        let (ours, theirs) = tokio::io::duplex(1 << 10);
        let server = async {
            let mut io = ServerSocket::from_raw_socket(ours, None).await.into_io();
            for len in [0, 1, 125, 126, 127, 65_535, 65_536, 200_000] {
                let text = Bytes::from("x".repeat(len));
                poll_fn(|cx| ServerSocket::<tokio::io::DuplexStream>::poll_ready_text(&mut io, cx)).await.unwrap();
                ServerSocket::<tokio::io::DuplexStream>::start_send_text(&mut io, text).unwrap();
            }
            // A run of two frames framed beforehand, written from where it is.
            let mut run = BytesMut::new();
            for text in [&b"[1]"[..], &b"[2]"[..]] {
                text_header(&mut run, text.len());
                run.extend_from_slice(text);
            }
            ServerSocket::<tokio::io::DuplexStream>::start_send_framed(&mut io, run.freeze()).unwrap();
            io.send(Message::Ping(Bytes::from_static(b"p"))).await.unwrap();
            ServerSocket::<tokio::io::DuplexStream>::start_send_text(&mut io, Bytes::from_static(b"[\"last\"]"))
                .unwrap();
            io.flush().await.unwrap();
            io
        };
        let client = async {
            let mut ws = WebSocketStream::from_raw_socket(theirs, Role::Client, None).await;
            let mut got = Vec::new();
            while got.len() < 12 {
                match ws.next().await.expect("a message").expect("a good message") {
                    Message::Text(t) => got.push(t.to_string()),
                    Message::Ping(p) => got.push(format!("ping {}", String::from_utf8_lossy(&p))),
                    other => panic!("unexpected {other:?}"),
                }
            }
            got
        };
        let (_io, got) = tokio::join!(server, client);
        let lens: Vec<_> = got[..8].iter().map(String::len).collect();
        assert_eq!(lens, [0, 1, 125, 126, 127, 65_535, 65_536, 200_000]);
        assert_eq!(got[8..], ["[1]", "[2]", "ping p", "[\"last\"]"]);
    }

    #[tokio::test]
    async fn runs_and_copied_bytes_go_out_in_the_order_given_through_partial_writes() {
        let (ours, mut theirs) = tokio::io::duplex(64);
        let mut out = OutBuffer::new(ours);
        let mut expected = Vec::new();
        for i in 0..200u32 {
            let piece = format!("<{i}:{}>", "r".repeat((i % 37) as usize));
            if i % 3 == 0 {
                out.put_run(Bytes::from(piece.clone()));
            } else {
                poll_fn(|cx| Pin::new(&mut out).poll_write(cx, piece.as_bytes())).await.unwrap();
            }
            expected.extend_from_slice(piece.as_bytes());
        }
        let reader = tokio::spawn(async move {
            let mut all = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut theirs, &mut all).await.unwrap();
            all
        });
        tokio::io::AsyncWriteExt::shutdown(&mut out).await.unwrap();
        assert_eq!(out.run_bytes, 0);
        drop(out);
        assert_eq!(String::from_utf8(reader.await.unwrap()).unwrap(), String::from_utf8(expected).unwrap());
    }

    #[tokio::test]
    async fn the_out_buffer_takes_writes_whole_or_not_at_all_and_shrinks_once_written() {
        let (ours, mut theirs) = tokio::io::duplex(64);
        let mut out = OutBuffer::new(ours);
        let big = vec![b'y'; OUT_LIMIT];
        // Under the limit: taken whole, though the pipe holds 64 bytes.
        let n = poll_fn(|cx| Pin::new(&mut out).poll_write(cx, &big)).await.unwrap();
        assert_eq!(n, OUT_LIMIT);
        // At the limit and the pipe full: nothing is taken.
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(Pin::new(&mut out).poll_write(&mut cx, b"z").is_pending());
        let reader = tokio::spawn(async move {
            let mut all = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut theirs, &mut all).await.unwrap();
            all
        });
        tokio::io::AsyncWriteExt::write_all(&mut out, b"z").await.unwrap();
        tokio::io::AsyncWriteExt::flush(&mut out).await.unwrap();
        assert_eq!(out.out.capacity(), 0, "an emptied big buffer is given back");
        tokio::io::AsyncWriteExt::shutdown(&mut out).await.unwrap();
        drop(out);
        let all = reader.await.unwrap();
        assert_eq!(all.len(), OUT_LIMIT + 1);
        assert_eq!(all.last(), Some(&b'z'));
    }
}
