//! What the source keeps of each listed regular file the target has not resolved yet:
//! its payload, its listed size, and how often the target asked for it and for each of
//! its ranges (asks made on a lost stream uncounted), which bounds the reads a target can
//! make the source do.
//!
//! Must not import: anything that does I/O (see [`crate::session`]).

use std::collections::HashMap;

use crate::session::stream::StreamId;

/// Times a target may ask for one file, and for each range of it: once, and once more
/// after its content did not verify (plus once per lost stream it was asked on). More is
/// a peer queueing reads without bound.
const MAX_ASKS: u8 = 2;

/// A listed regular file the target has not resolved yet.
pub(super) struct Listed<F> {
    pub(super) file: F,
    /// Its size as listed (what its ranges are checked against).
    pub(super) size: u64,
    /// The target's asks for the whole file (whole, delta or resumed).
    pub(super) asks: Asks,
    /// The target's asks per range, by offset: `None` until it asks for a range (only
    /// files asked in ranges pay for the map). Boxed: a pointer in every listed file
    /// instead of an empty map's 48 bytes.
    #[allow(clippy::box_collection)]
    pub(super) ranges: Option<Box<HashMap<u64, Asks>>>,
    /// Whether it was ever asked for (whole or in ranges).
    pub(super) wanted: bool,
}

impl<F> Listed<F> {
    pub(super) fn new(file: F, size: u64) -> Self {
        Listed {
            file,
            size,
            asks: Asks::default(),
            ranges: None,
            wanted: false,
        }
    }

    /// Forgets the asks made on `stream`, which was lost: of the whole file and of each
    /// of its ranges.
    pub(super) fn uncount(&mut self, stream: StreamId) {
        self.asks.uncount(stream);
        if let Some(ranges) = &mut self.ranges {
            ranges.retain(|_, asks| {
                asks.uncount(stream);
                asks.count > 0
            });
        }
    }
}

/// How many times the target asked for one file (or one range of it), a lost stream's
/// asks uncounted.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Asks {
    pub(super) count: u8,
    /// The stream of each of those asks, the first `count` of them.
    pub(super) on: [StreamId; MAX_ASKS as usize],
}

impl Asks {
    /// Whether one more ask is allowed.
    pub(super) fn has_room(&self) -> bool {
        self.count < MAX_ASKS
    }

    /// Counts one more ask, on `stream` (checked with [`Asks::has_room`] before).
    pub(super) fn add(&mut self, stream: StreamId) {
        self.on[self.count as usize] = stream;
        self.count += 1;
    }

    /// Forgets the asks made on `stream`, which was lost.
    pub(super) fn uncount(&mut self, stream: StreamId) {
        let mut kept = 0;
        for k in 0..self.count as usize {
            if self.on[k] != stream {
                self.on[kept] = self.on[k];
                kept += 1;
            }
        }
        self.count = kept as u8;
    }
}
