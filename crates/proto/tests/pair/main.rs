//! The two session cores against each other in memory, as quinn-proto's `Pair` does: a
//! source core over a fake tree and a target core over a fake volume, every frame
//! encoded and decoded by the real codec, the interleaving of everything (listing, file
//! data, acks, local completions) chosen at random, and faults injected between them:
//! a cut connection, a dropped or repeated frame, a frame the codec cannot read, file
//! data corrupted on the way. Whatever happens, each side either ends with the same tree
//! or stops with a classified error, never panics and never runs forever.

mod property;
mod source;
mod target;
mod tree;

use bytes::BytesMut;
use ferry_proto::{decode, encode, Limits, Message, SessionError};

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
    to_target: Wire,
    to_source: Wire,
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
        let limits = Limits {
            window,
            ..Limits::default()
        };
        let mut rng = Dice::new(seed);
        let max_frame = 1 + rng.below(4) as usize;
        Pair {
            source: Source::new(source, &limits, max_frame),
            target: Target::new(target, &limits),
            to_target: Wire::default(),
            to_source: Wire::default(),
            fault,
            limits,
            rng,
            data_frames: 0,
        }
    }

    /// Puts `message` on the wire going `way`, as the fault says.
    fn send(&mut self, way: Way, mut message: Message) {
        let n = match way {
            Way::ToTarget => self.to_target.sent,
            Way::ToSource => self.to_source.sent,
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
            Way::ToTarget => &mut self.to_target,
            Way::ToSource => &mut self.to_source,
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
            self.send(Way::ToTarget, message);
        }
        for message in std::mem::take(&mut self.target.outbox) {
            self.send(Way::ToSource, message);
        }
    }

    /// Delivers one frame going `way`, if one is there; `Err` ends the run.
    fn deliver(&mut self, way: Way) -> Result<bool, End> {
        let wire = match way {
            Way::ToTarget => &mut self.to_target,
            Way::ToSource => &mut self.to_source,
        };
        let message = match decode(&mut wire.bytes, &self.limits) {
            Ok(Some(message)) => message,
            Ok(None) => return Ok(false),
            Err(e) => return Err(End::Codec(e.to_string())),
        };
        let handled = match way {
            Way::ToTarget => self.target.handle(message),
            Way::ToSource => self.source.handle(message),
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
            let first = self.rng.below(4);
            for k in 0..4 {
                moved = match (first + k) % 4 {
                    0 => self.source.list_some(&mut self.rng),
                    1 => {
                        self.source.take_work(&mut self.rng);
                        match self.source.next_data(&mut self.rng) {
                            Some(frame) => {
                                self.send(Way::ToTarget, frame);
                                true
                            }
                            None => false,
                        }
                    }
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
                let cut = self.to_target.closed || self.to_source.closed;
                return if cut { End::Closed } else { End::Stalled };
            }
        }
        panic!(
            "the pair ran {MAX_STEPS} steps without ending: a loop (fault {:?})",
            self.fault
        );
    }
}
