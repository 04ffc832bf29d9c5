//! The target's role in a block session: drives `BlockTarget` over a connection. It
//! hashes its device one segment ahead of what the core asks (on a blocking thread,
//! while frames are read), writes and zeroes in place as the source's frames come, and
//! at the end flushes the device and hashes its content from 0 to the source's size to
//! verify it. Memory: one segment being hashed and the frames in flight; the core's
//! window bounds the rest.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use ferry_proto::session::block::{segment_len, BlockTarget, TargetWork, BLOCK};
use ferry_proto::Message;
use ferry_tree::{Device, DeviceKind};
use tokio::io::AsyncRead;
use tokio::task::JoinHandle;

use super::hash::{block_hash, is_zero, zero_block_hash};
use crate::error::EngineError;
use crate::framed::{FrameReader, FrameSender};
use crate::report::block::BlockOutcome;
use crate::report::progress::Progress;

/// Runs the target's part of a block session on `device` to its `BlockDone`, feeding
/// `progress` (a puller's live line) if given.
pub async fn run<R: AsyncRead + Unpin>(
    device: Device,
    reader: &mut FrameReader<R>,
    tx: FrameSender,
    progress: Option<&Progress>,
    dry_run: bool,
) -> Result<BlockOutcome, EngineError> {
    let mut core = match device.kind() {
        DeviceKind::Block => BlockTarget::new(device.size()),
        DeviceKind::Image => BlockTarget::image(device.size(), device.room()?),
    };
    if dry_run {
        core = core.dry_run();
    }
    let mut device = Arc::new(device);
    let mut hashing: Option<JoinHandle<Result<(u64, Bytes), EngineError>>> = None;
    let mut outcome = BlockOutcome::default();
    // Content bytes received in the segment being answered (for the progress).
    let mut segment_literal = 0;
    let closed = || EngineError::socket("the connection closed");
    loop {
        while let Some(work) = core.poll_work() {
            match work {
                TargetWork::Resize { size } => {
                    // The first work of a session: nothing else holds the device yet.
                    Arc::get_mut(&mut device)
                        .expect("no hashing or writing before the resize")
                        .resize(size)?;
                }
                TargetWork::Write { offset, bytes } => {
                    let device = device.clone();
                    blocking(move || Ok(device.write_at(&bytes, offset)?)).await?;
                }
                TargetWork::Zero { offset, len } => {
                    let device = device.clone();
                    blocking(move || Ok(device.zero(offset, len)?)).await?;
                }
                TargetWork::Verify { size, hash } => {
                    let device = device.clone();
                    let ours = blocking(move || verify_hash(&device, size)).await?;
                    core.handle_verified(ours == hash)?;
                }
            }
        }
        while let Some(message) = core.poll_transmit() {
            tx.send(message).await.map_err(|_| closed())?;
        }
        if core.is_done() {
            if let Some(progress) = progress {
                progress.resolved(1, 0);
            }
            outcome.size = core.size();
            outcome.target = core.stats().clone();
            return Ok(outcome);
        }
        if hashing.is_none() {
            if let Some((offset, len)) = core.wants_sums() {
                let device = device.clone();
                hashing = Some(tokio::task::spawn_blocking(move || {
                    hash_segment(&device, offset, len).map(|hashes| (offset, hashes))
                }));
            }
        }
        tokio::select! {
            hashed = async { hashing.as_mut().expect("guarded").await }, if hashing.is_some() => {
                hashing = None;
                let (offset, hashes) = hashed
                    .map_err(|e| EngineError::file_io(format!("a block hasher failed: {e}")))??;
                core.handle_sums(offset, hashes);
            }
            message = reader.expect("the source's blocks") => {
                let message = message?;
                let counted = match &message {
                    Message::BlockData { bytes, .. } => Count::Literal(bytes.len() as u64),
                    Message::BlockZero { len, .. } => Count::Zeros(*len),
                    Message::BlockSegmentEnd { offset } => Count::SegmentEnd(*offset),
                    Message::BlockBegin { size } => Count::Begin(*size),
                    _ => Count::Nothing,
                };
                core.handle_message(message)?;
                match counted {
                    Count::Literal(n) => {
                        outcome.literal += n;
                        segment_literal += n;
                        if let Some(progress) = progress {
                            progress.sent(n);
                        }
                    }
                    Count::Zeros(n) => outcome.zeros += n,
                    Count::SegmentEnd(offset) => {
                        if let Some(progress) = progress {
                            let len = segment_len(core.size(), offset);
                            progress.resolved(0, len.saturating_sub(segment_literal));
                        }
                        segment_literal = 0;
                    }
                    Count::Begin(size) => {
                        if let Some(progress) = progress {
                            progress.listed(size);
                            progress.scan_done();
                        }
                    }
                    Count::Nothing => {}
                }
            }
        }
    }
}

/// What a frame from the source counts for, once the core has accepted it.
enum Count {
    Literal(u64),
    Zeros(u64),
    SegmentEnd(u64),
    Begin(u64),
    Nothing,
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, EngineError> + Send + 'static,
) -> Result<T, EngineError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| EngineError::file_io(format!("a block writer failed: {e}")))?
}

/// The block hashes of `offset..offset + len` as the target holds it now.
fn hash_segment(device: &Device, offset: u64, len: u64) -> Result<Bytes, EngineError> {
    let mut buf = vec![0u8; len as usize];
    let read = device.read_at(&mut buf, offset)?;
    // Past the end of a device that reads short (it should not): zeros.
    buf[read..].fill(0);
    let mut out = BytesMut::with_capacity(buf.len().div_ceil(BLOCK as usize) * 16);
    for block in buf.chunks(BLOCK as usize) {
        if block.len() == BLOCK as usize && is_zero(block) {
            out.put_slice(zero_block_hash());
        } else {
            out.put_slice(&block_hash(block));
        }
    }
    Ok(out.freeze())
}

/// BLAKE3 of `0..size` as the device holds it after a flush.
fn verify_hash(device: &Device, size: u64) -> Result<[u8; 32], EngineError> {
    device.sync()?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut at = 0;
    while at < size {
        let n = buf.len().min((size - at) as usize);
        let read = device.read_at(&mut buf[..n], at)?;
        if read < n {
            return Err(EngineError::file_io(format!(
                "{} ended at {} bytes while verifying {size}",
                device.path().display(),
                at + read as u64
            )));
        }
        hasher.update(&buf[..n]);
        at += n as u64;
    }
    Ok(*hasher.finalize().as_bytes())
}
