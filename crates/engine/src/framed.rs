//! Frames over a stream: a reader that yields [`Message`]s and a writer task that batches
//! outgoing messages into large writes.
//!
//! The writer is the only owner of the write half; everyone else sends it messages over
//! a bounded channel, which is where backpressure comes from. Under `--bwlimit` the writer
//! (and on the target also the reader) takes tokens from a [`RateLimiter`] for every byte.

use std::io::IoSlice;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use ferry_net::{NetError, TlsPeer};

use ferry_proto::{
    decode, encode_compressed, encode_head, peek_compressed, whole_frame_buffered, Limits, Message,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::error::{io_error, EngineError};
use crate::ratelimit::{RateLimiter, MAX_CHUNK};

/// Bytes gathered before a write: large writes keep TLS records full and syscalls few.
const WRITE_BATCH: usize = 256 * 1024;
/// Default idle time after which the writer sends a heartbeat, well inside the idle
/// timeouts of routers and load balancers (the OpenShift router's default tunnel timeout
/// is 1 h, cloud load balancers cut at 350 s or less).
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(10);
/// How long a session may hear nothing at all (heartbeats included) before it gives up.
pub const DATA_TIMEOUT: Duration = Duration::from_secs(120);

/// Reads whole messages from a stream.
pub struct FrameReader<R> {
    inner: R,
    buf: BytesMut,
    limits: Limits,
    /// Who is at the other end, so that a TLS alert arriving after the handshake (TLS 1.3
    /// reports a refused client certificate only then) reads as what it is.
    peer: Option<TlsPeer>,
    limit: Option<Arc<RateLimiter>>,
    /// Sees every message read, before the caller does (a puller's progress).
    observer: Option<Observer>,
    /// Counts the compressed frames received (a puller's `--compress` report).
    inflated: Option<Arc<Compression>>,
}

/// A look at each message a [`FrameReader`] reads.
pub type Observer = Box<dyn FnMut(&Message) + Send>;

/// The read half of any connection, boxed (see [`FrameReader::boxed`]).
pub type BoxedRead = Box<dyn AsyncRead + Send + Unpin>;

/// A writer task's handle, as [`spawn_writer`] returns it.
pub type WriterTask = tokio::task::JoinHandle<Result<(), EngineError>>;

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(inner: R, limits: Limits) -> Self {
        FrameReader {
            inner,
            buf: BytesMut::with_capacity(512 * 1024),
            limits,
            peer: None,
            limit: None,
            observer: None,
            inflated: None,
        }
    }

    /// Counts each compressed frame read into `counts`: its inner bytes into `raw`, its
    /// bytes as received into `sent`.
    pub fn with_inflated_counts(mut self, counts: Arc<Compression>) -> Self {
        self.inflated = Some(counts);
        self
    }

    /// Shows every message read to `observer` first.
    pub fn with_observer(mut self, observer: Observer) -> Self {
        self.observer = Some(observer);
        self
    }

    /// [`FrameReader::with_observer`] on a reader already in use (it replaces any).
    pub fn observe(&mut self, observer: Observer) {
        self.observer = Some(observer);
    }

    /// The same reader, with what it has buffered, over a boxed stream: one type for
    /// connections of any kind (a joined stream handed to its session).
    pub fn boxed(self) -> FrameReader<BoxedRead>
    where
        R: Send + 'static,
    {
        FrameReader {
            inner: Box::new(self.inner),
            buf: self.buf,
            limits: self.limits,
            peer: self.peer,
            limit: self.limit,
            observer: self.observer,
            inflated: self.inflated,
        }
    }

    /// Reads no faster than `limit` allows (bytes are taken after each read, so the
    /// stream is paused, and TCP pushes back on the peer, until they are paid for).
    pub fn with_limit(mut self, limit: Option<Arc<RateLimiter>>) -> Self {
        self.limit = limit;
        self
    }

    pub fn with_peer(mut self, peer: TlsPeer) -> Self {
        self.peer = Some(peer);
        self
    }

    fn read_error(&self, e: std::io::Error) -> EngineError {
        match &self.peer {
            Some(peer) => match ferry_net::stream_error(peer.clone(), e) {
                NetError::Io { source, .. } => io_error("reading from the peer", source),
                tls => EngineError::from(tls),
            },
            None => io_error("reading from the peer", e),
        }
    }

    /// Whether the next message is already read (so [`FrameReader::next`] will not wait).
    pub fn has_frame(&self) -> bool {
        whole_frame_buffered(&self.buf)
    }

    /// The next message; `Ok(None)` at a clean end of stream between frames.
    pub async fn next(&mut self) -> Result<Option<Message>, EngineError> {
        loop {
            let compressed = match &self.inflated {
                Some(_) => peek_compressed(&self.buf),
                None => None,
            };
            if let Some(message) = decode(&mut self.buf, &self.limits)? {
                if let (Some(counts), Some(frame)) = (&self.inflated, compressed) {
                    counts.raw.fetch_add(frame.raw, Relaxed);
                    counts.sent.fetch_add(frame.sent, Relaxed);
                }
                if let Some(observe) = &mut self.observer {
                    observe(&message);
                }
                return Ok(Some(message));
            }
            if self.buf.capacity() - self.buf.len() < 64 * 1024 {
                self.buf.reserve(256 * 1024);
            }
            let read = tokio::time::timeout(DATA_TIMEOUT, self.inner.read_buf(&mut self.buf))
                .await
                .map_err(|_| {
                    EngineError::new(
                        crate::ExitCode::DataTimeout,
                        format!(
                            "the peer sent nothing for {} s; check the network path (proxy, router) and the peer's logs",
                            DATA_TIMEOUT.as_secs()
                        ),
                    )
                })?
                .map_err(|e| self.read_error(e))?;
            if let (Some(limit), true) = (&self.limit, read > 0) {
                limit.acquire(read).await;
            }
            if read == 0 {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                return Err(EngineError::protocol(format!(
                    "the peer closed the connection in the middle of a frame ({} bytes buffered)",
                    self.buf.len()
                )));
            }
        }
    }

    /// The next message, where the end of the stream is an error.
    pub async fn expect(&mut self, waiting_for: &str) -> Result<Message, EngineError> {
        self.next().await?.ok_or_else(|| {
            EngineError::socket(format!(
                "the peer closed the connection while we waited for {waiting_for}"
            ))
        })
    }
}

/// Sends messages to the writer task.
pub type FrameSender = mpsc::Sender<Message>;

/// Spawns the writer task: it drains `rx`, batching frames into large writes, sends a
/// heartbeat after `heartbeat` of idleness, and shuts the stream down when every sender
/// is gone.
pub fn spawn_writer<W>(
    inner: W,
    capacity: usize,
    heartbeat: Duration,
) -> (
    FrameSender,
    tokio::task::JoinHandle<Result<(), EngineError>>,
)
where
    W: AsyncWrite + Unpin + Send + 'static,
{
    spawn_limited_writer(inner, capacity, heartbeat, None)
}

/// [`spawn_writer`] that waits for `limit`'s tokens before each write, in pieces of at
/// most [`MAX_CHUNK`] bytes.
pub fn spawn_limited_writer<W>(
    inner: W,
    capacity: usize,
    heartbeat: Duration,
    limit: Option<Arc<RateLimiter>>,
) -> (
    FrameSender,
    tokio::task::JoinHandle<Result<(), EngineError>>,
)
where
    W: AsyncWrite + Unpin + Send + 'static,
{
    spawn_compressing_writer(inner, capacity, heartbeat, limit, None)
}

/// zstd level for `--compress`: about 300 MB/s a core here, far above a WAN link, with
/// most of the ratio of higher levels; the two cores stay free for hashing and TLS.
const COMPRESSION_LEVEL: i32 = 3;

/// A writer's compression: off until the session agrees to it, counting what it did.
#[derive(Debug, Default)]
pub struct Compression {
    pub on: AtomicBool,
    /// Frame bytes offered to compression, and what was sent for them.
    pub raw: AtomicU64,
    pub sent: AtomicU64,
}

/// [`spawn_limited_writer`] that also compresses frames while `compression` is on.
pub fn spawn_compressing_writer<W>(
    mut inner: W,
    capacity: usize,
    heartbeat: Duration,
    limit: Option<Arc<RateLimiter>>,
    compression: Option<Arc<Compression>>,
) -> (
    FrameSender,
    tokio::task::JoinHandle<Result<(), EngineError>>,
)
where
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (tx, mut rx) = mpsc::channel::<Message>(capacity);
    let task = tokio::spawn(async move {
        let mut batch = Batch::default();
        let mut scratch = BytesMut::new();
        let mut put = |message: &Message, batch: &mut Batch| match &compression {
            Some(c) if c.on.load(Relaxed) => {
                let before = batch.small.len();
                let done =
                    encode_compressed(message, COMPRESSION_LEVEL, &mut batch.small, &mut scratch);
                batch.len += batch.small.len() - before;
                c.raw.fetch_add(done.raw, Relaxed);
                c.sent.fetch_add(done.sent, Relaxed);
            }
            _ => batch.put(message),
        };
        loop {
            let first = match tokio::time::timeout(heartbeat, rx.recv()).await {
                Ok(Some(message)) => message,
                Ok(None) => break,
                Err(_) => Message::Heartbeat,
            };
            put(&first, &mut batch);
            while batch.len < WRITE_BATCH {
                match rx.try_recv() {
                    Ok(message) => put(&message, &mut batch),
                    Err(_) => break,
                }
            }
            let segments = batch.take();
            match &limit {
                None => write_all_vectored(&mut inner, &segments).await,
                Some(limit) => write_limited(&mut inner, &segments, limit).await,
            }
            .map_err(write_error)?;
            if rx.is_empty() {
                stalling(inner.flush()).await.map_err(write_error)?;
            }
        }
        inner
            .flush()
            .await
            .map_err(|e| io_error("writing to the peer", e))?;
        let _ = inner.shutdown().await;
        Ok(())
    });
    (tx, task)
}

/// File data at least this large goes to the stream as it is, not copied into the batch.
const BY_REFERENCE: usize = 16 * 1024;

/// Frames gathered for one vectored write: small frames encoded together, file data
/// by reference to the buffer it was read into.
#[derive(Default)]
struct Batch {
    segments: Vec<Bytes>,
    small: BytesMut,
    /// Bytes in `segments` and `small`.
    len: usize,
}

impl Batch {
    fn put(&mut self, message: &Message) {
        let before = self.small.len();
        let data = encode_head(message, &mut self.small);
        self.len += self.small.len() - before;
        if let Some(data) = data {
            self.len += data.len();
            if data.len() >= BY_REFERENCE {
                self.segments.push(self.small.split().freeze());
                self.segments.push(data);
            } else {
                self.small.extend_from_slice(&data);
            }
        }
    }

    fn take(&mut self) -> Vec<Bytes> {
        if !self.small.is_empty() {
            self.segments.push(self.small.split().freeze());
        }
        self.len = 0;
        std::mem::take(&mut self.segments)
    }
}

/// A write that makes no progress for [`DATA_TIMEOUT`]: the peer reads nothing (or the
/// path is dead). Without this bound a peer that stops reading would hold its session,
/// and the volume's lock, for ever.
async fn stalling<T>(
    write: impl std::future::Future<Output = std::io::Result<T>>,
) -> std::io::Result<T> {
    tokio::time::timeout(DATA_TIMEOUT, write)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, Stalled))?
}

/// The error a stalled write carries, to name it apart from the socket's own.
#[derive(Debug)]
struct Stalled;

impl std::fmt::Display for Stalled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "stalled")
    }
}

impl std::error::Error for Stalled {}

fn write_error(e: std::io::Error) -> EngineError {
    if e.get_ref().is_some_and(|inner| inner.is::<Stalled>()) {
        return EngineError::new(
            crate::ExitCode::DataTimeout,
            format!(
                "the peer read nothing for {} s; check the network path (proxy, router) and the peer's logs",
                DATA_TIMEOUT.as_secs()
            ),
        );
    }
    io_error("writing to the peer", e)
}

async fn write_all_vectored<W: AsyncWrite + Unpin>(
    inner: &mut W,
    segments: &[Bytes],
) -> std::io::Result<()> {
    let mut slices: Vec<IoSlice<'_>> = segments.iter().map(|s| IoSlice::new(s)).collect();
    let mut rest = &mut slices[..];
    IoSlice::advance_slices(&mut rest, 0);
    while !rest.is_empty() {
        let n = stalling(inner.write_vectored(rest)).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut rest, n);
    }
    Ok(())
}

async fn write_limited<W: AsyncWrite + Unpin>(
    inner: &mut W,
    segments: &[Bytes],
    limit: &RateLimiter,
) -> std::io::Result<()> {
    for piece in segments.iter().flat_map(|s| s.chunks(MAX_CHUNK)) {
        limit.acquire(piece.len()).await;
        stalling(inner.write_all(piece)).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A peer that stops reading fails the writer after [`DATA_TIMEOUT`] of no progress
    /// (the session then ends and frees its volume), with the data timeout's exit code.
    #[tokio::test(start_paused = true)]
    async fn a_peer_that_reads_nothing_fails_the_writer_after_the_data_timeout() {
        let (ours, _theirs) = tokio::io::duplex(4096);
        let (tx, writer) = spawn_writer(ours, 8, DEFAULT_HEARTBEAT);
        let data = Bytes::from(vec![7u8; 64 * 1024]);
        tx.send(Message::Data {
            index: 0,
            offset: 0,
            bytes: data,
        })
        .await
        .expect("queued");
        let started = tokio::time::Instant::now();
        let written = tokio::time::timeout(DATA_TIMEOUT * 3, writer)
            .await
            .expect("the writer gives up on a peer that reads nothing")
            .expect("the writer task");
        let e = written.expect_err("a write that never progresses fails");
        assert_eq!(e.exit, crate::ExitCode::DataTimeout, "{e}");
        assert!(e.to_string().contains("read nothing for 120 s"), "{e}");
        assert!(started.elapsed() >= DATA_TIMEOUT);
        drop(tx);
    }
}
