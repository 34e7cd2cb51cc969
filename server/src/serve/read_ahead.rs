//! An adaptive read-ahead layer under the WebSocket, so that idle
//! connections cost little memory and busy ones few system calls.
//!
//! tungstenite reads into a buffer of fixed capacity that lives as long as
//! the connection, and caps every `read()` at that size. A small buffer keeps
//! ten thousand idle sockets cheap, but then a 16 KiB message takes eight
//! system calls. [`ReadAhead`] sits between the socket and tungstenite:
//!
//! - **pass-through** (the resting state): reads go straight into
//!   tungstenite's buffer; nothing extra is allocated;
//! - **read-ahead**: when a read fills all the room tungstenite offered, more
//!   is probably waiting, so the next reads take up to [`READ_AHEAD`] bytes at
//!   once into a buffer of our own and serve tungstenite from it. When the
//!   socket has nothing more (a read would wait), the buffer is freed and the
//!   layer is back to pass-through.

use std::cell::Cell;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes taken from the socket per read while a connection is busy.
pub(crate) const READ_AHEAD: usize = 64 << 10;

/// A stream with an adaptive read-ahead buffer (see the module docs).
#[derive(Debug)]
pub(crate) struct ReadAhead<S> {
    inner: S,
    /// Bytes read ahead and not yet handed out: `buf[pos..len]`.
    buf: Option<Box<[u8]>>,
    pos: usize,
    len: usize,
    busy: bool,
}

impl<S> ReadAhead<S> {
    /// Wraps `inner`, starting in pass-through.
    pub(crate) fn new(inner: S) -> Self {
        ReadAhead { inner, buf: None, pos: 0, len: 0, busy: false }
    }

    /// Whether a read-ahead buffer is allocated right now.
    #[cfg(test)]
    fn is_reading_ahead(&self) -> bool {
        self.buf.is_some()
    }

    fn serve_buffered(&mut self, out: &mut ReadBuf<'_>) -> bool {
        let Some(buf) = &self.buf else { return false };
        if self.pos == self.len {
            return false;
        }
        let n = out.remaining().min(self.len - self.pos);
        out.put_slice(&buf[self.pos..self.pos + n]);
        self.pos += n;
        true
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ReadAhead<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, out: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.serve_buffered(out) {
            return Poll::Ready(Ok(()));
        }
        if !this.busy || out.remaining() >= READ_AHEAD {
            let room = out.remaining();
            let before = out.filled().len();
            ready!(Pin::new(&mut this.inner).poll_read(cx, out))?;
            // All the room was used: the socket probably holds more.
            this.busy = room > 0 && out.filled().len() - before == room;
            return Poll::Ready(Ok(()));
        }
        let buf = this.buf.get_or_insert_with(take_spare);
        let mut ahead = ReadBuf::new(buf);
        match Pin::new(&mut this.inner).poll_read(cx, &mut ahead) {
            Poll::Pending => {
                // Drained: give the memory back until the next burst.
                give_back(this.buf.take());
                this.busy = false;
                Poll::Pending
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Ready(Ok(())) => {
                (this.pos, this.len) = (0, ahead.filled().len());
                if this.len == 0 {
                    give_back(this.buf.take());
                    this.busy = false;
                    return Poll::Ready(Ok(()));
                }
                this.serve_buffered(out);
                Poll::Ready(Ok(()))
            }
        }
    }
}

impl<S> Drop for ReadAhead<S> {
    fn drop(&mut self) {
        give_back(self.buf.take());
    }
}

thread_local! {
    /// One spare read-ahead buffer per worker thread. Bursts on any
    /// connection reuse it, instead of each burst allocating 64 KiB and
    /// freeing it after, which makes the allocator shrink and regrow its heap
    /// (page faults cost a sixth of a 16 KiB echo server's time).
    static SPARE: Cell<Option<Box<[u8]>>> = const { Cell::new(None) };
}

fn take_spare() -> Box<[u8]> {
    SPARE.with(Cell::take).unwrap_or_else(|| vec![0; READ_AHEAD].into_boxed_slice())
}

fn give_back(buf: Option<Box<[u8]>>) {
    if let Some(buf) = buf {
        // Keeps one; a second spare is freed.
        drop(SPARE.with(|spare| spare.replace(Some(buf))));
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ReadAhead<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn small_reads_pass_through_without_a_buffer() {
        let (mut tx, rx) = tokio::io::duplex(1 << 20);
        let mut rx = ReadAhead::new(rx);
        tx.write_all(b"hello").await.unwrap();
        let mut out = [0u8; 64];
        let n = rx.read(&mut out).await.unwrap();
        assert_eq!(&out[..n], b"hello");
        assert!(!rx.is_reading_ahead());
    }

    #[tokio::test]
    async fn a_burst_is_read_ahead_and_delivered_in_order_then_the_buffer_is_freed() {
        let (mut tx, rx) = tokio::io::duplex(1 << 20);
        let mut rx = ReadAhead::new(rx);
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        tx.write_all(&data).await.unwrap();
        let mut got = Vec::new();
        let mut chunk = [0u8; 2048];
        let mut saw_read_ahead = false;
        while got.len() < data.len() {
            let n = rx.read(&mut chunk).await.unwrap();
            got.extend_from_slice(&chunk[..n]);
            saw_read_ahead |= rx.is_reading_ahead();
        }
        assert_eq!(got, data);
        assert!(saw_read_ahead, "a burst larger than the caller's buffer is read ahead");
        // Nothing more is waiting: the next read frees the buffer.
        let pending = tokio::time::timeout(std::time::Duration::from_millis(20), rx.read(&mut chunk)).await;
        assert!(pending.is_err());
        assert!(!rx.is_reading_ahead());
        drop(tx);
        assert_eq!(rx.read(&mut chunk).await.unwrap(), 0, "end of stream passes through");
    }
}
