//! What the target core and its driver hand each other: the work the core asks for
//! ([`TargetWork`]), the answers it takes back ([`PlanOutcome`], [`FileOutcome`],
//! [`Asked`]), what it decides about a file ([`Verdict`]) and what it waits for
//! ([`TargetState`]). Plain data: the rules that produce and check them live in the core.
//!
//! Must not import: anything that does I/O.

use super::ListedFrame;
use crate::message::Message;
use crate::model::Meta;
use crate::path::RelPath;

/// What the target waits for ([`TargetCore::state`](super::TargetCore::state)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetState {
    /// The listing: `Root`, `List` frames, and file frames of files already asked for,
    /// until `ListEnd`.
    ExpectListing,
    /// File frames of wanted files and the local work that resolves entries, until
    /// every entry is resolved and no failed file is still draining.
    ExpectFiles,
    /// Nothing more from the source: the driver deletes, finishes and says `Done`.
    Settled,
}

/// What the core asks its driver to do.
#[derive(Debug)]
pub enum TargetWork {
    /// Plan these checked entries against the volume, do what needs no file data, and
    /// answer with [`TargetCore::handle_planned`](super::TargetCore::handle_planned).
    Plan(ListedFrame),
    /// A `Data`, `Hole`, `Delta`, `FileEnd` or `FileFailed` frame for a file that was
    /// wanted (or is draining after a failure: its frames are dropped).
    Receive { index: u64, frame: Message },
    /// Make these hard links: their leader is in place. Answer each with
    /// [`TargetCore::handle_link`](super::TargetCore::handle_link).
    MakeLinks(Vec<u64>),
    /// These hard links cannot be made: their leader failed. Report each as a file error
    /// and answer with [`TargetCore::handle_link`](super::TargetCore::handle_link) (`made: false`).
    FailLinks(Vec<u64>),
    /// Apply these directories' attributes: their listing and contents are complete.
    FinishDirs(Vec<(RelPath, Meta)>),
}

/// What planning one frame found, entry by entry, for [`TargetCore::handle_planned`](super::TargetCore::handle_planned).
/// Entries of the frame named in none of the lists are resolved (in place, unchanged,
/// or failed and reported by the driver).
#[derive(Debug, Default)]
pub struct PlanOutcome {
    /// Regular files asked for (a `Want` or `Resume` goes out for each).
    pub wants: Vec<u64>,
    /// Hard links to make once their leader is in place.
    pub links: Vec<u64>,
    /// Files refused before anything was asked (reported): links to them fail.
    pub refused: Vec<u64>,
    /// With `dir_done`: whether entries of the directory are to be deleted at the end
    /// (it is then finished at the end, after the deletions).
    pub has_extras: bool,
}

/// How a wanted file ended, for [`TargetCore::handle_file`](super::TargetCore::handle_file).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileOutcome {
    /// Verified and in place.
    Committed,
    /// Its content did not match the source's hash.
    Mismatch,
    /// It could not be written (the driver reported why). `draining`: the source may
    /// still be sending it (the failure came before its last frame).
    Failed { draining: bool },
    /// The source gave up on it (`FileFailed`).
    Aborted,
}

/// What the driver does next about a file the core heard of in
/// [`TargetCore::handle_file`](super::TargetCore::handle_file).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing more: it is resolved.
    Done,
    /// Ask for it again, whole: its content did not verify once. Its frames may come.
    Resend,
    /// It did not verify twice: report it as a file error. It is resolved, failed.
    Failed,
}

/// How the driver asked for a wanted file (the `Want` or `Resume` it sends), for
/// [`TargetCore::handle_asked`](super::TargetCore::handle_asked).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Asked {
    /// `Want{delta: false}`: all of it, from offset 0.
    Whole,
    /// `Want{delta: true}` with a signature: `Delta` frames may come too.
    Delta,
    /// `Resume{offset}`: from `offset` on if the source's prefix matches, else from 0.
    Resume { offset: u64 },
    /// In ranges (`WantRange`, [`TargetCore::ask_range`](super::TargetCore::ask_range)),
    /// each on its own stream: `Data` and `Hole` within each, each ended by `RangeEnd`.
    Ranged,
}
