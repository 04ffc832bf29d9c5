//! A target's asks for ranges of a large file (`WantRange`, protocol 6 with the `streams`
//! option): which it may make, and the work each becomes. A range is [`RANGE`] bytes at a
//! multiple of [`RANGE`] (a file's last range fewer) of a listed, unresolved regular file
//! of at least [`MIN_RANGED`] bytes whose signature is not coming; each range may be
//! asked twice (once more after it did not verify), plus once per lost stream it was
//! asked on. The per-range counts live in the file's [`super::Listed`], made on its first
//! range ask and dropped with it when an `Ack` resolves it.
//!
//! Must not import: anything that does I/O (see [`crate::session`]).

use std::collections::HashMap;

use super::{Ask, SourceCore};
use crate::session::stream::{StreamId, MIN_RANGED, RANGE};
use crate::session::SessionError;

impl<F: Clone> SourceCore<F> {
    /// `WantRange{index, offset, len, have, cv}` on `stream` (the session has the
    /// `streams` option: the caller checked). Queues the range's work for `stream`.
    pub(super) fn want_range(
        &mut self,
        stream: StreamId,
        index: u64,
        offset: u64,
        len: u64,
        have: Option<[u8; 32]>,
    ) -> Result<(), SessionError> {
        let refuse = |why: String| {
            Err(SessionError::protocol(format!(
                "WantRange for entry {index} at offset {offset} ({len} bytes): {why}"
            )))
        };
        let Some(listed) = self.files.get(&index) else {
            return refuse(
                "it is not a listed, unresolved regular file; only those are asked for".into(),
            );
        };
        let size = listed.size;
        if size < MIN_RANGED {
            return refuse(format!(
                "the file has {size} bytes, and only files of at least {MIN_RANGED} bytes \
                 (4 ranges of {RANGE}) are asked for in ranges"
            ));
        }
        if !offset.is_multiple_of(RANGE) || offset >= size {
            return refuse(format!(
                "a range starts at a multiple of {RANGE} below the file's size of {size} bytes"
            ));
        }
        let expected = RANGE.min(size - offset);
        if len != expected {
            return refuse(format!(
                "the range at that offset of a {size}-byte file is {expected} bytes long"
            ));
        }
        if self.signatures.is_coming(index) {
            return refuse(
                "the file's signature is still coming (it was asked for as a delta)".into(),
            );
        }
        let listed = self.files.get_mut(&index).expect("seen above");
        let ranges = listed
            .ranges
            .get_or_insert_with(|| Box::new(HashMap::new()));
        let asks = ranges.entry(offset).or_default();
        if !asks.has_room() {
            return refuse(format!(
                "that range was asked for {} times already, the most a range may be \
                 (plus once per lost stream it was asked on)",
                asks.count
            ));
        }
        asks.add(stream);
        listed.wanted = true;
        let file = listed.file.clone();
        self.queue(index, Ask::Range { offset, len, have }, file, stream);
        Ok(())
    }
}
