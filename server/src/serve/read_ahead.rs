//! A read-ahead layer under the WebSocket, so that idle connections cost
//! little memory and busy ones few system calls.
//!
//! tungstenite reads into a buffer of fixed capacity that lives as long as
//! the connection, and caps every `read()` at that size. A small buffer keeps
//! ten thousand idle sockets cheap, but then 64 pipelined calls or a 16 KiB
//! message take several system calls. [`ReadAhead`] sits between the socket
//! and tungstenite: every read takes up to [`READ_AHEAD`] bytes into a buffer
//! borrowed from the worker thread (one spare per thread) and serves
//! tungstenite from it; the buffer goes back to the thread as soon as all of
//! it was handed out, or when the socket has nothing more. So a connection
//! holds a buffer only while it has bytes read and not yet taken, and a burst
//! costs one read (the kernel's short read tells tokio the socket is drained).

use std::cell::Cell;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

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
}

impl<S> ReadAhead<S> {
    /// Wraps `inner`, starting in pass-through.
    pub(crate) fn new(inner: S) -> Self {
        ReadAhead { inner, buf: None, pos: 0, len: 0 }
    }

    /// Whether this connection holds a read-ahead buffer right now.
    #[cfg(test)]
    fn is_reading_ahead(&self) -> bool {
        self.buf.is_some()
    }

    /// Gives the buffer back once everything in it was handed out.
    fn release_if_drained(&mut self) {
        if self.pos == self.len {
            give_back(self.buf.take());
        }
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
            this.release_if_drained();
            return Poll::Ready(Ok(()));
        }
        if out.remaining() >= READ_AHEAD {
            return Pin::new(&mut this.inner).poll_read(cx, out);
        }
        let buf = this.buf.get_or_insert_with(take_spare);
        let mut ahead = ReadBuf::new(buf);
        match Pin::new(&mut this.inner).poll_read(cx, &mut ahead) {
            Poll::Pending => {
                give_back(this.buf.take());
                Poll::Pending
            }
            Poll::Ready(Err(e)) => {
                give_back(this.buf.take());
                Poll::Ready(Err(e))
            }
            Poll::Ready(Ok(())) => {
                (this.pos, this.len) = (0, ahead.filled().len());
                this.serve_buffered(out);
                this.release_if_drained();
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

    /// Counts the reads that reach the stream beneath.
    struct Counted<S> {
        inner: S,
        reads: usize,
    }

    impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
        fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, out: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
            let this = self.get_mut();
            this.reads += 1;
            Pin::new(&mut this.inner).poll_read(cx, out)
        }
    }

    #[tokio::test]
    async fn a_burst_bigger_than_the_callers_buffer_takes_one_read_from_the_socket() {
        let (mut tx, rx) = tokio::io::duplex(1 << 20);
        let mut rx = ReadAhead::new(Counted { inner: rx, reads: 0 });
        let data: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
        tx.write_all(&data).await.unwrap();
        let mut got = Vec::new();
        let mut chunk = [0u8; 1024];
        while got.len() < data.len() {
            let n = rx.read(&mut chunk).await.unwrap();
            got.extend_from_slice(&chunk[..n]);
        }
        assert_eq!(got, data);
        assert_eq!(rx.inner.reads, 1, "three 1 KiB reads served from one read of the socket");
        assert!(!rx.is_reading_ahead(), "everything handed out: the buffer went back");
    }

    #[tokio::test]
    async fn small_reads_hold_no_buffer() {
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
