//! The client side of a benchmark connection, in two WebSocket engines and
//! one HTTP engine.
//!
//! Both WebSocket engines open the connection the same way: a TCP connect
//! with `TCP_NODELAY`, for `wss://` the TLS handshake (tokio-rustls, trusting
//! the `--ca` given), then the WebSocket handshake done by tokio-tungstenite.
//!
//! - `Engine::Tungstenite` keeps the tokio-tungstenite stream, split into a
//!   sink and a stream, and sends one `Message` per request (`ws://` only).
//! - `Engine::Lean` (the default) takes the stream back after the
//!   handshake and frames the traffic itself: requests are written straight
//!   into one output buffer (header, mask key, masked payload: no per-call
//!   allocation, one `write` per batch) and replies are parsed in place in a
//!   reusable input buffer. It does the work the protocol requires of a client
//!   (a fresh mask per frame, UTF-8 checked text) and nothing more, so the
//!   generator stays cheaper than the server it measures. [`Rx::texts`]
//!   hands over every whole message one read brought, so a receiver of many
//!   small pushes (a fan-out subscriber) pays one wake-up, one system call and
//!   one clock reading per read, not per message.
//!
//! `http://` and `https://` targets get the lean HTTP/1.1 client of
//! [`crate::http`] instead, behind the same [`Tx`] / [`Rx`]: a message is
//! a POST's body one way, a 200's body the other.
//!
//! The lean reader does not answer pings (benchmark runs are seconds long and
//! the servers measured do not ping), and treats a close frame as the end.

use std::ops::ControlFlow;

use bytes::{Bytes, BytesMut};
use futures_util::{
    SinkExt, StreamExt,
    stream::{SplitSink, SplitStream},
};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpStream,
};
use tokio_tungstenite::{
    WebSocketStream, client_async_with_config,
    tungstenite::{Message, Utf8Bytes, protocol::WebSocketConfig},
};

use crate::http::{HttpRx, HttpTx};
use crate::stream::{Reader, Stream, Writer};
use crate::target::Target;
use crate::tls::Tls;

/// Largest frame or message the lean reader accepts.
const MAX_MESSAGE: usize = 64 << 20;

/// Which client implementation drives the socket after the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Engine {
    /// Hand-rolled framing on the raw TCP stream (fast, the default).
    Lean,
    /// tokio-tungstenite's `WebSocketStream`, split into sink and stream.
    Tungstenite,
}

/// The sending half of a benchmark connection.
pub enum Tx {
    /// Lean engine.
    Lean(LeanTx),
    /// tokio-tungstenite engine.
    Tung(TungTx),
    /// HTTP POST.
    Http(HttpTx),
}

/// The receiving half of a benchmark connection.
pub enum Rx {
    /// Lean engine.
    Lean(LeanRx),
    /// tokio-tungstenite engine.
    Tung(TungRx),
    /// HTTP POST.
    Http(HttpRx),
}

/// Connects to `target` (TLS with `tls` for `wss://` and `https://`), for a
/// WebSocket performs the handshake for `url`, and returns the two halves.
/// `read_buffer` sizes the receive buffer.
pub async fn open(
    engine: Engine,
    target: &Target,
    url: &str,
    read_buffer: usize,
    tls: Option<&Tls>,
) -> Result<(Tx, Rx), String> {
    let addr = target.addr;
    let tcp = TcpStream::connect(addr).await.map_err(|e| format!("connect {addr}: {e}"))?;
    tcp.set_nodelay(true).map_err(|e| format!("nodelay: {e}"))?;
    let stream = match (target.scheme.is_tls(), tls) {
        (false, _) => Stream::Tcp(tcp),
        (true, Some(tls)) => Stream::Tls(Box::new(tls.connect(&target.host, tcp).await?)),
        (true, None) => return Err(format!("{url}: TLS needs --ca FILE (the CA to trust)")),
    };
    if target.scheme.is_http() {
        let (rd, wr) = stream.split();
        let host = match addr.port() {
            80 | 443 => target.host.clone(),
            port if target.host.contains(':') => format!("[{}]:{port}", target.host),
            port => format!("{}:{port}", target.host),
        };
        return Ok((Tx::Http(HttpTx::new(wr, &host, &target.path)), Rx::Http(HttpRx::new(rd, read_buffer))));
    }
    let config = WebSocketConfig::default().read_buffer_size(read_buffer.max(4096));
    let stream = match (engine, stream) {
        (Engine::Tungstenite, Stream::Tcp(tcp)) => {
            let (ws, _response) =
                client_async_with_config(url, tcp, Some(config)).await.map_err(|e| format!("handshake {url}: {e}"))?;
            let (sink, stream) = ws.split();
            return Ok((
                Tx::Tung(TungTx { sink, buf: BytesMut::with_capacity(4096) }),
                Rx::Tung(TungRx { stream, last: Bytes::new() }),
            ));
        }
        (Engine::Tungstenite, Stream::Tls(_)) => {
            return Err(format!("{url}: --engine tungstenite speaks ws:// only; wss:// runs on the lean engine"));
        }
        (Engine::Lean, Stream::Tcp(tcp)) => Stream::Tcp(handshake(url, tcp, config).await?),
        (Engine::Lean, Stream::Tls(tls)) => Stream::Tls(handshake(url, tls, config).await?),
    };
    let (rd, wr) = stream.split();
    let seed = mask_seed(addr);
    Ok((
        Tx::Lean(LeanTx { wr, out: Vec::with_capacity(4096), rng: seed }),
        Rx::Lean(LeanRx { rd, buf: vec![0; read_buffer.max(256)], start: 0, end: 0, frag: Vec::new(), in_frag: false }),
    ))
}

/// The WebSocket handshake on `stream`; the stream back for the lean engine.
async fn handshake<S>(url: &str, stream: S, config: WebSocketConfig) -> Result<S, String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (ws, _response) =
        client_async_with_config(url, stream, Some(config)).await.map_err(|e| format!("handshake {url}: {e}"))?;
    // The server speaks only when spoken to, so nothing past the handshake
    // response has been read: the raw stream is clean.
    Ok(ws.into_inner())
}

fn mask_seed(addr: std::net::SocketAddr) -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0x9E37_79B9_7F4A_7C15);
    let mut h = t ^ u64::from(addr.port()).rotate_left(32) ^ 0xD1B5_4A32_D192_ED03;
    h ^= h >> 33;
    h = h.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    h ^= h >> 33;
    h | 1
}

impl Tx {
    /// Queues one text frame whose payload is `a`, `b` and `c` back to back.
    /// Nothing is guaranteed to reach the socket before [`Tx::flush`].
    pub async fn push3(&mut self, a: &[u8], b: &[u8], c: &[u8]) -> Result<(), String> {
        match self {
            Tx::Lean(tx) => {
                tx.push3(a, b, c);
                Ok(())
            }
            Tx::Tung(tx) => tx.push3(a, b, c).await,
            Tx::Http(tx) => {
                tx.push3(a, b, c);
                Ok(())
            }
        }
    }

    /// Writes everything queued to the socket.
    pub async fn flush(&mut self) -> Result<(), String> {
        match self {
            Tx::Lean(tx) => tx.flush().await,
            Tx::Tung(tx) => tx.sink.flush().await.map_err(|e| format!("send: {e}")),
            Tx::Http(tx) => tx.flush().await,
        }
    }
}

impl Rx {
    /// The next text message's payload; `None` once the peer closed.
    /// Binary frames are an error; pings and pongs are skipped. Over HTTP,
    /// the next response's body (a status other than 200 is an error).
    pub async fn next_text(&mut self) -> Result<Option<&[u8]>, String> {
        match self {
            Rx::Lean(rx) => rx.next_text().await,
            Rx::Tung(rx) => rx.next_text().await,
            Rx::Http(rx) => rx.next_body().await,
        }
    }

    /// Waits for at least one whole text message, then hands `f` every whole
    /// message that has arrived, in order, without waiting for more (the
    /// lean engine: all that one read brought, so a busy receiver pays one
    /// wake-up and one system call for many messages; the other engines:
    /// one message). When `f` breaks, the messages after that one stay for
    /// the next call or [`Rx::next_text`]. Same errors as [`Rx::next_text`].
    pub async fn texts(&mut self, f: &mut dyn FnMut(&[u8]) -> ControlFlow<()>) -> Result<Batch, String> {
        if let Rx::Lean(rx) = self {
            return rx.texts(f).await;
        }
        Ok(match self.next_text().await? {
            None => Batch::Closed,
            Some(text) if f(text).is_break() => Batch::Stopped,
            Some(_) => Batch::Drained,
        })
    }
}

/// tokio-tungstenite sending half.
pub struct TungTx {
    sink: SplitSink<WebSocketStream<TcpStream>, Message>,
    buf: BytesMut,
}

impl TungTx {
    async fn push3(&mut self, a: &[u8], b: &[u8], c: &[u8]) -> Result<(), String> {
        // One shared buffer carved into frames: after warm-up the split-off
        // pieces are dropped by the time we reserve again, so it is reused.
        self.buf.reserve(a.len() + b.len() + c.len());
        self.buf.extend_from_slice(a);
        self.buf.extend_from_slice(b);
        self.buf.extend_from_slice(c);
        let text = Utf8Bytes::try_from(self.buf.split().freeze()).map_err(|e| format!("request is not UTF-8: {e}"))?;
        self.sink.feed(Message::Text(text)).await.map_err(|e| format!("send: {e}"))
    }
}

/// tokio-tungstenite receiving half.
pub struct TungRx {
    stream: SplitStream<WebSocketStream<TcpStream>>,
    last: Bytes,
}

impl TungRx {
    async fn next_text(&mut self) -> Result<Option<&[u8]>, String> {
        loop {
            match self.stream.next().await {
                Some(Ok(Message::Text(t))) => {
                    self.last = t.into();
                    return Ok(Some(&self.last));
                }
                Some(Ok(Message::Close(_))) | None => return Ok(None),
                Some(Ok(Message::Binary(_))) => return Err("unexpected binary frame".into()),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(format!("receive: {e}")),
            }
        }
    }
}

/// Lean sending half: frames go straight into one buffer.
pub struct LeanTx {
    wr: Writer,
    out: Vec<u8>,
    rng: u64,
}

impl LeanTx {
    fn next_key(&mut self) -> [u8; 4] {
        // xorshift64*: a fresh, unpredictable-enough key per frame.
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        ((x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) as u32).to_ne_bytes()
    }

    fn push3(&mut self, a: &[u8], b: &[u8], c: &[u8]) {
        let len = a.len() + b.len() + c.len();
        let out = &mut self.out;
        out.reserve(len + 14);
        out.push(0x81); // FIN, text
        if len < 126 {
            out.push(0x80 | len as u8);
        } else if len <= 0xFFFF {
            out.push(0x80 | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            out.push(0x80 | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
        let key = self.next_key();
        let out = &mut self.out;
        out.extend_from_slice(&key);
        let start = out.len();
        out.extend_from_slice(a);
        out.extend_from_slice(b);
        out.extend_from_slice(c);
        apply_mask(&mut out[start..], key);
    }

    async fn flush(&mut self) -> Result<(), String> {
        if !self.out.is_empty() {
            self.wr.write_all(&self.out).await.map_err(|e| format!("send: {e}"))?;
            self.out.clear();
        }
        Ok(())
    }
}

/// XORs `buf` with the 4-byte mask `key`, starting at key byte 0.
pub fn apply_mask(buf: &mut [u8], key: [u8; 4]) {
    let k = u64::from_ne_bytes([key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3]]);
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(w) ^ k).to_ne_bytes());
    }
    // The remainder starts at a multiple of 8, so key index = i % 4.
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= key[i % 4];
    }
}

/// Lean receiving half: frames are parsed in place.
pub struct LeanRx {
    rd: Reader,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    frag: Vec<u8>,
    in_frag: bool,
}

/// A parsed frame header: (fin, opcode, mask key, header length, payload length).
type Header = (bool, u8, Option<[u8; 4]>, usize, usize);

/// Parses a frame header from `b`; `Ok(None)` when more bytes are needed.
fn parse_header(b: &[u8]) -> Result<Option<Header>, String> {
    if b.len() < 2 {
        return Ok(None);
    }
    let fin = b[0] & 0x80 != 0;
    if b[0] & 0x70 != 0 {
        return Err("frame with reserved bits set".into());
    }
    let opcode = b[0] & 0x0F;
    let masked = b[1] & 0x80 != 0;
    let (len, mut hdr) = match b[1] & 0x7F {
        126 => {
            if b.len() < 4 {
                return Ok(None);
            }
            (u16::from_be_bytes([b[2], b[3]]) as usize, 4)
        }
        127 => {
            if b.len() < 10 {
                return Ok(None);
            }
            let mut l = [0u8; 8];
            l.copy_from_slice(&b[2..10]);
            let l = u64::from_be_bytes(l);
            if l > MAX_MESSAGE as u64 {
                return Err(format!("frame of {l} bytes is too large"));
            }
            (l as usize, 10)
        }
        n => (n as usize, 2),
    };
    let key = if masked {
        if b.len() < hdr + 4 {
            return Ok(None);
        }
        let k = [b[hdr], b[hdr + 1], b[hdr + 2], b[hdr + 3]];
        hdr += 4;
        Some(k)
    } else {
        None
    };
    Ok(Some((fin, opcode, key, hdr, len)))
}

/// Where [`LeanRx::parse_buffered`] found the next message.
enum Next {
    /// A whole text frame at `buf[p0..p1]` (unmasked).
    InBuf(usize, usize),
    /// A fragmented message, reassembled in `frag`.
    InFrag,
    /// A close frame: the peer is done.
    Closed,
    /// The buffer holds no whole message: read until it holds this many
    /// bytes from `start`.
    NeedMore(usize),
}

/// How [`Rx::texts`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Batch {
    /// Every whole message that had arrived was handed over; more may come.
    Drained,
    /// The handler said stop: the messages after that one stay buffered for
    /// the next call.
    Stopped,
    /// The peer closed the connection.
    Closed,
}

impl LeanRx {
    /// Takes the next whole message out of the buffer without reading the
    /// socket; control frames in the way are consumed.
    fn parse_buffered(&mut self) -> Result<Next, String> {
        loop {
            let avail = &self.buf[self.start..self.end];
            let (fin, opcode, key, hdr, len) = match parse_header(avail)? {
                Some(h) if avail.len() >= h.3 + h.4 => h,
                Some((_, _, _, hdr, len)) => return Ok(Next::NeedMore(hdr + len)),
                None => return Ok(Next::NeedMore(14)),
            };
            let p0 = self.start + hdr;
            let p1 = p0 + len;
            self.start = p1;
            if let Some(key) = key {
                apply_mask(&mut self.buf[p0..p1], key);
            }
            match opcode {
                0x1 if !self.in_frag => {
                    if fin {
                        return Ok(Next::InBuf(p0, p1));
                    }
                    self.in_frag = true;
                    self.frag.clear();
                    self.frag.extend_from_slice(&self.buf[p0..p1]);
                }
                0x0 if self.in_frag => {
                    if self.frag.len() + len > MAX_MESSAGE {
                        return Err("message too large".into());
                    }
                    self.frag.extend_from_slice(&self.buf[p0..p1]);
                    if fin {
                        self.in_frag = false;
                        return Ok(Next::InFrag);
                    }
                }
                0x8 => return Ok(Next::Closed),
                0x9 | 0xA => {}
                op => return Err(format!("unexpected frame opcode {op:#x}")),
            }
        }
    }

    /// The text of a message [`LeanRx::parse_buffered`] found, UTF-8 checked.
    fn text(&self, at: Next) -> Result<&[u8], String> {
        let text = match at {
            Next::InBuf(p0, p1) => &self.buf[p0..p1],
            _ => &self.frag[..],
        };
        std::str::from_utf8(text).map_err(|e| format!("text frame is not UTF-8: {e}"))?;
        Ok(text)
    }

    /// Makes room for `need` bytes from `start` and reads once; false when
    /// the peer closed.
    async fn fill(&mut self, need: usize) -> Result<bool, String> {
        Ok(self.rd.read_more(&mut self.buf, &mut self.start, &mut self.end, need).await? > 0)
    }

    async fn next_text(&mut self) -> Result<Option<&[u8]>, String> {
        loop {
            match self.parse_buffered()? {
                Next::NeedMore(need) => {
                    if !self.fill(need).await? {
                        return Ok(None);
                    }
                }
                Next::Closed => return Ok(None),
                at => return self.text(at).map(Some),
            }
        }
    }

    async fn texts(&mut self, f: &mut dyn FnMut(&[u8]) -> ControlFlow<()>) -> Result<Batch, String> {
        let mut handed = false;
        loop {
            match self.parse_buffered()? {
                // Only one read per call, and none after a message was
                // handed over: every message of one call arrived before it
                // began (so one clock reading serves them all).
                Next::NeedMore(_) if handed => return Ok(Batch::Drained),
                Next::NeedMore(need) => {
                    if !self.fill(need).await? {
                        return Ok(Batch::Closed);
                    }
                }
                Next::Closed => return Ok(Batch::Closed),
                at => {
                    handed = true;
                    if f(self.text(at)?).is_break() {
                        return Ok(Batch::Stopped);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_roundtrip_and_alignment() {
        let key = [1, 2, 3, 4];
        for len in 0..40 {
            let orig: Vec<u8> = (0..len as u8).collect();
            let mut b = orig.clone();
            apply_mask(&mut b, key);
            for (i, (&m, &o)) in b.iter().zip(&orig).enumerate() {
                assert_eq!(m, o ^ key[i % 4]);
            }
            apply_mask(&mut b, key);
            assert_eq!(b, orig);
        }
    }

    #[test]
    fn headers() {
        assert_eq!(parse_header(&[0x81]).unwrap(), None);
        assert_eq!(parse_header(&[0x81, 5]).unwrap(), Some((true, 1, None, 2, 5)));
        assert_eq!(parse_header(&[0x01, 126, 1]).unwrap(), None);
        assert_eq!(parse_header(&[0x01, 126, 1, 0]).unwrap(), Some((false, 1, None, 4, 256)));
        assert_eq!(parse_header(&[0x80, 127, 0, 0, 0, 0, 0, 1, 0, 0]).unwrap(), Some((true, 0, None, 10, 65536)));
        assert_eq!(parse_header(&[0x81, 0x83, 9, 8, 7, 6]).unwrap(), Some((true, 1, Some([9, 8, 7, 6]), 6, 3)));
        assert!(parse_header(&[0xC1, 0]).is_err());
        assert!(parse_header(&[0x82, 127, 0xFF, 0, 0, 0, 0, 0, 0, 0]).is_err());
    }

    /// An unmasked server text frame.
    fn frame(text: &str) -> Vec<u8> {
        let mut f = vec![0x81, text.len() as u8];
        f.extend_from_slice(text.as_bytes());
        f
    }

    /// A lean receiver on one end of a loopback connection, the raw other end.
    async fn pair() -> (Rx, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let (rd, _wr) = Stream::Tcp(client).split();
        let rx = LeanRx { rd, buf: vec![0; 256], start: 0, end: 0, frag: Vec::new(), in_frag: false };
        (Rx::Lean(rx), server)
    }

    /// One `texts` call that keeps every text it is handed in `seen`.
    async fn collect(rx: &mut Rx, seen: &mut Vec<String>) -> Batch {
        let mut keep = |t: &[u8]| {
            seen.push(String::from_utf8(t.to_vec()).unwrap());
            ControlFlow::Continue(())
        };
        rx.texts(&mut keep).await.unwrap()
    }

    #[tokio::test]
    async fn texts_hands_over_what_arrived_and_keeps_a_split_frame_for_later() {
        use tokio::io::AsyncWriteExt;
        let (mut rx, mut server) = pair().await;
        let mut bytes = [frame("one"), frame("two"), frame("three")].concat();
        let tail = bytes.split_off(bytes.len() - 3);
        server.write_all(&bytes).await.unwrap();
        let mut seen = Vec::new();
        // The first read may bring less than was written: call until both whole frames are in.
        while seen.len() < 2 {
            assert_eq!(collect(&mut rx, &mut seen).await, Batch::Drained);
        }
        assert_eq!(seen, ["one", "two"]);
        server.write_all(&tail).await.unwrap();
        let batch = collect(&mut rx, &mut seen).await;
        assert_eq!((batch, seen.last().unwrap().as_str()), (Batch::Drained, "three"));
        drop(server);
        assert_eq!(rx.texts(&mut |_| ControlFlow::Continue(())).await.unwrap(), Batch::Closed);
    }

    #[tokio::test]
    async fn texts_stopped_leaves_the_rest_for_the_next_read() {
        use tokio::io::AsyncWriteExt;
        let (mut rx, mut server) = pair().await;
        server.write_all(&[frame("a"), frame("b"), frame("c")].concat()).await.unwrap();
        let mut first = Vec::new();
        let batch = rx
            .texts(&mut |t| {
                first.push(t.to_vec());
                ControlFlow::Break(())
            })
            .await
            .unwrap();
        assert_eq!((batch, first), (Batch::Stopped, vec![b"a".to_vec()]));
        assert_eq!(rx.next_text().await.unwrap(), Some(&b"b"[..]));
        assert_eq!(rx.next_text().await.unwrap(), Some(&b"c"[..]));
    }
}
