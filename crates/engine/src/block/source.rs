//! The source's role in a block session: drives `BlockSource` over a connection. For
//! each segment the target hashed, it reads the same range of its device (one segment,
//! 1 MiB, at a time: memory does not grow with the device), compares block by block,
//! and sends the blocks that differ (contiguous ones together, in frames of at most
//! `data_chunk`) and zero runs as a length (in a dry run it only counts them). The whole
//! content's BLAKE3 is hashed over the same reads.

use std::sync::Arc;

use bytes::Bytes;
use ferry_proto::session::block::{BlockSource, SourceWork, BLOCK, HASH_LEN};
use ferry_proto::{Limits, Message};
use ferry_tree::Device;
use tokio::io::AsyncRead;

use super::hash::{block_hash, is_zero, zero_block_hash};
use crate::error::EngineError;
use crate::framed::{FrameReader, FrameSender};
use crate::report::block::BlockOutcome;
use crate::report::progress::Progress;

/// Runs the source's part of a block session to the target's `BlockDone`.
pub async fn run<R: AsyncRead + Unpin>(
    device: Arc<Device>,
    limits: &Limits,
    reader: &mut FrameReader<R>,
    tx: FrameSender,
    progress: Option<&Progress>,
    dry_run: bool,
) -> Result<BlockOutcome, EngineError> {
    let size = device.size();
    let mut core = BlockSource::new(size);
    let mut outcome = BlockOutcome {
        size,
        ..BlockOutcome::default()
    };
    if let Some(progress) = progress {
        progress.listed(size);
        progress.scan_done();
    }
    let mut whole = blake3::Hasher::new();
    let closed = || EngineError::socket("the connection closed");
    loop {
        while let Some(message) = core.poll_transmit() {
            tx.send(message).await.map_err(|_| closed())?;
        }
        if let Some(stats) = core.done() {
            outcome.target = stats.clone();
            if let Some(progress) = progress {
                progress.resolved(1, 0);
            }
            return Ok(outcome);
        }
        match core.poll_work() {
            Some(SourceWork::Segment {
                offset,
                len,
                hashes,
            }) => {
                if offset == 0 {
                    whole = blake3::Hasher::new();
                }
                let device = device.clone();
                let chunk = limits.data_chunk;
                let (answer, hasher) = tokio::task::spawn_blocking(move || {
                    let answer = answer_segment(&device, offset, len, &hashes, chunk, &mut whole);
                    (answer, whole)
                })
                .await
                .map_err(|e| EngineError::file_io(format!("a block reader failed: {e}")))?;
                whole = hasher;
                let answer = answer?;
                outcome.literal += answer.literal;
                outcome.zeros += answer.zeros;
                if let Some(progress) = progress {
                    progress.sent(answer.literal);
                    progress.resolved(0, len - answer.literal);
                }
                // A dry run counts what it would send, and sends only the segment's end.
                for message in answer.messages.into_iter().filter(|_| !dry_run) {
                    tx.send(message).await.map_err(|_| closed())?;
                }
                core.handle_segment_sent(offset);
            }
            Some(SourceWork::Finish) => {
                core.handle_finished(*whole.finalize().as_bytes());
            }
            None => {
                let message = reader.expect("the target's block hashes").await?;
                core.handle_message(message)?;
            }
        }
    }
}

/// What one segment needs sent.
struct Answer {
    messages: Vec<Message>,
    literal: u64,
    zeros: u64,
}

/// Reads the segment at `offset`, feeds it to `whole`, and compares it with the target's
/// `hashes` block by block.
fn answer_segment(
    device: &Device,
    offset: u64,
    len: u64,
    hashes: &[u8],
    chunk: usize,
    whole: &mut blake3::Hasher,
) -> Result<Answer, EngineError> {
    let mut buf = vec![0u8; len as usize];
    let read = device
        .read_at(&mut buf, offset)
        .map_err(|e| EngineError::file_io(format!("reading the source: {e}")))?;
    if read < buf.len() {
        return Err(EngineError::file_io(format!(
            "the source {} ended at {} bytes, short of its size; did it shrink during the session?",
            device.path().display(),
            offset + read as u64
        )));
    }
    whole.update(&buf);
    let buf = Bytes::from(buf);
    let mut answer = Answer {
        messages: Vec::new(),
        literal: 0,
        zeros: 0,
    };
    // The run being gathered: (start within the segment, end, whether it is zeros).
    let mut run: Option<(usize, usize, bool)> = None;
    for (i, theirs) in hashes.chunks_exact(HASH_LEN).enumerate() {
        let start = i * BLOCK as usize;
        let end = (start + BLOCK as usize).min(buf.len());
        let block = &buf[start..end];
        let zero = is_zero(block);
        let same = if zero && block.len() == BLOCK as usize {
            theirs == zero_block_hash()
        } else {
            theirs == block_hash(block)
        };
        let limit = if zero { usize::MAX } else { chunk };
        run = match run {
            _ if same => {
                flush(&mut answer, &buf, offset, run);
                None
            }
            Some((s, e, z)) if z == zero && e == start && end - s <= limit => Some((s, end, z)),
            other => {
                flush(&mut answer, &buf, offset, other);
                Some((start, end, zero))
            }
        };
    }
    flush(&mut answer, &buf, offset, run);
    Ok(answer)
}

fn flush(answer: &mut Answer, buf: &Bytes, offset: u64, run: Option<(usize, usize, bool)>) {
    let Some((start, end, zero)) = run else {
        return;
    };
    let len = (end - start) as u64;
    if zero {
        answer.zeros += len;
        answer.messages.push(Message::BlockZero {
            offset: offset + start as u64,
            len,
        });
    } else {
        answer.literal += len;
        answer.messages.push(Message::BlockData {
            offset: offset + start as u64,
            bytes: buf.slice(start..end),
        });
    }
}
