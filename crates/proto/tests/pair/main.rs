//! The two session cores against each other in memory, as quinn-proto's `Pair` does: a
//! source core over a fake tree and a target core over a fake volume, every frame
//! encoded and decoded by the real codec, the interleaving of everything (listing, file
//! data, acks, local completions) chosen at random, and faults injected between them:
//! a cut connection, a dropped or repeated frame, a frame the codec cannot read, file
//! data corrupted on the way. Whatever happens, each side either ends with the same tree
//! or stops with a classified error, never panics and never runs forever.
//!
//! A session may have several streams (the `streams` option): each stream is a FIFO of
//! its own each way, the run picks which stream's queue delivers next (so frames of
//! different streams overtake each other freely), and a data stream may be cut mid-run:
//! each side notices it when its queue from that stream ran dry (or hears the other's
//! `StreamGone` first), and the files asked on it are asked again on the others.

mod property;
mod source;
mod streams;
mod target;
mod tree;

use bytes::BytesMut;
use ferry_proto::{decode, encode, Limits, Message, SessionError, StreamId};

use source::Source;
use target::Target;
use tree::Tree;

/// A small deterministic generator, so a failing case replays from its seed.
pub struct Dice(u64);

impl Dice {
    pub fn new(seed: u64) -> Dice {
        Dice(seed | 1)
    }

    pub fn roll(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.roll() % n.max(1)
    }
}

/// Which way a frame travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Way {
    ToTarget,
    ToSource,
}

/// What goes wrong between the cores, at the `nth` frame travelling `way`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    None,
    /// The connection is cut: nothing from this frame on arrives.
    Cut {
        way: Way,
        nth: u64,
    },
    /// This frame is lost.
    Drop {
        way: Way,
        nth: u64,
    },
    /// This frame arrives twice.
    Repeat {
        way: Way,
        nth: u64,
    },
    /// This frame's tag is garbled: the codec cannot read it.
    Garble {
        way: Way,
        nth: u64,
    },
    /// The first byte of file data from this frame on arrives changed.
    CorruptData {
        nth: u64,
    },
    /// Data stream `stream` (not 0) is cut once `nth` frames were sent either way:
    /// nothing sent on it after arrives, what is in flight still does.
    CutStream {
        stream: u16,
        nth: u64,
    },
}

/// How a run ended.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    /// Both sides finished: the target said `Done`, the source heard it.
    Converged,
    /// A side stopped on a rule the other broke (it would send `Error{Protocol}`).
    Protocol(String),
    /// A side could not decode what came.
    Codec(String),
    /// The connection closed before the session's end (exit 10 for the real sides).
    Closed,
    /// Neither side can go on: the real sides' data timeout ends it (exit 30).
    Stalled,
}

/// One direction of the connection: encoded frames in flight.
#[derive(Default)]
struct Wire {
    bytes: BytesMut,
    sent: u64,
    closed: bool,
}

pub struct Pair {
    pub source: Source,
    pub target: Target,
    /// One wire per stream each way, stream 0 first.
    to_target: Vec<Wire>,
    to_source: Vec<Wire>,
    /// Frames sent either way, for `CutStream`.
    sent: u64,
    fault: Fault,
    limits: Limits,
    rng: Dice,
    /// Data frames seen on the way to the target (for `CorruptData`).
    data_frames: u64,
}

/// Steps after which a run counts as looping: far more than any honest run needs.
const MAX_STEPS: usize = 200_000;

impl Pair {
    pub fn new(source: Tree, target: Tree, window: u64, fault: Fault, seed: u64) -> Pair {
        Pair::with_streams(source, target, window, fault, seed, 1)
    }

    /// A pair whose session has `streams` streams, all joined from the start; with 1 it
    /// has no `streams` option (a session of one stream, as protocol 5's).
    pub fn with_streams(
        source: Tree,
        target: Tree,
        window: u64,
        fault: Fault,
        seed: u64,
        streams: u16,
    ) -> Pair {
        let limits = Limits {
            window,
            ..Limits::default()
        };
        let mut rng = Dice::new(seed);
        let max_frame = 1 + rng.below(4) as usize;
        let wires = || (0..streams).map(|_| Wire::default()).collect::<Vec<_>>();
        Pair {
            source: Source::new(source, &limits, max_frame, streams),
            target: Target::new(target, &limits, streams, rng.roll()),
            to_target: wires(),
            to_source: wires(),
            sent: 0,
            fault,
            limits,
            rng,
            data_frames: 0,
        }
    }

    /// Puts `message` on stream `stream`'s wire going `way`, as the fault says.
    fn send(&mut self, way: Way, stream: StreamId, mut message: Message) {
        self.sent += 1;
        if let Fault::CutStream { stream: cut, nth } = self.fault {
            if self.sent == nth {
                self.to_target[cut as usize].closed = true;
                self.to_source[cut as usize].closed = true;
            }
        }
        let n = match way {
            Way::ToTarget => self.to_target.iter().map(|w| w.sent).sum::<u64>(),
            Way::ToSource => self.to_source.iter().map(|w| w.sent).sum::<u64>(),
        };
        if let Message::Data { bytes, .. } = &mut message {
            self.data_frames += 1;
            if let Fault::CorruptData { nth } = self.fault {
                if self.data_frames == nth && !bytes.is_empty() {
                    let mut changed = bytes.to_vec();
                    changed[0] ^= 0xff;
                    *bytes = changed.into();
                }
            }
        }
        let wire = match way {
            Way::ToTarget => &mut self.to_target[stream.0 as usize],
            Way::ToSource => &mut self.to_source[stream.0 as usize],
        };
        wire.sent += 1;
        if wire.closed {
            return;
        }
        let mut times = 1;
        match self.fault {
            Fault::Cut { way: w, nth } if w == way && nth == n => {
                wire.closed = true;
                return;
            }
            Fault::Drop { way: w, nth } if w == way && nth == n => return,
            Fault::Repeat { way: w, nth } if w == way && nth == n => times = 2,
            _ => {}
        }
        for _ in 0..times {
            let start = wire.bytes.len();
            encode(&message, &mut wire.bytes);
            if let Fault::Garble { way: w, nth } = self.fault {
                if w == way && nth == n {
                    // The tag, after the 4-byte length: no message has it.
                    wire.bytes[start + 4] = 0xee;
                }
            }
        }
    }

    /// Moves what both sides want to send onto the wires.
    fn flush(&mut self) {
        while let Some(message) = self.source.core.poll_transmit() {
            self.send(Way::ToTarget, StreamId::CONTROL, message);
        }
        for (stream, message) in std::mem::take(&mut self.target.outbox) {
            self.send(Way::ToSource, stream, message);
        }
    }

    /// Delivers one frame going `way`, from a stream picked at random among those with
    /// a whole frame waiting, if any; `Err` ends the run. A frame from a stream the
    /// receiving side no longer reads (it is gone) is dropped, as a driver does.
    fn deliver(&mut self, way: Way) -> Result<bool, End> {
        let wires = match way {
            Way::ToTarget => &mut self.to_target,
            Way::ToSource => &mut self.to_source,
        };
        let ready: Vec<usize> = (0..wires.len())
            .filter(|&k| !wires[k].bytes.is_empty())
            .collect();
        if ready.is_empty() {
            return Ok(false);
        }
        let stream = ready[self.rng.below(ready.len() as u64) as usize];
        let wire = &mut wires[stream];
        let message = match decode(&mut wire.bytes, &self.limits) {
            Ok(Some(message)) => message,
            // A frame cut short by a fault: the stream's reader waits for the rest.
            Ok(None) => return Ok(false),
            Err(e) => return Err(End::Codec(e.to_string())),
        };
        let stream = StreamId(stream as u16);
        let handled = match way {
            Way::ToTarget if !self.target.core.is_stream_live(stream) => Ok(()),
            Way::ToSource if !self.source.core.is_stream_live(stream) => Ok(()),
            Way::ToTarget => self.target.handle(stream, message),
            Way::ToSource => self.source.handle(stream, message),
        };
        handled.map(|()| true).map_err(|e| match e {
            SessionError::Protocol(message) => End::Protocol(message),
            SessionError::Peer { message, .. } => End::Protocol(message),
            SessionError::NoSpace(_) => unreachable!("the pair's target checks no space"),
        })
    }

    /// Runs to the end.
    pub fn run(&mut self) -> End {
        for _ in 0..MAX_STEPS {
            self.flush();
            if self.source.done && self.target.done {
                return End::Converged;
            }
            let mut moved = false;
            // Try the possible moves in a random order; the first that does something
            // is this step's.
            let first = self.rng.below(5);
            for k in 0..5 {
                moved = match (first + k) % 5 {
                    0 => self.source.list_some(&mut self.rng),
                    1 => {
                        self.source.take_work(&mut self.rng);
                        match self.source.next_data(&mut self.rng) {
                            Some((stream, frame)) => {
                                self.send(Way::ToTarget, stream, frame);
                                true
                            }
                            None => false,
                        }
                    }
                    4 => self.notice_a_cut(),
                    2 => match self.deliver(Way::ToTarget) {
                        Ok(delivered) => delivered,
                        Err(end) => return end,
                    },
                    _ => match self.deliver(Way::ToSource) {
                        Ok(delivered) => delivered,
                        Err(end) => return end,
                    },
                };
                if moved {
                    break;
                }
            }
            if !moved {
                // Nothing can move: a cut connection is seen as closed, anything else
                // waits until a side's timeout ends it.
                let cut = self.to_target[0].closed || self.to_source[0].closed;
                return if cut { End::Closed } else { End::Stalled };
            }
        }
        panic!(
            "the pair ran {MAX_STEPS} steps without ending: a loop (fault {:?})",
            self.fault
        );
    }

    /// A side whose wire from a cut data stream ran dry sees it end (EOF) and, unless it
    /// stopped using the stream already, tells its core; one side per step, picked at
    /// random. True if it did anything.
    fn notice_a_cut(&mut self) -> bool {
        let dry = |wire: &Wire| wire.closed && wire.bytes.is_empty();
        let mut noticed = Vec::new();
        for k in 1..self.to_target.len() {
            let stream = StreamId(k as u16);
            if dry(&self.to_target[k])
                && self.target.core.is_stream_live(stream)
                && !self.target.done
            {
                noticed.push((Way::ToTarget, stream));
            }
            if dry(&self.to_source[k])
                && self.source.core.is_stream_live(stream)
                && !self.source.done
            {
                noticed.push((Way::ToSource, stream));
            }
        }
        if noticed.is_empty() {
            return false;
        }
        match noticed[self.rng.below(noticed.len() as u64) as usize] {
            (Way::ToTarget, stream) => self.target.lost(stream),
            (Way::ToSource, stream) => self.source.lost(stream),
        }
        true
    }
}
