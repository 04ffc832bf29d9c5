//! What a target session adds to its server's metrics as it goes (`ferry serve`
//! renders them at `GET /metrics`; a puller's counters are simply not read).

use std::sync::atomic::AtomicU64;

/// The counters of one served volume.
#[derive(Debug, Default)]
pub struct VolumeMetrics {
    /// File content received: literal data and delta instructions, as framed.
    pub received_bytes: AtomicU64,
    /// Bytes of the files committed (full size, also for deltas).
    pub written_bytes: AtomicU64,
    pub files_written: AtomicU64,
    pub file_errors: AtomicU64,
    pub sessions: AtomicU64,
}
