//! Ferry's delta layer: block signatures, delta search and bounded apply, over
//! [`fast_rsync`].
//!
//! Owns: choosing how a basis is cut into blocks ([`plan`], [`segment_len`]), the
//! serialized signature of a basis ([`signature`]), validating a signature that came
//! from the peer ([`PeerSignature::parse`]), searching new data against it
//! ([`diff_segment`]) and applying a peer's delta within fixed bounds
//! ([`apply_segment`]). Every number in a peer's signature or delta is checked before
//! fast_rsync sees it: fast_rsync's own checks are not enough (it panics or loops on a
//! zero block size, and its `apply` is unbounded).
//!
//! Does not own: files, sockets or threads (callers hand in byte slices: the target maps
//! its basis, the source reads the new file one segment at a time), nor whole-file
//! verification. fast_rsync's strong hash is truncated MD4, so a delta may rebuild the
//! wrong bytes; the engine checks every rebuilt file with BLAKE3 and re-sends it whole
//! when the check fails.
//!
//! ```text
//!   target (has the basis)                         source (has the new file)
//!   plan(len, max) ─▶ signature(basis) ── bytes ──▶ PeerSignature::parse(bytes, max)
//!                                                      └─▶ index()        once per file
//!                                                   for each segment_len(plan) bytes:
//!   apply_segment(basis, delta, len, out) ◀─ delta, len ── diff_segment(index, seg, out)
//!     └─ scan: bounds every command first                  └─ scan: exact DeltaStats
//!   out ─▶ engine: temp file, BLAKE3 check, rename
//! ```

#![warn(missing_docs)]

mod apply;
mod diff;
mod error;
mod plan;
mod scan;
mod signature;

pub use apply::apply_segment;
pub use diff::diff_segment;
pub use error::DeltaError;
pub use plan::{
    plan, segment_len, BlockPlan, MAX_BLOCK, MAX_SEGMENT, MIN_BLOCK, MIN_DELTA_BASIS, STRONG_LEN,
};
pub use scan::{literal_fraction, DeltaStats};
pub use signature::{signature, PeerSignature, SignatureIndex};
