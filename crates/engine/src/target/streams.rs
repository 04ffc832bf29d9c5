//! The target's joined streams: a stream that joined takes asks, the frames it carries go
//! to the core as that stream's, a stream that is lost is told to the core, and the files
//! the core asks again once both sides said it is gone are discarded at their workers
//! and asked anew ([`Job::Reask`]). A frame still queued from a stream the core no longer
//! takes (lost, or gone by the source's word) is dropped unread.
//!
//! Must not import the planner or a command.

use ferry_proto::session::stream::StreamId;
use ferry_proto::Message;

use super::apply::Job;
use super::asks::Queued;
use super::fetch::ReadySender;
use super::Session;
use crate::error::EngineError;
use crate::joined::StreamEvent;

impl Session {
    /// Acts on what a joined stream brought.
    pub(super) async fn stream_event(
        &mut self,
        event: StreamEvent,
        ready: &ReadySender,
    ) -> Result<(), EngineError> {
        match event {
            // A session without the streams option takes no joins (the server grants
            // none, a client opens none): nothing is asked on such a stream.
            StreamEvent::Joined { .. } if !self.asks.is_multi() => {}
            StreamEvent::Joined { stream, tx } => {
                self.core.stream_joined(StreamId(stream));
                self.asks.joined(stream, tx);
                if let Some(gone) = self.early_gone.joined(stream) {
                    self.handle_on(StreamId::CONTROL, gone, ready).await?;
                }
            }
            StreamEvent::Frame {
                stream, message, ..
            } => {
                if self.core.is_stream_live(StreamId(stream)) {
                    self.handle_on(StreamId(stream), message, ready).await?;
                }
            }
            StreamEvent::Lost { stream, .. } => self.lose(stream),
        }
        Ok(())
    }

    /// The connection of a stream asks went to closed under a send: a joined stream is
    /// lost, stream 0's is the end of the session.
    pub(super) fn outlet_closed(&mut self, stream: StreamId) -> Result<(), EngineError> {
        if stream.is_control() {
            return Err(EngineError::socket("the connection closed"));
        }
        self.lose(stream.0);
        Ok(())
    }

    fn lose(&mut self, stream: u16) {
        // A stream is lost only after its join was heard of (the same task says both).
        if self.asks.is_multi() && stream != 0 {
            self.core.stream_lost(StreamId(stream));
            self.asks.lost(stream);
        }
    }

    /// Files the core asks for again: each is discarded at its worker first, which gives
    /// its entry back to ask with ([`super::apply::Completion::Reask`]).
    pub(super) async fn reasks(&mut self) -> Result<(), EngineError> {
        while let Some(reask) = self.core.poll_reask() {
            let index = reask.index;
            if let Some(offset) = reask.range {
                // One range of a file in ranges: its worker starts it over when its
                // first piece comes again.
                self.asks.received_range(index, offset);
                let Some(size) = self.core.wanted_size(index) else {
                    continue;
                };
                self.asks.push_front(Queued::Range {
                    index,
                    offset,
                    size,
                    have: None,
                });
                continue;
            }
            self.asks.received(index);
            self.signature_budget.release(index);
            self.job(index, Job::Reask { index }).await?;
        }
        Ok(())
    }

    /// A frame from the source on `stream`: held if it is a `StreamGone` that came before
    /// its stream's join was heard of here, else given to the core.
    pub(super) async fn handle_on(
        &mut self,
        stream: StreamId,
        message: Message,
        ready: &ReadySender,
    ) -> Result<(), EngineError> {
        if stream.is_control() && self.early_gone.holds(&message, self.streams_max) {
            return Ok(());
        }
        if let Message::StreamGone { stream: gone } = message {
            // The source's word can come before this side's own news of the loss (a
            // silent path is noticed here only after the silence timeout): from now on
            // nothing is asked on that stream, its re-asks included.
            self.asks.lost(gone);
        }
        self.handle(stream, message, ready).await
    }
}
