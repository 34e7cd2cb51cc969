//! The two halves of a benchmark connection, plain TCP or TLS, for the lean
//! engines (WebSocket and HTTP), which read into and write from their own
//! buffers.
//!
//! Plain TCP splits into owned halves (no lock); a TLS stream is one state
//! machine, so its halves share it through `tokio::io::split`.

use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_rustls::client::TlsStream;

/// A connection before it is split.
pub enum Stream {
    /// Plain TCP.
    Tcp(TcpStream),
    /// TLS on TCP.
    Tls(Box<TlsStream<TcpStream>>),
}

/// The reading half.
pub enum Reader {
    /// Plain TCP.
    Tcp(OwnedReadHalf),
    /// TLS on TCP.
    Tls(ReadHalf<Box<TlsStream<TcpStream>>>),
}

/// The writing half.
pub enum Writer {
    /// Plain TCP.
    Tcp(OwnedWriteHalf),
    /// TLS on TCP.
    Tls(WriteHalf<Box<TlsStream<TcpStream>>>),
}

impl Stream {
    /// The two halves.
    pub fn split(self) -> (Reader, Writer) {
        match self {
            Stream::Tcp(tcp) => {
                let (rd, wr) = tcp.into_split();
                (Reader::Tcp(rd), Writer::Tcp(wr))
            }
            Stream::Tls(tls) => {
                let (rd, wr) = tokio::io::split(tls);
                (Reader::Tls(rd), Writer::Tls(wr))
            }
        }
    }
}

impl Reader {
    /// Reads once into `buf[*end..]` after making room for `need` bytes from
    /// `*start` (what is unread, `buf[*start..*end]`, moves to the front
    /// when that gives room, and `buf` grows when it must); returns the
    /// bytes read (0: the peer closed).
    pub async fn read_more(
        &mut self,
        buf: &mut Vec<u8>,
        start: &mut usize,
        end: &mut usize,
        need: usize,
    ) -> Result<usize, String> {
        if *start == *end {
            *start = 0;
            *end = 0;
        }
        if buf.len() - *start < need || (*start > 0 && buf.len() - *end < 1024) {
            buf.copy_within(*start..*end, 0);
            *end -= *start;
            *start = 0;
        }
        if buf.len() < need {
            buf.resize(need, 0);
        }
        let n = self.read(&mut buf[*end..]).await.map_err(|e| format!("receive: {e}"))?;
        *end += n;
        Ok(n)
    }

    /// Reads what is there into `buf` (0: the peer closed).
    pub async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Reader::Tcp(rd) => rd.read(buf).await,
            Reader::Tls(rd) => rd.read(buf).await,
        }
    }
}

impl Writer {
    /// Writes all of `buf`.
    pub async fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        match self {
            Writer::Tcp(wr) => wr.write_all(buf).await,
            // rustls buffers the records; flushing sends them now.
            Writer::Tls(wr) => {
                wr.write_all(buf).await?;
                wr.flush().await
            }
        }
    }
}
