//! Where the target's asks go and when: the asks ready to go out, in order, and the
//! streams they may go out on, each with its byte credit (docs/design/streams.md, 2.2).
//!
//! An ask goes to the live stream with the least outstanding (bytes asked on it and not
//! yet received: a file counts its size, at least [`MIN_CHARGE`]) while that is under
//! [`STREAM_CREDIT`]; the rest wait here, bounded by the listing window. So a slow stream
//! is asked less, and what the source may send this side is at most the streams' credit,
//! each byte checked against its ask. A session without the streams option has stream 0
//! alone and no credit: every ask goes out at once, as in protocol 5.
//!
//! Plain bookkeeping: the session (`fetch`) sends what this picks. Must not import the
//! apply workers or the planner.

use std::collections::{HashMap, VecDeque};

use ferry_proto::session::stream::StreamId;

use super::fetch::Ready;
use super::plan::Pending;
use crate::framed::FrameSender;
use crate::joined::{Wanted, MORE_STREAMS_BYTES, MORE_STREAMS_FILES};
use crate::range_hash::range_len;
use ferry_proto::RANGE;

/// Bytes a stream may have asked and not received: four windows of a 4 MiB-window
/// stream, so a window-bound stream never waits for asks.
pub const STREAM_CREDIT: u64 = 16 << 20;
/// What a file counts against its stream's credit at least: a small file's frames and
/// its work cost about this much.
pub const MIN_CHARGE: u64 = 16 << 10;

/// An ask waiting for a stream.
pub(super) enum Queued {
    /// A file to ask for whole (a `Want`, or an entry of a `Wants`).
    Whole { index: u64, pending: Pending },
    /// An ask a task prepared: a delta's `Want` and signature, or a `Resume`.
    Ready(Ready),
    /// The ranges of a large file not asked yet, from `next` to its `size`: each goes out
    /// on its own (a `WantRange`), in order, as streams have credit. The first
    /// `have.len()` ranges are held (a partial's), with these values.
    Ranges {
        index: u64,
        next: u64,
        size: u64,
        have: Vec<[u8; 32]>,
    },
    /// One range to ask (again, whole, if it did not verify or its stream was lost);
    /// `have`: the value of the bytes held for it.
    Range {
        index: u64,
        offset: u64,
        size: u64,
        have: Option<[u8; 32]>,
    },
}

impl Queued {
    fn charge(&self) -> u64 {
        let size = match self {
            Queued::Whole { pending, .. } => pending.size,
            Queued::Ready(ready) => ready.size(),
            Queued::Range { offset, size, .. } => range_len(*size, *offset),
            Queued::Ranges { .. } => unreachable!("taken a range at a time"),
        };
        size.max(MIN_CHARGE)
    }

    /// What its charge is kept under: the file, or the file's range.
    fn key(&self) -> (u64, u64) {
        match self {
            Queued::Whole { index, .. } => (*index, WHOLE),
            Queued::Ready(ready) => (ready.index(), WHOLE),
            Queued::Range { index, offset, .. } => (*index, *offset),
            Queued::Ranges { .. } => unreachable!("taken a range at a time"),
        }
    }
}

/// The key of a whole file's charge (a range's is its offset).
const WHOLE: u64 = u64::MAX;

/// The asks waiting, and the streams' credit.
pub(super) struct Asks {
    /// Whether the session has the streams option (credit, `Wants`, joined streams).
    multi: bool,
    queue: VecDeque<Queued>,
    /// Each stream's sender while it is live, by stream number.
    outlets: Vec<Option<FrameSender>>,
    /// Bytes asked on each stream and not received yet.
    outstanding: Vec<u64>,
    /// What each file (or range, by offset) in flight was charged, and where.
    charged: HashMap<(u64, u64), (u16, u64)>,
    /// Asked so far (files, bytes).
    asked: (u64, u64),
    /// The thresholds passed and said so far.
    said: (bool, bool),
}

impl Asks {
    /// Asks over stream 0 (`tx`); `multi` when the session has the streams option.
    pub fn new(tx: FrameSender, multi: bool) -> Asks {
        Asks {
            multi,
            queue: VecDeque::new(),
            outlets: vec![Some(tx)],
            outstanding: vec![0],
            charged: HashMap::new(),
            asked: (0, 0),
            said: (false, false),
        }
    }

    pub fn is_multi(&self) -> bool {
        self.multi
    }

    pub fn push(&mut self, queued: Queued) {
        self.queue.push_back(queued);
    }

    /// Queues `queued` ahead of the rest: a range asked again goes before new work, so a
    /// file's ranges do not wait behind a whole queue.
    pub fn push_front(&mut self, queued: Queued) {
        self.queue.push_front(queued);
    }

    /// Stream `stream` joined: asks may go to it through `tx`.
    pub fn joined(&mut self, stream: u16, tx: FrameSender) {
        let s = usize::from(stream);
        if self.outlets.len() <= s {
            self.outlets.resize(s + 1, None);
            self.outstanding.resize(s + 1, 0);
        }
        self.outlets[s] = Some(tx);
        self.outstanding[s] = 0;
    }

    /// Stream `stream` is gone: nothing more is asked on it. Its files' charges go when
    /// they are asked again ([`Asks::received`]).
    pub fn lost(&mut self, stream: u16) {
        if let Some(outlet) = self.outlets.get_mut(usize::from(stream)) {
            *outlet = None;
        }
    }

    /// The stream the next ask goes to, with its sender: the live one with the least
    /// outstanding, if that has credit left. `None` with nothing to ask.
    pub fn next_stream(&self) -> Option<(StreamId, FrameSender)> {
        self.queue.front()?;
        let (s, tx) = self
            .outlets
            .iter()
            .enumerate()
            .filter_map(|(s, tx)| Some((s, tx.as_ref()?)))
            .min_by_key(|&(s, _)| self.outstanding[s])?;
        if self.multi && self.outstanding[s] >= STREAM_CREDIT {
            return None;
        }
        Some((StreamId(s as u16), tx.clone()))
    }

    /// The next ask, if `stream` has credit for it; charged to `stream`.
    pub fn pop_for(&mut self, stream: StreamId) -> Option<Queued> {
        let s = usize::from(stream.0);
        if self.multi && self.outstanding[s] >= STREAM_CREDIT {
            return None;
        }
        let queued = match self.queue.front_mut()? {
            // The next range of a file; the rest stay in front.
            Queued::Ranges {
                index,
                next,
                size,
                have,
            } => {
                let range = Queued::Range {
                    index: *index,
                    offset: *next,
                    size: *size,
                    have: have.get((*next / RANGE) as usize).copied(),
                };
                *next += range_len(*size, *next);
                if *next >= *size {
                    self.queue.pop_front();
                }
                range
            }
            _ => self.queue.pop_front()?,
        };
        self.charge(&queued, stream);
        Some(queued)
    }

    /// The next ask if it is a whole file and `stream` has credit for it (the rest of a
    /// `Wants` batch).
    pub fn pop_whole_for(&mut self, stream: StreamId) -> Option<(u64, Pending)> {
        if !matches!(self.queue.front(), Some(Queued::Whole { .. })) {
            return None;
        }
        match self.pop_for(stream)? {
            Queued::Whole { index, pending } => Some((index, pending)),
            _ => unreachable!("just seen whole"),
        }
    }

    fn charge(&mut self, queued: &Queued, stream: StreamId) {
        let charge = queued.charge();
        self.outstanding[usize::from(stream.0)] += charge;
        if let Some((s, old)) = self.charged.insert(queued.key(), (stream.0, charge)) {
            self.uncharge(s, old);
        }
        // A delta's bytes on the wire are unknown and usually few: it counts as a file.
        let delta = matches!(
            queued,
            Queued::Ready(Ready::Want {
                signature: Some(_),
                ..
            })
        );
        // A range counts its bytes only: a large file is bulk, not many files.
        self.asked.0 += u64::from(!matches!(queued, Queued::Range { .. }));
        self.asked.1 += if delta { 0 } else { charge };
    }

    fn uncharge(&mut self, stream: u16, charge: u64) {
        if let Some(out) = self.outstanding.get_mut(usize::from(stream)) {
            *out = out.saturating_sub(charge);
        }
    }

    /// File `index` came (its end, its failure) or is asked no more: its charge goes back
    /// to its stream. Once for each ask; later calls do nothing.
    pub fn received(&mut self, index: u64) {
        self.received_range(index, WHOLE);
    }

    /// The range at `offset` of file `index` came (its end) or is asked no more: as
    /// [`Asks::received`] for a file.
    pub fn received_range(&mut self, index: u64, offset: u64) {
        if let Some((stream, charge)) = self.charged.remove(&(index, offset)) {
            self.uncharge(stream, charge);
        }
    }

    /// File `index`, asked in ranges, ended (it failed or is in place): its ranges still
    /// charged and those not asked yet are asked no more.
    pub fn ranged_ended(&mut self, index: u64) {
        let mut back = Vec::new();
        self.charged.retain(|&(i, _), &mut (stream, charge)| {
            let keep = i != index;
            if !keep {
                back.push((stream, charge));
            }
            keep
        });
        for (stream, charge) in back {
            self.uncharge(stream, charge);
        }
        self.queue.retain(|q| match q {
            Queued::Ranges { index: i, .. } | Queued::Range { index: i, .. } => *i != index,
            _ => true,
        });
    }

    /// Whether the session now has work enough for more streams, and of which kind: once
    /// for bytes, once for files.
    pub fn wants_more_streams(&mut self) -> Option<Wanted> {
        if !self.multi {
            return None;
        }
        let (files, bytes) = self.asked;
        if !self.said.0 && files >= MORE_STREAMS_FILES {
            self.said.0 = true;
            return Some(Wanted::Files);
        }
        if !self.said.1 && bytes >= MORE_STREAMS_BYTES {
            self.said.1 = true;
            return Some(Wanted::Bytes);
        }
        None
    }
}
