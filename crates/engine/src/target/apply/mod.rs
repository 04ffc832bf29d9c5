//! Applying received files: a pool of worker threads assembles wanted files from Data,
//! Hole and Delta frames into temp files (or the file itself, in place), verifies their
//! BLAKE3, applies attributes on the open fd and renames or links them into place.
//!
//! ```text
//! session ──Job──▶ ApplyPool ──Batch──▶ worker k ──Completion──▶ session
//!          (route, budget, batch)       temp file ─ verify ─ meta ─ rename
//! ```
//!
//! The session (the driver) alone talks to the session core: workers only report back.
//! This module must not import the network or the session core: it is file work.

mod assembly;
mod job;
mod outcome;
mod pool;
mod ranged;
mod step;
mod worker;

pub use job::{Completion, Job, Resumed};
pub use pool::ApplyPool;

/// Bytes of file data (`Data`, `Delta`) the session may have queued for the workers and
/// not yet written, whatever the number of workers or streams.
pub const APPLY_BYTES: usize = 32 << 20;

/// Most jobs in one handoff to a worker (see [`Batch`]).
pub const BATCH_JOBS: usize = 64;
/// Most data bytes in one handoff to a worker (a larger frame goes alone).
pub const BATCH_BYTES: usize = 2 << 20;

#[cfg(test)]
mod in_place_tests;
#[cfg(test)]
mod ranged_tests;
#[cfg(test)]
mod tests;
