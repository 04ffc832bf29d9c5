//! The source's block-session core: what a target may ask of it.
//!
//! A target asks by sending the hashes of its segments, in order, at most [`WINDOW`]
//! unanswered, each with exactly one hash per block of the source's content there: so
//! what the source holds and reads is bounded however hostile the target. A second
//! round (after the content did not verify) may start only after `BlockEnd`, and only
//! once.
//!
//! Call order: [`BlockSource::new`] with the content's size (it queues `BlockBegin`);
//! `handle_message` for each frame from the target; `poll_work` and do it (answer a
//! segment, then `handle_segment_sent`; or hash the whole content, then
//! `handle_finished`); `poll_transmit` and send. `done` says the target confirmed.
//!
//! Must not import: anything that does I/O (see [`crate::session`]).

use std::collections::VecDeque;

use bytes::Bytes;

use super::{blocks_in, segment_len, HASH_LEN, MAX_ROUNDS, SEGMENT, WINDOW};
use crate::message::{BlockStats, Message};
use crate::session::SessionError;

/// What the driver must do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceWork {
    /// Read `offset..offset + len`, compare each block with the target's `hashes`
    /// ([`HASH_LEN`] bytes a block), send `BlockData` / `BlockZero` for the blocks that
    /// differ, in order, then call [`BlockSource::handle_segment_sent`]. `offset == 0`
    /// starts a round: the whole-content hash starts again there.
    Segment {
        offset: u64,
        len: u64,
        hashes: Bytes,
    },
    /// Every segment of the round is answered: call [`BlockSource::handle_finished`]
    /// with the BLAKE3 of the whole content, hashed over the segments as they were read.
    Finish,
}

/// The source's core of one block session.
#[derive(Debug)]
pub struct BlockSource {
    size: u64,
    round: u32,
    /// Offset of the segment whose hashes must come next.
    next_expected: u64,
    /// Segments asked for and not yet answered.
    pending: usize,
    /// Every segment of this round was answered: `Finish` was handed out.
    finishing: bool,
    /// `BlockEnd` of this round was queued.
    ended: bool,
    done: Option<BlockStats>,
    transmit: VecDeque<Message>,
    work: VecDeque<SourceWork>,
}

impl BlockSource {
    /// A session sending `size` bytes.
    pub fn new(size: u64) -> BlockSource {
        let mut core = BlockSource {
            size,
            round: 1,
            next_expected: 0,
            pending: 0,
            finishing: false,
            ended: false,
            done: None,
            transmit: VecDeque::from([Message::BlockBegin { size }]),
            work: VecDeque::new(),
        };
        core.maybe_finish();
        core
    }

    /// The target's account, once it confirmed the content.
    pub fn done(&self) -> Option<&BlockStats> {
        self.done.as_ref()
    }

    /// A frame from the target.
    pub fn handle_message(&mut self, message: Message) -> Result<(), SessionError> {
        match message {
            Message::Heartbeat => Ok(()),
            Message::Error { class, message } => {
                Err(SessionError::from_peer("the target says", class, &message))
            }
            _ if self.done.is_some() => Err(SessionError::protocol(format!(
                "the target sent {} after BlockDone",
                message.name()
            ))),
            Message::BlockSums { offset, hashes } => {
                if self.ended && offset == 0 {
                    if self.round >= MAX_ROUNDS {
                        return Err(SessionError::protocol(format!(
                            "the target asked for a round {} of the content; at most {MAX_ROUNDS} are allowed",
                            self.round + 1
                        )));
                    }
                    self.round += 1;
                    self.next_expected = 0;
                    self.finishing = false;
                    self.ended = false;
                }
                if self.finishing || offset != self.next_expected || offset >= self.size {
                    return Err(SessionError::protocol(format!(
                        "the target sent the hashes of the segment at {offset}; expected {}",
                        if self.finishing || self.next_expected >= self.size {
                            "none (every segment was asked for)".to_string()
                        } else {
                            format!("the one at {}", self.next_expected)
                        }
                    )));
                }
                let len = segment_len(self.size, offset);
                let blocks = blocks_in(len);
                if hashes.len() != blocks * HASH_LEN {
                    return Err(SessionError::protocol(format!(
                        "the target sent {} bytes of hashes for the segment at {offset}; its {blocks} blocks need {}",
                        hashes.len(),
                        blocks * HASH_LEN
                    )));
                }
                if self.pending >= WINDOW {
                    return Err(SessionError::protocol(format!(
                        "the target sent more than {WINDOW} segments' hashes ahead of the answers"
                    )));
                }
                self.pending += 1;
                self.next_expected = offset + SEGMENT;
                self.work.push_back(SourceWork::Segment {
                    offset,
                    len,
                    hashes,
                });
                Ok(())
            }
            Message::BlockDone { stats } => {
                if !self.ended {
                    return Err(SessionError::protocol(
                        "the target sent BlockDone before the source sent BlockEnd",
                    ));
                }
                if stats.device_size < self.size {
                    return Err(SessionError::protocol(format!(
                        "the target says it holds {} bytes, fewer than the {} it took",
                        stats.device_size, self.size
                    )));
                }
                self.done = Some(stats);
                Ok(())
            }
            other => Err(SessionError::protocol(format!(
                "the target sent {} in a block session",
                other.name()
            ))),
        }
    }

    /// The driver sent what the segment at `offset` needed.
    pub fn handle_segment_sent(&mut self, offset: u64) {
        self.pending -= 1;
        self.transmit.push_back(Message::BlockSegmentEnd { offset });
        self.maybe_finish();
    }

    /// The BLAKE3 of the whole content, for [`SourceWork::Finish`].
    pub fn handle_finished(&mut self, hash: [u8; 32]) {
        self.ended = true;
        self.transmit.push_back(Message::BlockEnd {
            size: self.size,
            hash,
        });
    }

    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Message> {
        self.transmit.pop_front()
    }

    #[must_use]
    pub fn poll_work(&mut self) -> Option<SourceWork> {
        self.work.pop_front()
    }

    fn maybe_finish(&mut self) {
        if !self.finishing && self.pending == 0 && self.next_expected >= self.size {
            self.finishing = true;
            self.work.push_back(SourceWork::Finish);
        }
    }
}
