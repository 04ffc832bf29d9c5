//! Which files the target asks in ranges (protocol 6, `WantRange`) and how they start:
//! a large file asked whole goes to its worker as a `StartRanged` and its ranges wait in
//! [`Asks`] for streams with credit, one at a time; a partial an interrupted session left
//! is hashed range by range first, and its whole ranges are asked with `have`, so the
//! source sends only those that differ, over any stream.
//!
//! [`Asks`]: super::asks::Asks
//!
//! Must not import the planner's walk or a command.

use ferry_proto::session::target::MIN_RANGED;
use ferry_proto::RANGE;

use super::apply::{Job, Resumed};
use super::asks::Queued;
use super::fetch::{Ready, ReadySender};
use super::in_place::InPlace;
use super::plan::Pending;
use super::Session;
use crate::cancel::Cancel;
use crate::error::EngineError;
use crate::range_hash::RangeHasher;

impl Session {
    /// Whether a file is asked in ranges: one of at least [`MIN_RANGED`] bytes, in a
    /// session with the streams option that may have more than one, written to a temp
    /// copy (in place a file is written front to back) and not as a delta.
    pub(super) fn in_ranges(&self, pending: &Pending) -> bool {
        self.asks.is_multi()
            && self.streams_max > 1
            && pending.size >= MIN_RANGED
            && !matches!(pending.in_place, InPlace::Chosen { .. })
    }

    /// Asks for file `index` in ranges: its `Start` goes to its worker now, its ranges
    /// wait for streams.
    pub(super) async fn want_ranges(
        &mut self,
        index: u64,
        pending: Pending,
    ) -> Result<(), EngineError> {
        let size = pending.size;
        let start = Job::StartRanged {
            index,
            pending,
            resumed: None,
        };
        self.job(index, start).await?;
        self.asks.push(Queued::Ranges {
            index,
            next: 0,
            size,
            have: Vec::new(),
        });
        Ok(())
    }
}

/// Hashes the whole ranges a partial holds (off the reactor), then hands the session the
/// file's ranges to ask, those with `have`. A partial that cannot be read is written
/// over from the start. Should the session end meanwhile, the partial stays.
pub(super) async fn resume_ranges(
    index: u64,
    pending: Pending,
    temp: ferry_tree::TempFile,
    offset: u64,
    ready: ReadySender,
    cancel: Cancel,
) {
    let size = pending.size;
    let held = offset - offset % RANGE;
    let hashed = tokio::task::spawn_blocking(move || {
        if cancel.is_cancelled() {
            temp.keep();
            return None;
        }
        let values = hash_ranges(&temp, size, held, &cancel);
        if cancel.is_cancelled() {
            temp.keep();
            return None;
        }
        Some((Some(temp), values.unwrap_or_default()))
    })
    .await
    // The hashing thread failed (it panicked): the file is received anew; its partial
    // was dropped with the thread.
    .unwrap_or(Some((None, Vec::new())));
    // The session ended: nothing more is asked.
    let Some((temp, have)) = hashed else { return };
    let held = have.len() as u64 * RANGE;
    let start = Job::StartRanged {
        index,
        pending,
        resumed: temp.map(|temp| Box::new(Resumed::held(temp, held))),
    };
    let _ = ready.send(Ready::Ranged {
        index,
        size,
        have,
        start,
    });
}

/// The values of the whole ranges in the first `held` bytes of `temp` (a file of `size`
/// bytes); `None` if it cannot be read whole or the session ends.
fn hash_ranges(
    temp: &ferry_tree::TempFile,
    size: u64,
    held: u64,
    cancel: &Cancel,
) -> Option<Vec<[u8; 32]>> {
    let mut values = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut at = 0u64;
    while at < held {
        cancel.check().ok()?;
        let mut hasher = RangeHasher::new(size, at);
        let end = at + RANGE;
        while at < end {
            let n = (end - at).min(buf.len() as u64) as usize;
            std::os::unix::fs::FileExt::read_exact_at(temp.file(), &mut buf[..n], at).ok()?;
            hasher.update(&buf[..n]);
            at += n as u64;
        }
        values.push(hasher.value());
    }
    Some(values)
}
