//! What the session hands the apply workers (a [`Job`], in [`Batch`]es) and what they
//! hand back (a [`Completion`] each finished file). Plain data: no I/O here.

use std::sync::Arc;

use ferry_proto::{Message, RelPath};
use ferry_tree::{Basis, NotApplied, TempFile};
use tokio::sync::OwnedSemaphorePermit;

use crate::error::EngineError;
use crate::target::plan::Pending;

/// A partial from an interrupted session, verified by hashing: data continues after it.
/// Dropped before a worker took it (the session ended with it queued anywhere: in the
/// session's ready channel, a batch, a worker's queue), the partial stays for the next
/// session rather than being unlinked.
pub struct Resumed {
    temp: Option<TempFile>,
    pub offset: u64,
    /// BLAKE3 state over the first `offset` bytes.
    pub hasher: blake3::Hasher,
}

impl Resumed {
    pub fn new(temp: TempFile, offset: u64, hasher: blake3::Hasher) -> Resumed {
        Resumed {
            temp: Some(temp),
            offset,
            hasher,
        }
    }

    /// A partial whose first `offset` bytes are whole ranges, asked with `have` (no
    /// running hash: each range is verified on its own).
    pub fn held(temp: TempFile, offset: u64) -> Resumed {
        Resumed::new(temp, offset, blake3::Hasher::new())
    }

    /// The partial, to write on; its keeping is then the taker's.
    pub fn take(mut self: Box<Self>) -> (TempFile, u64, blake3::Hasher) {
        let temp = self.temp.take().expect("taken once");
        let hasher = std::mem::take(&mut self.hasher);
        (temp, self.offset, hasher)
    }
}

impl Drop for Resumed {
    fn drop(&mut self) {
        if let Some(temp) = self.temp.take() {
            temp.keep();
        }
    }
}

pub enum Job {
    /// Data for `index` follows; `basis` is set when a delta was asked for, `resumed`
    /// when the target asked to resume from a partial.
    Start {
        index: u64,
        pending: Pending,
        basis: Option<Arc<Basis>>,
        resumed: Option<Box<Resumed>>,
    },
    /// Ranges of `index` follow (`Data`, `Hole`, `RangeEnd`), in any order of ranges,
    /// each range's pieces in order: it is written into one temp copy and committed
    /// once every range verified.
    /// `resumed`: the partial an interrupted session left, whose first ranges (up to its
    /// `offset`) the target asked with `have`.
    StartRanged {
        index: u64,
        pending: Pending,
        resumed: Option<Box<Resumed>>,
    },
    /// A Data, Hole, Delta, FileEnd or RangeEnd frame of a started file.
    Frame(Message),
    /// The source gave up on the file: discard what was written.
    Abort { index: u64 },
    /// The file was asked on a stream that was lost: discard what was written and give
    /// its entry back, to ask for it again.
    Reask { index: u64 },
}

impl Job {
    /// The file data it carries: what it takes of the apply budget while queued.
    pub fn data_bytes(&self) -> usize {
        match self {
            Job::Frame(Message::Data { bytes, .. } | Message::Delta { bytes, .. }) => bytes.len(),
            _ => 0,
        }
    }
}

/// Jobs handed to a worker at once: whatever the session decoded from one read of the
/// connection for that worker, up to [`BATCH_JOBS`] jobs or [`BATCH_BYTES`] of data. One
/// handoff (and at most one wakeup) a batch rather than three a file: for small files
/// the wakeups cost more than the writes. `held`: the batch's share of the session's
/// apply budget, given back when the worker has written the batch (or dropped it).
///
/// [`BATCH_JOBS`]: super::BATCH_JOBS
/// [`BATCH_BYTES`]: super::BATCH_BYTES
#[derive(Default)]
pub struct Batch {
    pub jobs: Vec<Job>,
    pub held: Option<OwnedSemaphorePermit>,
}

impl From<Vec<Job>> for Batch {
    fn from(jobs: Vec<Job>) -> Batch {
        Batch { jobs, held: None }
    }
}

pub enum Completion {
    /// `path` is set when something was not applied (the report names the file).
    Committed {
        index: u64,
        size: u64,
        /// Written into the existing file rather than a temp copy.
        in_place: bool,
        not_applied: NotApplied,
        path: Option<RelPath>,
    },
    /// The content did not match the source's hash; ask again, whole. The file's
    /// entry comes back for that (the session keeps only indexes of wanted files).
    Mismatch {
        index: u64,
        pending: Box<Pending>,
    },
    /// The file could not be written; the session goes on unless `fatal` is set.
    /// `draining`: the source is still sending it (the failure came before its
    /// `FileEnd`), and its frames up to that are dropped, not taken for a protocol error.
    Failed {
        index: u64,
        path: RelPath,
        message: String,
        fatal: Option<EngineError>,
        draining: bool,
    },
    Aborted {
        index: u64,
    },
    /// The range at `offset` of a file asked in ranges (of `size` bytes) did not match
    /// the source's value: what was written of it stands until it is sent again.
    RangeMismatch {
        index: u64,
        offset: u64,
        size: u64,
        path: RelPath,
    },
    /// A [`Job::Reask`] done: the file's entry, or `None` when the worker had no such
    /// file (it failed, and said so, before).
    Reask {
        index: u64,
        pending: Option<Box<Pending>>,
    },
}

impl Completion {
    pub fn index(&self) -> u64 {
        match self {
            Completion::Committed { index, .. }
            | Completion::Mismatch { index, .. }
            | Completion::Failed { index, .. }
            | Completion::Aborted { index }
            | Completion::RangeMismatch { index, .. }
            | Completion::Reask { index, .. } => *index,
        }
    }
}
