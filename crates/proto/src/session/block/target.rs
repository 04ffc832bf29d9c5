//! The target's block-session core: what a source may send and where it may write.
//!
//! Every write it hands out lies inside the source's announced size, which is at most
//! the device's size, inside the oldest segment whose hashes were sent, aligned to a
//! block, and past the previous write: a source cannot write outside the device, write a
//! range twice in a round, or run ahead of the window.
//!
//! Call order: [`BlockTarget::new`] with the device's size; then, in any order,
//! `handle_message` for each frame from the source, `wants_sums` / `handle_sums` to hash
//! the next segment, `poll_work` (do it: write, zero or verify) and `poll_transmit` (send
//! it); after a `Verify`, `handle_verified`. `is_done` ends the session.
//!
//! Must not import: anything that does I/O (see [`crate::session`]).

use std::collections::VecDeque;

use bytes::Bytes;

use super::{blocks_in, segment_len, BLOCK, HASH_LEN, MAX_ROUNDS, SEGMENT, WINDOW};
use crate::message::{BlockStats, Message};
use crate::session::SessionError;

/// Why a block session stops at the target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// The source broke the protocol, or sent a fatal `Error`.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// The source's content does not fit: refused before anything was written.
    #[error("the target is {target} bytes, smaller than the source's {source_size} bytes; nothing was written: give a target device (or volume) of at least {source_size} bytes")]
    TooSmall { source_size: u64, target: u64 },
    /// An image would grow past the file system holding it: refused before anything was
    /// written (a hostile or mistaken size would otherwise make a sparse image that
    /// nothing can fill, and exabytes of holes to hash).
    #[error("the source is {source_size} bytes, more than the {room} bytes of the whole file system that holds the target image; nothing was written: give a volume of at least {source_size} bytes")]
    ImageTooLarge { source_size: u64, room: u64 },
    /// The content still differed from the source's after the last round.
    #[error("the target's content did not verify against the source's BLAKE3 after {rounds} rounds; the device may be failing, or the source changed while it was read")]
    NotVerified { rounds: u32 },
}

/// What the driver must do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetWork {
    /// Set an image's length to the source's size (first, before any hashing).
    Resize { size: u64 },
    /// Write `bytes` at `offset`.
    Write { offset: u64, bytes: Bytes },
    /// Make `offset..offset + len` read as zeros (punch a hole, discard, or write zeros).
    Zero { offset: u64, len: u64 },
    /// Flush, hash `0..size` with BLAKE3, then call [`BlockTarget::handle_verified`] with
    /// whether it equals `hash`.
    Verify { size: u64, hash: [u8; 32] },
}

/// One pass over the content.
#[derive(Debug)]
struct Round {
    number: u32,
    /// Offset of the next segment to hash and send.
    next_sums: u64,
    /// Segments whose hashes went out and whose `BlockSegmentEnd` has not come, oldest first.
    outstanding: VecDeque<u64>,
    /// Writes in the oldest outstanding segment start at or past this.
    cursor: u64,
}

#[derive(Debug)]
enum State {
    ExpectBegin,
    Syncing(Round),
    ExpectVerified { round: u32 },
    Done,
}

/// The target's core of one block session.
#[derive(Debug)]
pub struct BlockTarget {
    device_size: u64,
    /// An image, which takes the source's size, rather than a device of fixed size.
    resizable: bool,
    /// The most an image may grow to (the file system that holds it).
    room: u64,
    /// Nothing is written: the source sends no content, the target verifies nothing.
    dry_run: bool,
    /// The source's size, once it said it.
    size: u64,
    state: State,
    transmit: VecDeque<Message>,
    work: VecDeque<TargetWork>,
    stats: BlockStats,
}

impl BlockTarget {
    /// A session onto a device of `device_size` bytes: a source larger than it is
    /// refused, a smaller one leaves the device's tail as it is.
    pub fn new(device_size: u64) -> BlockTarget {
        BlockTarget {
            device_size,
            resizable: false,
            room: device_size,
            dry_run: false,
            size: 0,
            state: State::ExpectBegin,
            transmit: VecDeque::new(),
            work: VecDeque::new(),
            stats: BlockStats {
                device_size,
                ..BlockStats::default()
            },
        }
    }

    /// A session onto an image of `len` bytes, which is resized to the source's size:
    /// grown at most to `room` bytes (the size of the file system that holds it; no
    /// larger image could ever be filled there), or kept or shrunk if already larger.
    pub fn image(len: u64, room: u64) -> BlockTarget {
        BlockTarget {
            resizable: true,
            room: room.max(len),
            ..BlockTarget::new(len)
        }
    }

    /// A dry run: the source only says which segments it would change, so any content
    /// from it is refused, nothing is resized, and `BlockEnd` ends the session without a
    /// verification.
    pub fn dry_run(mut self) -> BlockTarget {
        self.dry_run = true;
        self
    }

    /// The source's size (0 before its `BlockBegin`).
    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn stats(&self) -> &BlockStats {
        &self.stats
    }

    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// A frame from the source.
    pub fn handle_message(&mut self, message: Message) -> Result<(), BlockError> {
        let unexpected = |state: &State, message: &Message| -> BlockError {
            SessionError::protocol(format!(
                "the source sent {} where the block session expected {}",
                message.name(),
                match state {
                    State::ExpectBegin => "BlockBegin",
                    State::Syncing(_) => "block data, a segment end or BlockEnd",
                    State::ExpectVerified { .. } | State::Done => "nothing",
                }
            ))
            .into()
        };
        match (&mut self.state, message) {
            (_, Message::Heartbeat) => Ok(()),
            (_, Message::Error { class, message }) => {
                Err(SessionError::from_peer("the source says", class, &message).into())
            }
            (State::ExpectBegin, Message::BlockBegin { size }) => {
                if self.resizable && size > self.room {
                    return Err(BlockError::ImageTooLarge {
                        source_size: size,
                        room: self.room,
                    });
                }
                if self.resizable && size != self.device_size {
                    if !self.dry_run {
                        self.work.push_back(TargetWork::Resize { size });
                    }
                    self.device_size = size;
                    self.stats.device_size = size;
                }
                if size > self.device_size {
                    return Err(BlockError::TooSmall {
                        source_size: size,
                        target: self.device_size,
                    });
                }
                self.size = size;
                self.state = State::Syncing(Round::new(1));
                Ok(())
            }
            (State::Syncing(_), Message::BlockData { .. } | Message::BlockZero { .. })
                if self.dry_run =>
            {
                Err(SessionError::protocol(
                    "the source sent content in a dry run, where nothing may be written",
                )
                .into())
            }
            (State::Syncing(round), Message::BlockData { offset, bytes }) => {
                let len = bytes.len() as u64;
                round.admit(offset, len, self.size, "BlockData")?;
                self.stats.bytes_written += len;
                self.work.push_back(TargetWork::Write { offset, bytes });
                Ok(())
            }
            (State::Syncing(round), Message::BlockZero { offset, len }) => {
                round.admit(offset, len, self.size, "BlockZero")?;
                self.stats.bytes_zeroed += len;
                self.work.push_back(TargetWork::Zero { offset, len });
                Ok(())
            }
            (State::Syncing(round), Message::BlockSegmentEnd { offset }) => {
                if round.outstanding.front() != Some(&offset) {
                    return Err(SessionError::protocol(format!(
                        "the source ended the segment at {offset}, but the segment it must answer next is {}",
                        describe(round.outstanding.front())
                    ))
                    .into());
                }
                round.outstanding.pop_front();
                round.cursor = offset + SEGMENT;
                Ok(())
            }
            (State::Syncing(round), Message::BlockEnd { size, hash }) => {
                if size != self.size {
                    return Err(SessionError::protocol(format!(
                        "the source ended with a size of {size} bytes after announcing {}",
                        self.size
                    ))
                    .into());
                }
                if !round.outstanding.is_empty() || round.next_sums < size {
                    return Err(SessionError::protocol(format!(
                        "the source sent BlockEnd before it answered every segment (next unanswered: {})",
                        describe(round.outstanding.front().or(Some(&round.next_sums)))
                    ))
                    .into());
                }
                if self.dry_run {
                    self.state = State::Done;
                    self.transmit.push_back(Message::BlockDone {
                        stats: self.stats.clone(),
                    });
                    return Ok(());
                }
                self.work.push_back(TargetWork::Verify { size, hash });
                self.state = State::ExpectVerified {
                    round: round.number,
                };
                Ok(())
            }
            (state, message) => Err(unexpected(state, &message)),
        }
    }

    /// The next segment to hash and send, as `(offset, len)`, while the window has room.
    pub fn wants_sums(&self) -> Option<(u64, u64)> {
        match &self.state {
            State::Syncing(round)
                if round.outstanding.len() < WINDOW && round.next_sums < self.size =>
            {
                Some((round.next_sums, segment_len(self.size, round.next_sums)))
            }
            _ => None,
        }
    }

    /// The hashes of the segment [`BlockTarget::wants_sums`] named, [`HASH_LEN`] bytes
    /// per block.
    ///
    /// # Panics
    /// If it is not that segment, or the hashes are not one per block: a driver bug.
    pub fn handle_sums(&mut self, offset: u64, hashes: Bytes) {
        let wanted = self.wants_sums();
        let State::Syncing(round) = &mut self.state else {
            panic!("handle_sums outside a round");
        };
        let (expected, len) = wanted.expect("handle_sums without wants_sums");
        assert_eq!(offset, expected, "hashes for the wrong segment");
        assert_eq!(
            hashes.len(),
            blocks_in(len) * HASH_LEN,
            "one hash per block"
        );
        round.outstanding.push_back(offset);
        round.next_sums = offset + SEGMENT;
        self.transmit
            .push_back(Message::BlockSums { offset, hashes });
    }

    /// The outcome of a [`TargetWork::Verify`]: the content equals the source's, or it
    /// does not (then another round asks for what differs, if rounds are left).
    pub fn handle_verified(&mut self, matches: bool) -> Result<(), BlockError> {
        let State::ExpectVerified { round } = self.state else {
            panic!("handle_verified without a Verify");
        };
        if matches {
            self.state = State::Done;
            self.transmit.push_back(Message::BlockDone {
                stats: self.stats.clone(),
            });
            return Ok(());
        }
        if round >= MAX_ROUNDS {
            return Err(BlockError::NotVerified { rounds: round });
        }
        self.stats.resent_rounds += 1;
        self.state = State::Syncing(Round::new(round + 1));
        Ok(())
    }

    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Message> {
        self.transmit.pop_front()
    }

    #[must_use]
    pub fn poll_work(&mut self) -> Option<TargetWork> {
        self.work.pop_front()
    }
}

impl Round {
    fn new(number: u32) -> Round {
        Round {
            number,
            next_sums: 0,
            outstanding: VecDeque::new(),
            cursor: 0,
        }
    }

    /// Checks that a write of `len` bytes at `offset` is one the source may make now.
    fn admit(&mut self, offset: u64, len: u64, size: u64, what: &str) -> Result<(), BlockError> {
        let refuse = |why: String| -> BlockError {
            SessionError::protocol(format!(
                "the source sent {what} at {offset} for {len} bytes: {why}"
            ))
            .into()
        };
        let Some(&segment) = self.outstanding.front() else {
            return Err(refuse(
                "no segment's hashes are waiting for an answer".into(),
            ));
        };
        let segment_end = segment + segment_len(size, segment);
        let Some(end) = offset.checked_add(len) else {
            return Err(refuse("the range overflows".into()));
        };
        if len == 0 {
            return Err(refuse("an empty range".into()));
        }
        if !offset.is_multiple_of(BLOCK) {
            return Err(refuse(format!("not aligned to a {BLOCK}-byte block")));
        }
        if offset < self.cursor.max(segment) || end > segment_end {
            return Err(refuse(format!(
                "outside {}..{segment_end}, what is left of the segment being answered",
                self.cursor.max(segment)
            )));
        }
        if !len.is_multiple_of(BLOCK) && end != size {
            return Err(refuse(format!(
                "not whole {BLOCK}-byte blocks (only the content's last block may be short)"
            )));
        }
        self.cursor = end;
        Ok(())
    }
}

fn describe(offset: Option<&u64>) -> String {
    match offset {
        Some(offset) => format!("the one at {offset}"),
        None => "none".into(),
    }
}
