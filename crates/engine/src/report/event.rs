//! The seam between the engine and whoever shows a run: the engine emits [`Event`]s, an
//! [`EventSink`] decides what to do with them. The built-in sinks are JSON lines
//! (`json.rs`), the terminal (`terminal.rs`) and the log (`log.rs`); the binary picks one
//! with [`super::Output`], and a test or an embedding program may pass its own.
//!
//! Must not import: the roles or commands; a sink sees only what an event carries.

use ferry_proto::{ChangeKind, EntryKind};

use super::progress::Snapshot;
use super::summary::Summary;

/// One thing that happened in a run, in the order it happened.
#[derive(Debug)]
pub enum Event<'a> {
    /// The run starts.
    Start {
        source: &'a str,
        target: &'a str,
        volume: &'a str,
        dry_run: bool,
    },
    /// What this side holds of the capabilities Ferry uses and what it cannot do without
    /// the rest; once, right after `Start` (the same words went to stderr before).
    Privileges(&'a ferry_tree::PrivilegeReport),
    /// What the target said of its volume's free space when it admitted the session (a
    /// push; each attempt).
    TargetSpace(&'a ferry_proto::VolumeSpace),
    /// The live state, 4 times a second (for a live line).
    Tick {
        snapshot: &'a Snapshot,
        rate_bps: f64,
        eta_s: Option<f64>,
    },
    /// The state once a second, and a last time at the end.
    Progress {
        snapshot: &'a Snapshot,
        rate_bps: f64,
        eta_s: Option<f64>,
        elapsed_s: f64,
    },
    /// An entry created, updated, its attributes updated, or deleted. `path` is escaped.
    Change {
        path: &'a str,
        change: ChangeKind,
        entry: EntryKind,
    },
    /// A per-file error at `side` ("source" or "target"); the run goes on.
    FileError {
        side: &'a str,
        path: &'a str,
        message: &'a str,
    },
    /// A joined stream of the session: it joined, was refused, failed to join, or was
    /// lost mid-session (`reason` empty when it joined).
    Stream {
        stream: u16,
        state: &'a str,
        reason: &'a str,
    },
    /// Something a user should know that stops nothing (a retry, an unreadable entry).
    Warning { path: &'a str, message: &'a str },
    /// The run ended; always the last event.
    Summary(&'a Summary),
}

/// Whoever shows a run. Called from the engine's tasks and threads: keep it quick.
pub trait EventSink: Send + Sync {
    fn event(&self, event: &Event<'_>);

    /// Whether this sink wants [`Event::Tick`] and [`Event::Progress`] (the ticker runs
    /// only if some sink does).
    fn wants_progress(&self) -> bool {
        false
    }
}

/// The word for a change, as events and the text output name it.
pub fn change_word(kind: ChangeKind) -> &'static str {
    match kind {
        ChangeKind::Created => "created",
        ChangeKind::Updated => "updated",
        ChangeKind::MetaUpdated => "meta",
        ChangeKind::Deleted => "deleted",
    }
}
