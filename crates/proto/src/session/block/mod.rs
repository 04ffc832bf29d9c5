//! The block session: one device or disk image synced block by block, in place.
//!
//! Disk images and block devices change in place at aligned offsets, so the two sides
//! compare blocks at the same offsets instead of searching for moved data (rsync's
//! rolling search). The target hashes its current content one segment at a time and
//! sends the hashes; the source compares its own blocks at those offsets and sends only
//! the blocks that differ, and runs of zeros as a length; the target writes in place. At
//! the end the target hashes its whole content and compares it with the source's BLAKE3;
//! on a mismatch it sends its hashes again and the differing blocks come again (one more
//! round, then the session fails).
//!
//! ```text
//! source                                   target (device_size ≥ size)
//!   BlockBegin{size}                 ──▶
//!                                    ◀──  BlockSums{offset, hashes}   (≤ WINDOW segments ahead)
//!   BlockData{offset, bytes}..       ──▶  pwrite in place
//!   BlockZero{offset, len}..         ──▶  punch a hole / zero out
//!   BlockSegmentEnd{offset}          ──▶  (one more BlockSums may go)
//!   ...
//!   BlockEnd{size, BLAKE3}           ──▶  hash 0..size, compare
//!                                    ◀──  BlockDone{stats} | BlockSums{0, ..} (round 2)
//! ```
//!
//! Memory on either side is bounded by the window ([`WINDOW`] segments of hashes), never
//! by the size of the device. The cores here hold every rule a peer can break; they hash
//! and read nothing themselves (the engine's block roles do).
//!
//! Must not import: anything that does I/O (see [`crate::session`]).

pub mod source;
pub mod target;

pub use source::{BlockSource, SourceWork};
pub use target::{BlockError, BlockTarget, TargetWork};

/// Bytes per block: the unit compared, sent and zeroed. Disk images and file systems
/// change in 4 KiB pages, so a larger block would send unchanged bytes beside each change.
pub const BLOCK: u64 = 4096;
/// Blocks per segment: the unit of one `BlockSums` frame (4 KiB of hashes).
pub const SEGMENT_BLOCKS: usize = 256;
/// Bytes per segment (1 MiB).
pub const SEGMENT: u64 = BLOCK * SEGMENT_BLOCKS as u64;
/// Bytes of one block hash (BLAKE3, truncated): collisions by chance are out of reach
/// at 128 bits, and the whole content is verified with the full BLAKE3 anyway.
pub const HASH_LEN: usize = 16;
/// Segments whose hashes the target may have sent and the source not yet answered
/// (`BlockSegmentEnd`). The source refuses more: this bounds what it holds.
pub const WINDOW: usize = 16;
/// Rounds a session may take: the first, and one more after the content did not verify.
pub const MAX_ROUNDS: u32 = 2;

/// Bytes of the segment at `offset` of content `size` bytes long.
pub fn segment_len(size: u64, offset: u64) -> u64 {
    SEGMENT.min(size.saturating_sub(offset))
}

/// Blocks that cover `len` bytes (the last one may be short).
pub fn blocks_in(len: u64) -> usize {
    len.div_ceil(BLOCK) as usize
}
