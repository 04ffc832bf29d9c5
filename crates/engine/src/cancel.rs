//! A session's stop flag. The target's receiver and signing threads do work whose size a
//! peer's numbers set (a hole's length, a delta's copies, a basis to sign); they do it in
//! bounded steps and look at this flag between them, so when the session ends, for any
//! reason (the peer left, an error, a signal that drops the session's future), their
//! work stops within a step instead of running on for a peer that is gone.
//!
//! The session owns a [`StopOnDrop`]: the flag is set when the session's future returns
//! or is dropped, whichever comes first.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A shared flag: clear while the session runs, set once it ended.
#[derive(Clone, Debug, Default)]
pub struct Cancel(Arc<AtomicBool>);

/// The session ended: work for it was stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cancelled;

impl Cancel {
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// Ends the work: every later [`Cancel::check`] fails.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// `Err(Cancelled)` once the session ended.
    pub fn check(&self) -> Result<(), Cancelled> {
        match self.is_cancelled() {
            true => Err(Cancelled),
            false => Ok(()),
        }
    }

    /// The flag itself, for code below the engine that stops when it is set (a basis
    /// read by `ferry_tree::Basis`).
    pub fn flag(&self) -> Arc<AtomicBool> {
        self.0.clone()
    }

    /// A guard that cancels when dropped.
    pub fn stop_on_drop(&self) -> StopOnDrop {
        StopOnDrop(self.clone())
    }
}

/// Sets its [`Cancel`] when dropped.
#[derive(Debug)]
pub struct StopOnDrop(Cancel);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

impl From<Cancelled> for std::io::Error {
    fn from(_: Cancelled) -> Self {
        std::io::Error::new(std::io::ErrorKind::Interrupted, "the session ended")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guard_cancels_every_clone_when_dropped() {
        let cancel = Cancel::new();
        let seen_by_a_thread = cancel.clone();
        let guard = cancel.stop_on_drop();
        assert_eq!(seen_by_a_thread.check(), Ok(()));
        drop(guard);
        assert_eq!(seen_by_a_thread.check(), Err(Cancelled));
        assert!(cancel.is_cancelled());
    }
}
