//! A large file received in ranges (protocol 6, `WantRange`/`RangeEnd`): the ranges of
//! it that are asked and not ended, each on its own stream, and the rules their frames
//! keep. A range's pieces continue where the last one ended, stay within the range and
//! come on the stream it was asked on; its `RangeEnd` comes once they reached its end
//! (or, with `same`, before any, when the target said what it held). `FileFailed` on a
//! stream that has a range of the file open ends the whole file; its other open ranges
//! drain.
//!
//! Only open ranges are held: ranges not asked yet are the driver's, ended ones are
//! forgotten, so what a file holds here is bounded by the asks in flight, not its size.
//! Whether a range's bytes verify is the driver's (it hashes what it wrote): it says so
//! with [`TargetCore::handle_range_mismatch`], and a range that fails twice fails the file.
//!
//! ```text
//! ask_range(i, off, s) ─▶ WantRange on s ─▶ Data/Hole on s ... RangeEnd on s
//!                          (did not verify) ─▶ handle_range_mismatch: ask again once
//! ```
//!
//! Must not import: anything that does I/O (see [`crate::session`]).

use std::collections::BTreeMap;

use super::{Asked, Open, TargetCore, Verdict, Wanted};
use crate::message::Message;
use crate::session::stream::{StreamId, MIN_RANGED, RANGE};
use crate::session::SessionError;

/// One asked range of a file, until its `RangeEnd`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct OpenRange {
    stream: StreamId,
    /// Where its next piece must start.
    pos: u64,
    end: u64,
    /// The value of the bytes the target said it holds (`have`), if it did.
    have: Option<[u8; 32]>,
}

/// The open ranges of one file, by offset.
pub(super) type Ranges = BTreeMap<u64, OpenRange>;

impl TargetCore {
    /// Asks for the range of wanted file `index` at `offset` on `stream`, and returns the
    /// `WantRange` for the driver to send there; `have`: the target holds these bytes
    /// already, with this value (the source then answers `same` if its own are equal).
    /// `None` when the file is no longer wanted (it failed or resolved meanwhile: its
    /// remaining ranges are not asked).
    ///
    /// # Panics
    /// Without the `streams` option, on a stream that is not live, for a file under
    /// [`MIN_RANGED`], a misaligned offset or one past the end, or a range that is asked
    /// and not ended: the driver's bugs.
    #[must_use]
    pub fn ask_range(
        &mut self,
        index: u64,
        offset: u64,
        stream: StreamId,
        have: Option<[u8; 32]>,
    ) -> Option<Message> {
        assert!(self.streams.is_enabled(), "ranges need the streams option");
        assert!(self.streams.is_live(stream), "asked on {stream}, not live");
        let Some(Open::Wanted(wanted)) = self.open.get_mut(&index) else {
            return None;
        };
        if wanted.ended {
            return None;
        }
        let size = wanted.size;
        assert!(
            size >= MIN_RANGED && offset.is_multiple_of(RANGE) && offset < size,
            "range at {offset} of a {size}-byte file"
        );
        if wanted.asked != Some(Asked::Ranged) {
            debug_assert!(
                !wanted.started,
                "entry {index} asked in ranges after a frame"
            );
            *wanted = Wanted {
                asked: Some(Asked::Ranged),
                ..Wanted::new(size)
            };
        }
        let len = RANGE.min(size - offset);
        let open = OpenRange {
            stream,
            pos: offset,
            end: offset + len,
            have,
        };
        let previous = self.ranged.entry(index).or_default().insert(offset, open);
        assert!(
            previous.is_none(),
            "range at {offset} of entry {index} asked again before it ended"
        );
        Some(Message::WantRange {
            index,
            offset,
            len,
            have: have.is_some(),
            cv: have.unwrap_or_default(),
        })
    }

    /// The bytes of the range at `offset` of file `index` did not match the source's
    /// value. [`Verdict::Resend`]: ask for that range again ([`TargetCore::ask_range`]);
    /// [`Verdict::Failed`]: it did not match twice, the file fails (its other open ranges
    /// drain; the driver reports it and discards what it wrote, whose end it then tells
    /// with [`FileOutcome::Aborted`](super::FileOutcome::Aborted)); [`Verdict::Done`]: the
    /// file is no longer wanted, nothing to do.
    pub fn handle_range_mismatch(&mut self, index: u64, offset: u64) -> Verdict {
        match self.open.get(&index) {
            Some(Open::Wanted(w)) if w.asked == Some(Asked::Ranged) && !w.ended => {}
            _ => return Verdict::Done,
        }
        if self.resent_ranges.insert((index, offset)) {
            return Verdict::Resend;
        }
        self.end_ranged(index, None);
        Verdict::Failed
    }

    /// The listed size of wanted file `index`, while it is wanted.
    pub fn wanted_size(&self, index: u64) -> Option<u64> {
        match self.open.get(&index) {
            Some(Open::Wanted(w)) => Some(w.size),
            _ => None,
        }
    }

    /// Whether file `index` is received in ranges.
    pub fn is_ranged(&self, index: u64) -> bool {
        matches!(self.open.get(&index), Some(Open::Wanted(w)) if w.asked == Some(Asked::Ranged))
    }

    /// A frame of file `index`, asked in ranges, on `stream`.
    pub(super) fn range_frame(
        &mut self,
        index: u64,
        stream: StreamId,
        frame: &Message,
    ) -> Result<(), SessionError> {
        let ranges = self.ranged.entry(index).or_default();
        match *frame {
            Message::Data {
                offset, ref bytes, ..
            } => piece(ranges, index, stream, "Data", offset, bytes.len() as u64),
            Message::Hole { offset, len, .. } => piece(ranges, index, stream, "Hole", offset, len),
            Message::RangeEnd {
                offset,
                len,
                same,
                cv,
                ..
            } => range_end(ranges, index, stream, offset, len, same, cv),
            Message::FileFailed { .. } => {
                if !ranges.values().any(|r| r.stream == stream) {
                    return Err(SessionError::protocol(format!(
                        "FileFailed for entry {index} on {stream}, where none of its ranges \
                         is open"
                    )));
                }
                self.end_ranged(index, Some(stream));
                Ok(())
            }
            ref other => Err(SessionError::protocol(format!(
                "{} for entry {index}, which was asked in ranges: its content comes as Data \
                 and Hole, each range ended by RangeEnd",
                other.name()
            ))),
        }
    }

    /// Ends file `index`, asked in ranges: no frame of it is taken any more, and each of
    /// its open ranges drains on its stream, but for the one a `FileFailed` on `failed_on`
    /// just ended.
    pub(super) fn end_ranged(&mut self, index: u64, mut failed_on: Option<StreamId>) {
        match self.open.get_mut(&index) {
            Some(Open::Wanted(wanted)) if wanted.asked == Some(Asked::Ranged) => {
                wanted.ended = true
            }
            _ => return,
        }
        self.resent_ranges.retain(|&(i, _)| i != index);
        for range in self.ranged.remove(&index).unwrap_or_default().into_values() {
            if failed_on == Some(range.stream) {
                failed_on = None;
                continue;
            }
            if self.streams.is_live(range.stream) {
                *self.draining.entry((index, range.stream)).or_default() += 1;
            }
        }
    }

    /// The open ranges asked on lost `stream`, taken back: `(index, offset)` of each, to
    /// ask again elsewhere.
    pub(super) fn take_ranges_on(&mut self, stream: StreamId) -> Vec<(u64, u64)> {
        let mut lost = Vec::new();
        for (&index, ranges) in self.ranged.iter_mut() {
            ranges.retain(|&offset, range| {
                let keep = range.stream != stream;
                if !keep {
                    lost.push((index, offset));
                }
                keep
            });
        }
        lost
    }
}

/// A piece at `offset` of `len` bytes must continue an open range of the file asked on
/// `stream`, within that range.
fn piece(
    ranges: &mut Ranges,
    index: u64,
    stream: StreamId,
    what: &str,
    offset: u64,
    len: u64,
) -> Result<(), SessionError> {
    let range = match ranges.range_mut(..=offset).next_back() {
        Some((_, range)) if offset < range.end || (len == 0 && offset == range.end) => range,
        _ => {
            return Err(SessionError::protocol(format!(
                "{what} for entry {index} at offset {offset}, in none of its ranges asked \
                 and not ended"
            )))
        }
    };
    if range.stream != stream {
        return Err(SessionError::protocol(format!(
            "{what} for entry {index} at offset {offset} on {stream}; its range was asked on {}",
            range.stream
        )));
    }
    if offset != range.pos {
        return Err(SessionError::protocol(format!(
            "{what} for entry {index} at offset {offset}, expected {}",
            range.pos
        )));
    }
    match offset.checked_add(len) {
        Some(end) if end <= range.end => {
            range.pos = end;
            Ok(())
        }
        _ => Err(SessionError::protocol(format!(
            "{what} for entry {index} at offset {offset} of {len} bytes goes past the end of \
             its range at {}",
            range.end
        ))),
    }
}

/// A range's end: the range asked on this stream, of the asked length, its pieces all
/// come (or none, with `same` after the target said what it holds, and the same value).
fn range_end(
    ranges: &mut Ranges,
    index: u64,
    stream: StreamId,
    offset: u64,
    len: u64,
    same: bool,
    cv: [u8; 32],
) -> Result<(), SessionError> {
    let Some(range) = ranges.get(&offset).copied() else {
        return Err(SessionError::protocol(format!(
            "RangeEnd for entry {index} at offset {offset}, where no range of it is asked \
             and not ended"
        )));
    };
    if range.stream != stream {
        return Err(SessionError::protocol(format!(
            "RangeEnd for entry {index} at offset {offset} on {stream}; the range was asked \
             on {}",
            range.stream
        )));
    }
    if len != range.end - offset {
        return Err(SessionError::protocol(format!(
            "RangeEnd for entry {index} at offset {offset} says {len} bytes; the range asked \
             has {}",
            range.end - offset
        )));
    }
    if same {
        if range.have != Some(cv) || range.pos != offset {
            return Err(SessionError::protocol(format!(
                "RangeEnd for entry {index} at offset {offset} says the target's bytes are \
                 the source's, but the target did not say it held these (or data came)"
            )));
        }
    } else if range.pos != range.end {
        return Err(SessionError::protocol(format!(
            "RangeEnd for entry {index} at offset {offset} after {} of its {len} bytes",
            range.pos - offset
        )));
    }
    ranges.remove(&offset);
    Ok(())
}
