//! The target core over several streams (protocol 6, the `streams` option): which
//! streams it reads, a batch of whole-file asks (`Wants`), the `Files` that answer them
//! entry by entry, and a lost stream (`StreamGone`), whose files are asked again once
//! both sides said it is gone. Without [`TargetCore::with_streams`] a session has stream
//! 0 alone and the frames of this module are refused, as in a session of protocol 5.
//!
//! ```text
//! with_streams(max) ─ stream_joined(s) ─▶ handle_message_on(s, ..)   frames of files asked on s
//!                                          ask_batch(s, [i..]) ─▶ Wants on s
//! stream_lost(s) or StreamGone{s} ─▶ poll_transmit: StreamGone{s} ─▶ (both said it) poll_reask
//! ```
//!
//! Must not import: anything that does I/O (see [`crate::session`]).

use super::{Asked, Open, TargetCore, Wanted};
use crate::message::{Message, SmallFile};
use crate::session::live::LiveStreams;
use crate::session::stream::{not_in_this_session, StreamId};
use crate::session::SessionError;

/// A file to ask for again: it was asked on a stream that was lost before all of it
/// came. Its frames so far are void (the driver discards what it received of it); ask
/// for it anew on a live stream ([`TargetCore::handle_asked_on`]). Unlike
/// [`super::Verdict::Resend`] it is not a re-send: nothing of it failed to verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reask {
    pub index: u64,
    /// How it had been asked (the driver may ask the same way, or whole).
    pub asked: Asked,
    /// The lost stream it had been asked on.
    pub lost: StreamId,
    /// For a file asked in ranges ([`Asked::Ranged`]): the offset of the range to ask
    /// again ([`TargetCore::ask_range`]); the file's other ranges stand.
    pub range: Option<u64>,
}

impl TargetCore {
    /// A session with the `streams` option, of at most `streams_max` streams (stream 0
    /// included; bounded by [`crate::Limits::max_streams`]): `Files` and `StreamGone` are
    /// taken, [`TargetCore::ask_batch`] may ask in `Wants`, and streams may join.
    pub fn with_streams(mut self, streams_max: u16) -> TargetCore {
        self.streams = LiveStreams::enabled(streams_max, self.limits.max_streams);
        self
    }

    /// Stream `stream` joined the session: frames may come on it and asks go out on it.
    ///
    /// # Panics
    /// Without the `streams` option, for a number the session cannot have, or a stream
    /// that joined before: the driver's bug (the join gate refuses those).
    pub fn stream_joined(&mut self, stream: StreamId) {
        self.streams.joined(stream);
    }

    /// Whether frames from `stream` are taken (it joined and is not lost). A driver drops
    /// what is still queued from a stream once it is not.
    pub fn is_stream_live(&self, stream: StreamId) -> bool {
        self.streams.is_live(stream)
    }

    /// The live streams, lowest first: where asks may go.
    pub fn live_streams(&self) -> Vec<StreamId> {
        self.streams.live().collect()
    }

    /// This side lost data stream `stream` (its connection ended, failed or went silent):
    /// it stops reading and writing it, and [`TargetCore::poll_transmit`] yields its
    /// `StreamGone` (none once the core is settled: `Done` ends the session). The files asked on it are asked again
    /// ([`TargetCore::poll_reask`]) once the source's `StreamGone` came too.
    ///
    /// # Panics
    /// For stream 0 (its loss ends the attempt) or a stream that never joined.
    pub fn stream_lost(&mut self, stream: StreamId) {
        if self.streams.lost_here(stream) {
            self.gone_here(stream);
        }
        self.reask_if_both_gone(stream);
    }

    /// The next file to ask for again after its stream was lost.
    #[must_use]
    pub fn poll_reask(&mut self) -> Option<Reask> {
        self.reasks.pop_front()
    }

    /// Asks for wanted files `indices` whole on `stream`, in one `Wants` frame, which it
    /// returns for the driver to send on that stream: as many `handle_asked_on(index,
    /// Asked::Whole, stream)` and their `Want`s. The source may answer each with `Data`
    /// and `FileEnd` or as an entry of a `Files` frame, on `stream`.
    ///
    /// # Panics
    /// Without the `streams` option, with no index or more than
    /// [`crate::Limits::max_wants_per_frame`], or on a stream that is not live.
    #[must_use]
    pub fn ask_batch(&mut self, stream: StreamId, indices: Vec<u64>) -> Message {
        assert!(
            self.streams.is_enabled(),
            "Wants is for sessions with the streams option"
        );
        assert!(
            !indices.is_empty() && indices.len() <= self.limits.max_wants_per_frame,
            "a Wants frame asks for 1 to {} files, not {}",
            self.limits.max_wants_per_frame,
            indices.len()
        );
        assert!(self.streams.is_live(stream), "asked on {stream}, not live");
        for &index in &indices {
            self.handle_asked_on(index, Asked::Whole, stream);
        }
        Message::Wants { indices }
    }

    /// Refuses `message` on a stream the session does not have (or lost), and a control
    /// frame on any stream but 0.
    pub(super) fn check_stream(
        &self,
        stream: StreamId,
        message: &Message,
    ) -> Result<(), SessionError> {
        let control = matches!(
            message,
            Message::Root { .. }
                | Message::List { .. }
                | Message::ListEnd { .. }
                | Message::Error { .. }
                | Message::StreamGone { .. }
        );
        self.streams
            .check_frame(stream, message.name(), control, "the source")
    }

    /// `Files`, `StreamGone` and the frames no source sends a target.
    pub(super) fn multi_stream_frame(
        &mut self,
        stream: StreamId,
        message: Message,
    ) -> Result<(), SessionError> {
        if !self.streams.is_enabled() {
            return Err(not_in_this_session(&message, "the source"));
        }
        match message {
            Message::Files { files } => self.files(stream, files),
            Message::StreamGone { stream: gone } => {
                if self.streams.peer_gone(gone, "the source")? {
                    self.gone_here(StreamId(gone));
                }
                self.reask_if_both_gone(StreamId(gone));
                Ok(())
            }
            other => Err(SessionError::protocol(format!(
                "unexpected {} from the source (a target sends it)",
                other.name()
            ))),
        }
    }

    /// A `Files` frame on `stream`: each entry is checked as `Data{index, 0, bytes}` and
    /// `FileEnd{index, len, hash}` of a file asked whole on this stream of which nothing
    /// came yet, and passed on as those two frames.
    fn files(&mut self, stream: StreamId, files: Vec<SmallFile>) -> Result<(), SessionError> {
        let max = self.limits.max_files_per_frame;
        if files.is_empty() || files.len() > max {
            return Err(SessionError::protocol(format!(
                "Files with {} entries: a frame carries 1 to {max}",
                files.len()
            )));
        }
        let total: usize = files.iter().map(|f| f.bytes.len()).sum();
        if total > self.limits.max_frame {
            return Err(SessionError::protocol(format!(
                "Files carrying {total} bytes of content, over the frame limit of {}",
                self.limits.max_frame
            )));
        }
        for file in files {
            let index = file.index;
            let len = file.bytes.len();
            if len > self.limits.data_chunk {
                return Err(SessionError::protocol(format!(
                    "Files entry for entry {index} carries {len} bytes, over the {} a data \
                     frame may",
                    self.limits.data_chunk
                )));
            }
            let Some(Open::Wanted(wanted)) = self.open.get_mut(&index) else {
                return Err(SessionError::protocol(format!(
                    "Files entry for entry {index}, which the target did not ask for"
                )));
            };
            if wanted.asked == Some(Asked::Ranged) {
                return Err(SessionError::protocol(format!(
                    "Files entry for entry {index}, which was asked in ranges"
                )));
            }
            wanted.check_stream(index, "Files entry", stream)?;
            wanted.take_whole(index, len as u64)?;
            let size = len as u64;
            self.work.push_back(super::TargetWork::Receive {
                index,
                frame: Message::Data {
                    index,
                    offset: 0,
                    bytes: file.bytes,
                },
            });
            self.work.push_back(super::TargetWork::Receive {
                index,
                frame: Message::FileEnd {
                    index,
                    size,
                    hash: file.hash,
                },
            });
        }
        Ok(())
    }

    /// This side stops using `stream` and says so: failed files draining on it drain no
    /// more (their frames will not come).
    fn gone_here(&mut self, stream: StreamId) {
        self.draining.retain(|&(_, s), _| s != stream);
        // Once settled the driver says Done, after which the source takes nothing more:
        // nothing of the session is left to ask again either.
        if !self.is_settled() {
            self.transmit
                .push_back(Message::StreamGone { stream: stream.0 });
        }
    }

    /// Once both sides said `StreamGone{stream}` (the source uncounted the asks made on
    /// it before it said so), the files asked on it whose frames did not all come are
    /// asked again: never before, so a new ask never meets a stale one.
    fn reask_if_both_gone(&mut self, stream: StreamId) {
        if !self.streams.both_gone(stream) {
            return;
        }
        for (&index, open) in self.open.iter_mut() {
            let Open::Wanted(wanted) = open else { continue };
            let Some(asked) = wanted.asked else { continue };
            if wanted.stream != stream || wanted.ended || asked == Asked::Ranged {
                continue;
            }
            *wanted = Wanted::new(wanted.size);
            self.reasks.push_back(Reask {
                index,
                asked,
                lost: stream,
                range: None,
            });
        }
        for (index, offset) in self.take_ranges_on(stream) {
            self.reasks.push_back(Reask {
                index,
                asked: Asked::Ranged,
                lost: stream,
                range: Some(offset),
            });
        }
    }
}
