//! Byte counting on the wire, for progress and the on-the-wire totals in reports.
//!
//! Wrap the TCP stream (below TLS) to count what really crossed the network, record
//! headers and all; wrap the TLS stream to count payload.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Shared counters of bytes read and written on a connection. Clones share the counts,
/// so a progress reporter can hold one while the connection task holds another.
#[derive(Clone, Default, Debug)]
pub struct WireCounter {
    counts: Arc<Counts>,
}

#[derive(Default, Debug)]
struct Counts {
    read: AtomicU64,
    written: AtomicU64,
}

impl WireCounter {
    /// Bytes read from the wrapped stream so far.
    pub fn read(&self) -> u64 {
        self.counts.read.load(Ordering::Relaxed)
    }

    /// Bytes written to the wrapped stream so far.
    pub fn written(&self) -> u64 {
        self.counts.written.load(Ordering::Relaxed)
    }

    /// Bytes in both directions.
    pub fn total(&self) -> u64 {
        self.read() + self.written()
    }

    fn add_read(&self, n: usize) {
        self.counts.read.fetch_add(n as u64, Ordering::Relaxed);
    }

    fn add_written(&self, n: usize) {
        self.counts.written.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// A stream that counts every byte passing through it into a [`WireCounter`].
#[derive(Debug)]
pub struct Counted<S> {
    inner: S,
    counter: WireCounter,
}

impl<S> Counted<S> {
    pub fn new(inner: S, counter: WireCounter) -> Self {
        Counted { inner, counter }
    }

    pub fn counter(&self) -> &WireCounter {
        &self.counter
    }

    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    pub fn into_inner(self) -> S {
        self.inner
    }
}

// `S: Unpin` keeps the projection safe without `unsafe` or a pin-projection crate; every
// stream Ferry wraps (TcpStream, TLS streams over it) is Unpin.
impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = result {
            this.counter.add_read(buf.filled().len() - before);
        }
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = result {
            this.counter.add_written(n);
        }
        result
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = result {
            this.counter.add_written(n);
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn counts_exact_bytes_both_ways_and_shares_them_with_clones() {
        let (near, mut far) = tokio::io::duplex(64);
        let counter = WireCounter::default();
        let observer = counter.clone();
        let mut counted = Counted::new(near, counter);

        let payload = vec![7u8; 1000];
        let writer = async {
            counted.write_all(&payload).await.unwrap();
            // A vectored write counts what the inner stream took, which may be less than
            // offered; the rest goes through poll_write.
            let slices = [IoSlice::new(b"abc"), IoSlice::new(b"de")];
            let took = counted.write_vectored(&slices).await.unwrap();
            counted.write_all(&b"abcde"[took..]).await.unwrap();
            counted.flush().await.unwrap();
            let mut back = [0u8; 300];
            counted.read_exact(&mut back).await.unwrap();
            counted
        };
        let peer = async {
            let mut got = vec![0u8; 1005];
            far.read_exact(&mut got).await.unwrap();
            far.write_all(&[1u8; 300]).await.unwrap();
            far
        };
        let (counted, _far) = tokio::join!(writer, peer);

        assert_eq!(observer.written(), 1005);
        assert_eq!(observer.read(), 300);
        assert_eq!(observer.total(), 1305);
        assert_eq!(counted.counter().total(), 1305);
    }
}
