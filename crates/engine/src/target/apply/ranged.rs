//! A large file received in ranges (protocol 6, `WantRange`/`RangeEnd`): its one temp
//! copy (under its partial name), a [`RangeHasher`] per range being written, and which
//! ranges verified. Ranges come in any order, each range's pieces in order (the session
//! core checked them); a range whose bytes hash to another value than the source's is
//! reported, to be asked again; once every range verified the file is committed as any
//! other. Left unfinished it is cut back to what verified from offset 0, or what the
//! partial it started from held there and nothing wrote over since: content that matched
//! the source when it was written, which a later session checks again (`have`, `Resume`)
//! before it keeps any of it.
//!
//! The file's ranges stay on the one worker its start was routed to: writing and hashing
//! runs at more than a gigabyte a second on one core, above what the streams bring.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use ferry_proto::{Message, RANGE};
use ferry_tree::Privileges;

use super::assembly::Assembly;
use super::outcome::{Failure, Finished};
use super::step::commit;
use crate::range_hash::{range_len, RangeHasher};

/// The ranges of one file: those being written and those verified.
#[derive(Default)]
pub(super) struct Ranges {
    /// Ranges with pieces written and no `RangeEnd` yet, by offset: where the next piece
    /// goes and the hash so far.
    open: HashMap<u64, (u64, RangeHasher)>,
    /// Every range below this offset verified: the file is complete when it is the
    /// file's size (each range counted once, however often it verified).
    prefix: u64,
    /// Ranges above the prefix that verified: offset and length.
    ahead: BTreeMap<u64, u64>,
    /// The partial this session started from held verified content up to here (whole
    /// ranges, asked with `have`).
    held: u64,
    /// Ranges written this session and not verified (yet, or ever), by offset.
    dirty: BTreeSet<u64>,
}

impl Ranges {
    /// The file starts from a partial holding its first `held` bytes, whole ranges.
    pub fn hold(&mut self, held: u64) {
        self.held = held;
    }

    /// What a partial may keep when the session ends: the content from offset 0 that
    /// verified, or was held before and not written over since.
    pub fn kept(&self) -> u64 {
        let untouched = self.dirty.first().copied().unwrap_or(u64::MAX);
        self.prefix.max(self.held.min(untouched))
    }

    /// The range at `offset`, of `len` bytes, verified.
    fn verified(&mut self, offset: u64, len: u64) {
        self.dirty.remove(&offset);
        if offset != self.prefix {
            if offset > self.prefix {
                self.ahead.insert(offset, len);
            }
            return;
        }
        self.prefix += len;
        while let Some(len) = self.ahead.remove(&self.prefix) {
            self.prefix += len;
        }
    }
}

/// What a frame did to a file in ranges.
pub(super) enum RangeStep {
    /// More of it is to come.
    More,
    /// The range at this offset did not match the source's value: ask it again.
    Mismatch(u64),
    /// Its last range verified, and this is how the file ended.
    Finished(Finished),
}

/// Applies `message`, a frame of a file received in ranges.
pub(super) fn step(
    a: &mut Assembly,
    message: Message,
    privileges: Privileges,
    fsync: bool,
) -> Result<RangeStep, Failure> {
    let size = a.pending.size;
    match message {
        // An empty piece (the core takes one where a range's next piece may start, its
        // end included) changes nothing.
        Message::Data { ref bytes, .. } if bytes.is_empty() => {}
        Message::Hole { len: 0, .. } => {}
        Message::Data { offset, bytes, .. } => {
            let len = bytes.len() as u64;
            let written = match a.spoiled {
                true => Ok(()),
                false => a.temp().and_then(|file| Ok(file.write_at(offset, &bytes)?)),
            };
            let spoiled = a.no_room_for_a_copy(written)? || a.spoiled;
            let hasher = piece(a, offset, len)?;
            if !spoiled {
                hasher.update(&bytes);
            }
        }
        Message::Hole { offset, len, .. } => {
            // What an earlier ask of this range wrote here must read as zeros.
            let made = match a.spoiled {
                true => Ok(()),
                false => a.temp().and_then(|file| Ok(file.zero_range(offset, len)?)),
            };
            let spoiled = a.no_room_for_a_copy(made)? || a.spoiled;
            let hasher = piece(a, offset, len)?;
            if !spoiled {
                hasher.update_zeros(len);
            }
        }
        Message::RangeEnd {
            offset,
            len,
            same,
            cv,
            ..
        } => {
            let ranges = a.ranges.as_mut().expect("a file in ranges");
            let hashed = ranges.open.remove(&offset);
            debug_assert_eq!(len, range_len(size, offset), "the core checks ranges");
            let matches = match (same, hashed) {
                // The source holds what the target said it held: no data came.
                (true, _) => true,
                (false, Some((pos, hasher))) => pos == offset + len && hasher.value() == cv,
                (false, None) => false,
            };
            if !matches && !a.spoiled {
                return Ok(RangeStep::Mismatch(offset));
            }
            ranges.verified(offset, len);
            if ranges.prefix >= size {
                return end(a, privileges, fsync).map(RangeStep::Finished);
            }
        }
        other => {
            return Err(Failure::Protocol(format!(
                "unexpected {} for {}, which comes in ranges",
                other.name(),
                a.pending.path
            )))
        }
    }
    Ok(RangeStep::More)
}

/// The hasher of the range a piece at `offset` of `len` bytes continues: a new one at
/// the range's start (an ask of the range, maybe again), else the one it continues.
fn piece(a: &mut Assembly, offset: u64, len: u64) -> Result<&mut RangeHasher, Failure> {
    let size = a.pending.size;
    let start = offset - offset % RANGE;
    let ranges = a.ranges.as_mut().expect("a file in ranges");
    if offset == start {
        ranges
            .open
            .insert(start, (start, RangeHasher::new(size, start)));
        ranges.dirty.insert(start);
    }
    match ranges.open.get_mut(&start) {
        Some((pos, hasher)) if *pos == offset => {
            *pos += len;
            Ok(hasher)
        }
        _ => Err(Failure::Protocol(format!(
            "a piece at byte {offset} of {} continues no range being written",
            a.pending.path
        ))),
    }
}

/// Every range verified: the file is committed, or, spoiled (no room for the copy),
/// asked again whole to be written in place.
fn end(a: &mut Assembly, privileges: Privileges, fsync: bool) -> Result<Finished, Failure> {
    if a.spoiled {
        return Ok(Finished::Mismatch);
    }
    commit(a, a.pending.size, privileges, fsync)
}
