//! Ferry's delta layer: block signatures, delta search and bounded apply.
//!
//! Owns: choosing how a basis is cut into blocks ([`plan`], [`segment_len`]), the
//! serialized signature of a basis ([`signature`]: a rolling checksum and a truncated
//! XXH3-128 per block), validating a signature that came from the peer
//! ([`PeerSignature::parse`]), searching new data against it ([`diff_segment`]: blocks
//! that stay in place are confirmed by one block hash each, moved ones found by rsync's
//! rolling search) and applying a peer's delta within fixed bounds ([`check_segment`]
//! checks it whole against the basis's length, then [`CheckedDelta::for_each_run`] gives
//! its output in runs, COPY ranges read from the basis into the run buffer, for the
//! engine to write and hash; [`apply_segment`] copies it into a buffer). Deltas are in
//! fast_rsync's format (librsync's), which the tests hold against fast_rsync's own apply.
//! Every number in a peer's signature or delta is checked before it is used.
//!
//! Does not own: files, sockets or threads (the basis is the caller's [`BasisRead`]: the
//! target reads its file with positioned reads, tests hand in a slice; the source reads
//! the new file one segment at a time; [`signature_on`] borrows scoped threads for the
//! one call, when the caller asks), nor whole-file verification. A block match is only
//! as good as its truncated hash, so the engine checks every rebuilt file with BLAKE3
//! and re-sends it whole when the check fails.
//!
//! ```text
//!   target (has the basis)                         source (has the new file)
//!   plan(len, max) ─▶ signature_on(basis) ─ bytes ─▶ PeerSignature::parse(bytes, max)
//!                                                      └─▶ index()        once per file
//!                                                   for each segment_len(plan) bytes:
//!   check_segment(basis, delta, len) ◀─── delta, len ──── diff_segment(index, seg, out)
//!     └─ scan: bounds every command first                  └─ scan: exact DeltaStats
//!   .for_each_run() ─▶ engine: temp file + BLAKE3, check, rename
//! ```

#![warn(missing_docs)]

mod apply;
mod basis;
mod diff;
mod encode;
mod error;
mod format;
mod index;
mod plan;
mod scan;
mod signature;
mod weak;

pub use apply::{apply_segment, check_segment, CheckedDelta, Piece};
pub use basis::{BasisRead, RunError};
pub use diff::diff_segment;
pub use error::DeltaError;
pub use format::{BlockPlan, MAX_BLOCK, MIN_BLOCK};
pub use index::SignatureIndex;
pub use plan::{plan, segment_len, MAX_SEGMENT, MIN_DELTA_BASIS, STRONG_LEN};
pub use scan::{literal_fraction, DeltaStats};
pub use signature::{signature, signature_on, PeerSignature, SPLIT_SIGNATURE_MIN};
