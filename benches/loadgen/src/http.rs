//! The lean HTTP/1.1 client of `http-calls`: JSON-RPC calls by POST on one
//! keep-alive connection, several in flight (pipelined) when asked.
//!
//! Requests are written straight into one output buffer (the head, whose
//! only varying part is `Content-Length`, then the body: one `write` per
//! group); responses are parsed in place in a reusable input buffer, the
//! head by `httparse`, the body by its `Content-Length`. HTTP/1.1 answers
//! pipelined requests in order on the connection, so the bodies come back as
//! a stream of JSON texts, which the `calls` engine checks by id as it does
//! WebSocket frames.
//!
//! Why not hyper's client: it sends one request at a time per connection
//! (no pipelining) and costs a task, a channel and several allocations per
//! request; the generator must stay cheaper than the server it measures.

use crate::stream::{Reader, Writer};

/// Largest response head or body accepted.
const MAX_RESPONSE: usize = 64 << 20;

/// Sending half: requests go straight into one buffer.
pub struct HttpTx {
    wr: Writer,
    /// `POST PATH HTTP/1.1`, `Host` and `Content-Type`, up to `Content-Length: `.
    head: Vec<u8>,
    out: Vec<u8>,
}

impl HttpTx {
    /// A sender of POSTs to `path` on `host` (`HOST[:PORT]` as the `Host` header wants it).
    pub fn new(wr: Writer, host: &str, path: &str) -> Self {
        let head =
            format!("POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: ")
                .into_bytes();
        HttpTx { wr, head, out: Vec::with_capacity(4096) }
    }

    /// Queues one POST whose body is `a`, `b` and `c` back to back.
    pub fn push3(&mut self, a: &[u8], b: &[u8], c: &[u8]) {
        let len = a.len() + b.len() + c.len();
        let mut digits = itoa::Buffer::new();
        self.out.extend_from_slice(&self.head);
        self.out.extend_from_slice(digits.format(len).as_bytes());
        self.out.extend_from_slice(b"\r\n\r\n");
        self.out.extend_from_slice(a);
        self.out.extend_from_slice(b);
        self.out.extend_from_slice(c);
    }

    /// Writes everything queued.
    pub async fn flush(&mut self) -> Result<(), String> {
        if !self.out.is_empty() {
            self.wr.write_all(&self.out).await.map_err(|e| format!("send: {e}"))?;
            self.out.clear();
        }
        Ok(())
    }
}

/// Receiving half: responses parsed in place.
pub struct HttpRx {
    rd: Reader,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

/// A parsed response head: the status and where the body starts and ends.
#[derive(Debug, PartialEq, Eq)]
struct Head {
    status: u16,
    head_len: usize,
    body_len: usize,
}

/// Parses a response head from `b`; `Ok(None)` when more bytes are needed.
fn parse_head(b: &[u8]) -> Result<Option<Head>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(b).map_err(|e| format!("a bad response head: {e}"))? {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => return Ok(None),
    };
    let status = response.code.unwrap_or(0);
    let mut body_len = None;
    for header in response.headers.iter() {
        if header.name.eq_ignore_ascii_case("content-length") {
            let len = std::str::from_utf8(header.value).ok().and_then(|v| v.trim().parse::<usize>().ok());
            body_len = Some(len.ok_or("a bad Content-Length")?);
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err("a chunked response: this client reads Content-Length bodies only".into());
        }
    }
    let body_len = match (status, body_len) {
        (204 | 304, _) | (100..=199, _) => 0,
        (_, Some(len)) => len,
        (_, None) => return Err(format!("HTTP {status} without Content-Length")),
    };
    if body_len > MAX_RESPONSE {
        return Err(format!("a body of {body_len} bytes is too large"));
    }
    Ok(Some(Head { status, head_len, body_len }))
}

impl HttpRx {
    /// A receiver with a buffer of `read_buffer` bytes to start with.
    pub fn new(rd: Reader, read_buffer: usize) -> Self {
        HttpRx { rd, buf: vec![0; read_buffer.max(4096)], start: 0, end: 0 }
    }

    /// The next response's body, which must be a 200's; `None` once the
    /// server closed between responses.
    pub async fn next_body(&mut self) -> Result<Option<&[u8]>, String> {
        let (status, p0, p1) = loop {
            let avail = &self.buf[self.start..self.end];
            let need = match parse_head(avail)? {
                Some(head) if avail.len() >= head.head_len + head.body_len => {
                    let p0 = self.start + head.head_len;
                    let p1 = p0 + head.body_len;
                    self.start = p1;
                    break (head.status, p0, p1);
                }
                Some(head) => head.head_len + head.body_len,
                None if avail.len() >= MAX_RESPONSE => return Err("a response head that never ends".into()),
                None => avail.len() + 1024,
            };
            let n = self.rd.read_more(&mut self.buf, &mut self.start, &mut self.end, need).await?;
            if n == 0 {
                return if self.start == self.end { Ok(None) } else { Err("the server closed mid-response".into()) };
            }
        };
        let body = &self.buf[p0..p1];
        if status != 200 {
            let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
            return Err(format!("HTTP {status}: {text}"));
        }
        Ok(Some(body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads() {
        let ok = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 5\r\n\r\nhello";
        assert_eq!(parse_head(ok).unwrap(), Some(Head { status: 200, head_len: ok.len() - 5, body_len: 5 }));
        assert_eq!(parse_head(&ok[..20]).unwrap(), None);
        let none = b"HTTP/1.1 204 No Content\r\n\r\n";
        assert_eq!(parse_head(none).unwrap(), Some(Head { status: 204, head_len: none.len(), body_len: 0 }));
        assert!(parse_head(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\n\r\n").is_err());
        assert!(parse_head(b"NOT HTTP\r\n\r\n").is_err());
    }
}
