//! The server's block sessions: a block volume (`--volume NAME=DEVICE_OR_IMAGE`) pushed
//! to (this side the block target) or pulled from (the block source), and what admission
//! says when a session and a volume do not match.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use ferry_proto::{Limits, SessionOptions, TargetStats};
use ferry_tree::Device;
use tokio::io::AsyncRead;

use crate::block;
use crate::error::EngineError;
use crate::framed::{Compression, FrameReader, FrameSender};
use crate::target::VolumeMetrics;

/// Runs an admitted block session on `device` (opened to write for a push, to read for
/// a pull), and counts a push's content in the volume's metrics at its end.
pub(super) async fn run<R: AsyncRead + Unpin>(
    device: Device,
    options: SessionOptions,
    limits: &Limits,
    reader: &mut FrameReader<R>,
    tx: FrameSender,
    compression: &Compression,
    metrics: &VolumeMetrics,
) -> Result<TargetStats, EngineError> {
    let outcome = if options.pull {
        compression.on.store(options.compress, Relaxed);
        block::source::run(Arc::new(device), limits, reader, tx, None, options.dry_run).await?
    } else {
        let outcome = block::target::run(device, reader, tx, None, options.dry_run).await?;
        metrics.received_bytes.fetch_add(outcome.literal, Relaxed);
        metrics
            .written_bytes
            .fetch_add(outcome.target.bytes_written, Relaxed);
        let changed = outcome.target.bytes_written + outcome.target.bytes_zeroed > 0;
        metrics.files_written.fetch_add(u64::from(changed), Relaxed);
        outcome
    };
    tracing::info!(
        size = outcome.size,
        literal = outcome.literal,
        device_size = outcome.target.device_size,
        zeroed = outcome.target.bytes_zeroed,
        "block session done"
    );
    Ok(outcome.target_stats())
}

/// Why a session cannot run on a volume of this kind, or `None` if it can.
pub(super) fn mismatch(name: &str, block_volume: bool, options: &SessionOptions) -> Option<String> {
    match (block_volume, options.block) {
        (true, false) if options.pull => Some(format!(
            "volume {name} is a block volume (a device or disk image): pull it into a block device or an existing image file (create one with `truncate -s 0 FILE`), not a directory"
        )),
        (true, false) => Some(format!(
            "volume {name} is a block volume (a device or disk image): push a block device or a disk image file to it, not a directory"
        )),
        (false, true) if options.pull => Some(format!(
            "volume {name} is a directory: pull it into a directory, not a device or image file"
        )),
        (false, true) => Some(format!(
            "volume {name} is a directory: a device or disk image can only be pushed to a block volume (serve one with --volume {name}=/dev/DEVICE), or push the directory that holds the image"
        )),
        _ => None,
    }
}

/// Opens a block volume for a session: to write for a push, to read for a pull. `path`
/// is the canonical path [`canonical`] gave when the server started; one that now
/// crosses a symbolic link is refused.
pub(super) fn open(path: &std::path::Path, pull: bool) -> Result<Device, ferry_tree::TreeError> {
    Device::open_served(path, !pull)
}

/// A block volume's path with every symbolic link resolved, once, when the server
/// starts (an admin's `/dev/disk/by-id/...` is one): each session then opens exactly
/// that path and refuses it if a link has appeared on the way since.
pub(super) fn canonical(path: &std::path::Path) -> Result<std::path::PathBuf, EngineError> {
    std::fs::canonicalize(path).map_err(|e| {
        EngineError::usage(format!(
            "cannot resolve the block volume {}: {e}",
            path.display()
        ))
    })
}
