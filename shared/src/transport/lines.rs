//! Newline-delimited JSON over a byte stream (TCP, Unix sockets, pipes):
//! the convention of many JSON-RPC TCP servers and of IPC endpoints. The
//! rules are on [`Lines`].

use std::io;

use bytes::{BufMut, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Bytes, Utf8Bytes};
use tokio_util::codec::{Decoder, Encoder, Framed};

use super::{Inbound, Transport};
use crate::peer::CloseReason;

/// The read buffer a [`Lines`] starts with (2 KiB; it grows for longer lines).
pub const DEFAULT_READ_BUFFER: usize = 2 << 10;

/// Written bytes are flushed once this many are buffered (the engine also
/// flushes after each burst).
const WRITE_BOUNDARY: usize = 64 << 10;

/// Why reading or writing lines failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LineError {
    /// A line went past the limit before its `\n`; raise the limit
    /// (`max_message_size`) if such messages are expected.
    #[error("a line of more than {max} bytes ({size} read without a newline) exceeds the limit")]
    TooLong {
        /// Bytes read of it.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The socket failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Splits a byte stream into lines, and writes frames as lines, as
/// [`Lines`] describes.
#[derive(Debug, Clone)]
pub struct LineCodec {
    max: usize,
    /// How far the buffer was searched for `\n` already.
    searched: usize,
}

impl LineCodec {
    /// A codec that refuses lines longer than `max` bytes (without the
    /// newline).
    pub fn new(max: usize) -> Self {
        LineCodec { max, searched: 0 }
    }

    /// The longest line accepted.
    pub fn max_line(&self) -> usize {
        self.max
    }
}

impl Decoder for LineCodec {
    type Item = Bytes;
    type Error = LineError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, LineError> {
        loop {
            let Some(at) = memchr::memchr(b'\n', &buf[self.searched..]) else {
                self.searched = buf.len();
                // `max` bytes and a `\r` may still end well.
                if buf.len() > self.max + 1 {
                    return Err(LineError::TooLong { size: buf.len(), max: self.max });
                }
                return Ok(None);
            };
            let end = self.searched + at;
            self.searched = 0;
            let mut line = buf.split_to(end + 1);
            line.truncate(end);
            if line.last() == Some(&b'\r') {
                line.truncate(end - 1);
            }
            if line.len() > self.max {
                return Err(LineError::TooLong { size: line.len(), max: self.max });
            }
            if !line.iter().all(u8::is_ascii_whitespace) {
                return Ok(Some(line.freeze()));
            }
        }
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, LineError> {
        if let Some(line) = self.decode(buf)? {
            return Ok(Some(line));
        }
        self.searched = 0;
        let rest = buf.split();
        Ok((!rest.iter().all(u8::is_ascii_whitespace)).then(|| rest.freeze()))
    }
}

impl Encoder<Utf8Bytes> for LineCodec {
    type Error = LineError;

    fn encode(&mut self, text: Utf8Bytes, dst: &mut BytesMut) -> Result<(), LineError> {
        dst.reserve(text.len() + 1);
        let start = dst.len();
        dst.extend_from_slice(text.as_bytes());
        if memchr::memchr2(b'\n', b'\r', text.as_bytes()).is_some() {
            for byte in &mut dst[start..] {
                if matches!(*byte, b'\n' | b'\r') {
                    *byte = b' ';
                }
            }
        }
        dst.put_u8(b'\n');
        Ok(())
    }
}

/// A byte stream carrying newline-delimited JSON: a [`Transport`] for TCP,
/// Unix sockets and pipes.
///
/// - a **line** is the bytes up to `\n`; a `\r` before it is dropped (`\r\n`
///   is accepted), and a line of only whitespace is skipped;
/// - a line longer than the **limit** is not read: the stream fails with
///   [`LineError::TooLong`] (the engine closes the connection, answering
///   -32600 with `"id": null` first when it answers malformed frames), so a
///   peer that never sends `\n` costs at most the limit in memory;
/// - bytes left without a final `\n` when the stream ends are one last line;
/// - the end of the stream is the end of the other side's **input**, not
///   of the connection: what it sent is still answered, then the connection
///   closes (so `echo '{..}' | nc -N HOST PORT` gets its answer);
/// - going out, each frame is written followed by `\n`; a raw `\n` or `\r`
///   inside it (only possible as whitespace between JSON tokens: inside a
///   JSON string they must be escaped) is written as a space, so a frame is
///   always one line and means the same JSON.
///
/// There are no pings and no close frames: keep-alive is the application's
/// (a server's `app_heartbeat`), and closing shuts the write half down.
///
/// ```no_run
/// use std::sync::Arc;
/// use switchboard_shared::transport::Lines;
/// use switchboard_shared::{ConnectionInfo, Methods, PeerConfig, peer};
///
/// # async fn demo() -> std::io::Result<()> {
/// let tcp = tokio::net::TcpStream::connect("127.0.0.1:9000").await?;
/// let peer = peer::spawn(Lines::new(tcp, 1 << 20), Arc::new(Methods::new()), ConnectionInfo::new(), PeerConfig::default());
/// let sum: i64 = peer.call("add", [1, 2]).await.expect("the server answers");
/// # let _ = sum; Ok(()) }
/// ```
#[derive(Debug)]
pub struct Lines<S> {
    framed: Framed<S, LineCodec>,
}

impl<S: AsyncRead + AsyncWrite> Lines<S> {
    /// Lines over `io`, refusing lines longer than `max_line` bytes, with a
    /// read buffer of [`DEFAULT_READ_BUFFER`] bytes to start with.
    pub fn new(io: S, max_line: usize) -> Self {
        Self::with_read_buffer(io, max_line, DEFAULT_READ_BUFFER)
    }

    /// Lines over `io` with a read buffer of `read_buffer` bytes to start
    /// with (held for the connection's life; it grows for longer lines).
    pub fn with_read_buffer(io: S, max_line: usize, read_buffer: usize) -> Self {
        let mut framed = Framed::with_capacity(io, LineCodec::new(max_line), read_buffer);
        framed.set_backpressure_boundary(WRITE_BOUNDARY);
        Lines { framed }
    }

    /// The byte stream (to read its addresses, say).
    pub fn get_ref(&self) -> &S {
        self.framed.get_ref()
    }
}

impl<S> Transport for Lines<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Frame = Utf8Bytes;
    type Error = LineError;
    type Io = Framed<S, LineCodec>;

    fn into_io(self) -> Self::Io {
        self.framed
    }

    fn text(text: Utf8Bytes) -> Utf8Bytes {
        text
    }

    fn ping() -> Option<Utf8Bytes> {
        None
    }

    fn close(_code: CloseCode, _reason: Utf8Bytes) -> Option<Utf8Bytes> {
        None
    }

    fn read(item: Option<Result<Bytes, LineError>>) -> Inbound {
        match item {
            // A script's `echo '{..}' | nc -N` half-closes after its request: answer it.
            None => Inbound::EndOfInput,
            Some(Ok(line)) => Inbound::Binary(line),
            Some(Err(LineError::TooLong { size, max })) => Inbound::TooBig { size, max },
            Some(Err(LineError::Io(e))) => match e.kind() {
                io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted | io::ErrorKind::BrokenPipe => {
                    Inbound::Ended(CloseReason::Remote { code: None, reason: e.to_string() })
                }
                _ => Inbound::Ended(CloseReason::Transport(e.to_string())),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(codec: &mut LineCodec, input: &[u8]) -> Vec<Result<String, String>> {
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(line)) => out.push(Ok(String::from_utf8(line.to_vec()).unwrap())),
                Ok(None) => break,
                Err(e) => {
                    out.push(Err(e.to_string()));
                    break;
                }
            }
        }
        out
    }

    #[test]
    fn lines_end_at_newline_crlf_is_accepted_and_blank_lines_are_skipped() {
        let mut codec = LineCodec::new(100);
        let got = lines(&mut codec, b"{\"a\":1}\n\r\n  \n{\"b\":2}\r\n{\"c\"");
        assert_eq!(got, [Ok("{\"a\":1}".to_owned()), Ok("{\"b\":2}".to_owned())]);
    }

    #[test]
    fn a_line_is_found_when_its_newline_arrives_in_a_later_read() {
        let mut codec = LineCodec::new(100);
        let mut buf = BytesMut::from(&b"{\"a\":"[..]);
        assert!(codec.decode(&mut buf).unwrap().is_none());
        buf.extend_from_slice(b"1}\n");
        assert_eq!(codec.decode(&mut buf).unwrap().unwrap(), &b"{\"a\":1}"[..]);
    }

    #[test]
    fn a_line_over_the_limit_fails_with_or_without_its_newline() {
        assert_eq!(lines(&mut LineCodec::new(4), b"12345\n").len(), 1);
        assert!(lines(&mut LineCodec::new(4), b"12345\n")[0].is_err());
        assert!(lines(&mut LineCodec::new(4), b"123456")[0].is_err());
        assert_eq!(lines(&mut LineCodec::new(4), b"1234\r\n"), [Ok("1234".to_owned())]);
        assert!(lines(&mut LineCodec::new(4), b"12345").is_empty(), "4 bytes and a \\r may still come");
    }

    #[test]
    fn the_rest_at_the_end_of_the_stream_is_a_last_line() {
        let mut codec = LineCodec::new(100);
        let mut buf = BytesMut::from(&b"{}\n[1]"[..]);
        assert_eq!(codec.decode_eof(&mut buf).unwrap().unwrap(), &b"{}"[..]);
        assert_eq!(codec.decode_eof(&mut buf).unwrap().unwrap(), &b"[1]"[..]);
        assert!(codec.decode_eof(&mut buf).unwrap().is_none());
    }

    #[test]
    fn a_frame_is_written_as_one_line_whatever_whitespace_it_holds() {
        let mut codec = LineCodec::new(100);
        let mut out = BytesMut::new();
        codec.encode(Utf8Bytes::from_static("{\"a\":\n1}"), &mut out).unwrap();
        codec.encode(Utf8Bytes::from_static("[2]"), &mut out).unwrap();
        assert_eq!(&out[..], b"{\"a\": 1}\n[2]\n");
    }
}
