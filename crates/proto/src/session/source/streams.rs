//! The source core over several streams (protocol 6, the `streams` option): which
//! streams it reads, a target's batch of asks (`Wants`, each checked as a `Want`), its
//! asks for ranges (`WantRange`, checked in [`super::ranges`]), and a
//! lost stream (`StreamGone`): the asks made on it are uncounted, its queued work and the
//! signatures it held released, before this side says `StreamGone` itself, so a target
//! that heard it may ask those files again. Without [`SourceCore::with_streams`] a session
//! has stream 0 alone and these frames are refused, as in a session of protocol 5.
//!
//! Must not import: anything that does I/O (see [`crate::session`]).

use super::SourceCore;
use crate::message::Message;
use crate::session::live::LiveStreams;
use crate::session::stream::{not_in_this_session, StreamId};
use crate::session::SessionError;

impl<F: Clone> SourceCore<F> {
    /// A session with the `streams` option, of at most `streams_max` streams (stream 0
    /// included; bounded by [`crate::Limits::max_streams`]): `Wants`, `WantRange` and
    /// `StreamGone` are taken, and streams may join.
    pub fn with_streams(mut self, streams_max: u16) -> Self {
        self.streams = LiveStreams::enabled(streams_max, self.max_streams);
        self
    }

    /// Stream `stream` joined the session: the target may ask on it, and the work it asks
    /// there is sent there ([`super::Work::stream`]).
    ///
    /// # Panics
    /// Without the `streams` option, for a number the session cannot have, or a stream
    /// that joined before: the driver's bug (the join gate refuses those).
    pub fn stream_joined(&mut self, stream: StreamId) {
        self.streams.joined(stream);
    }

    /// Whether frames from `stream` are taken and work for it may be sent (it joined and
    /// is not lost). A driver drops what is still queued from or for a stream once it is
    /// not.
    pub fn is_stream_live(&self, stream: StreamId) -> bool {
        self.streams.is_live(stream)
    }

    /// This side lost data stream `stream` (its connection ended, failed or went silent):
    /// the asks made on it are uncounted, the work queued for it dropped, the signatures
    /// it held released, and [`SourceCore::poll_transmit`] yields this side's
    /// `StreamGone`. A driver stops the senders writing to it (what they hold is no longer
    /// counted: answering it does nothing). After the target's `Done` it does nothing.
    ///
    /// # Panics
    /// For stream 0 (its loss ends the attempt) or a stream that never joined.
    pub fn stream_lost(&mut self, stream: StreamId) {
        if matches!(self.state, super::State::Failed(_) | super::State::Done) {
            return;
        }
        if self.streams.lost_here(stream) {
            self.gone_here(stream);
        }
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
            Message::Ack { .. }
                | Message::Done { .. }
                | Message::Change { .. }
                | Message::FileError { .. }
                | Message::NotApplied { .. }
                | Message::Error { .. }
                | Message::StreamGone { .. }
        );
        self.streams
            .check_frame(stream, message.name(), control, "the target")
    }

    /// `Wants`, `WantRange`, `StreamGone` and the frames no target sends a source.
    pub(super) fn multi_stream_frame(
        &mut self,
        stream: StreamId,
        message: Message,
    ) -> Result<(), SessionError> {
        if !self.streams.is_enabled() {
            return Err(not_in_this_session(&message, "the target"));
        }
        match message {
            Message::Wants { indices } => {
                if indices.is_empty() || indices.len() > self.max_wants_per_frame {
                    return Err(SessionError::protocol(format!(
                        "Wants with {} entries: a frame asks for 1 to {}",
                        indices.len(),
                        self.max_wants_per_frame
                    )));
                }
                for index in indices {
                    self.want(index, false, stream)?;
                }
                Ok(())
            }
            Message::StreamGone { stream: gone } => {
                if self.streams.peer_gone(gone, "the target")? {
                    self.gone_here(StreamId(gone));
                }
                Ok(())
            }
            Message::WantRange {
                index,
                offset,
                len,
                have,
                cv,
            } => self.want_range(stream, index, offset, len, have.then_some(cv)),
            other => Err(SessionError::protocol(format!(
                "unexpected {} from the target (a source sends it)",
                other.name()
            ))),
        }
    }

    /// This side stops using `stream`: first the asks made on it are forgotten and what
    /// was held for them released, then its `StreamGone` goes out (the order the target's
    /// re-asks rely on).
    fn gone_here(&mut self, stream: StreamId) {
        for listed in self.files.values_mut() {
            listed.uncount(stream);
        }
        let signatures = &mut self.signatures;
        self.work.retain(|work| {
            let keep = work.stream != stream;
            if !keep {
                signatures.answered(work.id);
            }
            keep
        });
        self.signatures.gone(stream);
        self.transmit
            .push_back(Message::StreamGone { stream: stream.0 });
    }
}
