//! Live counts of a run, kept in atomics: the source's driver (as it lists, and as the
//! target's acks resolve entries) and its senders add to them, the display
//! ([`crate::report::display`]) reads a [`Snapshot`].
//!
//! ```text
//! driver ── listed(size) ───┐
//! senders ── sent(n) ───────┼─▶ Progress ── snapshot() ─▶ terminal line / `progress` event
//! driver ── resolved(..) ───┘
//! ```
//!
//! "Done" counts are the current attempt's: each attempt lists the whole tree again and
//! the target skips what is already in place, so after a retry they climb back quickly
//! and never exceed the totals (nothing is summed across attempts). `processed`,
//! `retries` and the wire bytes only grow.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering::Relaxed};

use ferry_net::WireCounter;
use serde::Serialize;

/// What a push is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Dialing the target (also while waiting to retry).
    Connecting,
    /// Listing the source; nothing is being sent yet.
    Scanning,
    /// Sending file content (the scan may still be streaming).
    Transferring,
    /// Every entry is resolved; the target removes what the source does not have.
    Deleting,
    /// Every entry is resolved; the target sets directory times and reports.
    Finishing,
    Done,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Connecting => "connecting",
            Phase::Scanning => "scanning",
            Phase::Transferring => "transferring",
            Phase::Deleting => "deleting",
            Phase::Finishing => "finishing",
            Phase::Done => "done",
        }
    }
}

/// Set by the push loop; the session phases are derived from the counts.
const CONNECTING: u8 = 0;
const SESSION: u8 = 1;
const DONE: u8 = 2;

#[derive(Debug, Default)]
pub struct Progress {
    stage: AtomicU8,
    delete: AtomicBool,
    files_total: AtomicU64,
    bytes_total: AtomicU64,
    scan_done: AtomicBool,
    files_done: AtomicU64,
    /// Bytes of files the target resolved without asking for them (unchanged).
    bytes_skipped: AtomicU64,
    /// File content sent (or resumed) in this attempt.
    bytes_sent: AtomicU64,
    processed: AtomicU64,
    retries: AtomicU64,
    attempt: AtomicU64,
    wire: WireCounter,
}

/// One reading of [`Progress`], as the `progress` event carries it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Snapshot {
    pub phase: Phase,
    pub files_done: u64,
    pub files_total: u64,
    pub bytes_done: u64,
    pub bytes_total: u64,
    /// False while the scan is still streaming: the totals will grow.
    pub totals_final: bool,
    pub bytes_on_wire: u64,
    pub retries: u64,
    /// Session number, from 1; a retry starts the next.
    pub attempt: u64,
    /// File bytes processed (sent or found in place) over all attempts; only grows.
    #[serde(skip)]
    pub processed: u64,
}

impl Progress {
    pub fn new(wire: WireCounter, delete: bool) -> Progress {
        let progress = Progress {
            wire,
            ..Progress::default()
        };
        progress.delete.store(delete, Relaxed);
        progress
    }

    /// A new session starts: its listing and done counts start from zero.
    pub fn start_attempt(&self) {
        for counter in [
            &self.files_total,
            &self.bytes_total,
            &self.files_done,
            &self.bytes_skipped,
            &self.bytes_sent,
        ] {
            counter.store(0, Relaxed);
        }
        self.scan_done.store(false, Relaxed);
        self.attempt.fetch_add(1, Relaxed);
        self.stage.store(CONNECTING, Relaxed);
    }

    pub fn connected(&self) {
        self.stage.store(SESSION, Relaxed);
    }

    pub fn retrying(&self) {
        self.retries.fetch_add(1, Relaxed);
        self.stage.store(CONNECTING, Relaxed);
    }

    pub fn finished(&self) {
        self.stage.store(DONE, Relaxed);
    }

    /// A regular file name was listed (`bytes` is 0 for a hard link).
    pub fn listed(&self, bytes: u64) {
        self.files_total.fetch_add(1, Relaxed);
        self.bytes_total.fetch_add(bytes, Relaxed);
    }

    pub fn scan_done(&self) {
        self.scan_done.store(true, Relaxed);
    }

    /// The target resolved `files` file names; `skipped` bytes of them it did not need.
    pub fn resolved(&self, files: u64, skipped: u64) {
        self.files_done.fetch_add(files, Relaxed);
        self.bytes_skipped.fetch_add(skipped, Relaxed);
        self.processed.fetch_add(skipped, Relaxed);
    }

    /// A sender sent (or the target resumed) `n` bytes of file content.
    pub fn sent(&self, n: u64) {
        self.bytes_sent.fetch_add(n, Relaxed);
        self.processed.fetch_add(n, Relaxed);
    }

    pub fn snapshot(&self) -> Snapshot {
        let files_total = self.files_total.load(Relaxed);
        let bytes_total = self.bytes_total.load(Relaxed);
        let files_done = self.files_done.load(Relaxed).min(files_total);
        let sent = self.bytes_sent.load(Relaxed);
        let bytes_done = (self.bytes_skipped.load(Relaxed) + sent).min(bytes_total);
        let totals_final = self.scan_done.load(Relaxed);
        let phase = match self.stage.load(Relaxed) {
            CONNECTING => Phase::Connecting,
            DONE => Phase::Done,
            _ if !totals_final && sent == 0 => Phase::Scanning,
            _ if !totals_final || files_done < files_total => Phase::Transferring,
            _ if self.delete.load(Relaxed) => Phase::Deleting,
            _ => Phase::Finishing,
        };
        Snapshot {
            phase,
            files_done,
            files_total,
            bytes_done,
            bytes_total,
            totals_final,
            bytes_on_wire: self.wire.total(),
            retries: self.retries.load(Relaxed),
            attempt: self.attempt.load(Relaxed).max(1),
            processed: self.processed.load(Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_follow_the_counts() {
        let p = Progress::new(WireCounter::default(), true);
        p.start_attempt();
        assert_eq!(p.snapshot().phase, Phase::Connecting);
        p.connected();
        p.listed(100);
        p.listed(50);
        assert_eq!(p.snapshot().phase, Phase::Scanning);
        p.sent(10);
        let s = p.snapshot();
        assert_eq!(
            (s.phase, s.bytes_done, s.totals_final),
            (Phase::Transferring, 10, false)
        );
        p.scan_done();
        p.resolved(1, 50);
        p.sent(90);
        p.resolved(1, 0);
        let s = p.snapshot();
        assert_eq!(
            (s.phase, s.files_done, s.bytes_done),
            (Phase::Deleting, 2, 150)
        );
        p.finished();
        assert_eq!(p.snapshot().phase, Phase::Done);
    }

    #[test]
    fn a_retry_restarts_the_attempt_counts_but_not_the_cumulative_ones() {
        let p = Progress::new(WireCounter::default(), false);
        p.start_attempt();
        p.connected();
        p.listed(1000);
        p.sent(600);
        p.retrying();
        p.start_attempt();
        let s = p.snapshot();
        assert_eq!(
            (s.bytes_done, s.bytes_total, s.retries, s.attempt),
            (0, 0, 1, 2)
        );
        assert_eq!(s.processed, 600);
        p.connected();
        p.listed(1000);
        p.sent(600);
        p.sent(1000);
        // Re-sent bytes never push "done" past the total.
        assert_eq!(p.snapshot().bytes_done, 1000);
    }
}
