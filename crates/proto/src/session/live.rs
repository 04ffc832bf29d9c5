//! Which streams of a session are live, as one core sees them: stream 0 from the start,
//! the others once the driver says they joined, none after it was lost. Owns the rules
//! both cores share about streams: a frame on a stream the session does not have (or no
//! longer has) is refused, control frames travel on stream 0 only, and `StreamGone` comes
//! on stream 0, for a joined data stream, at most once per stream per side. The cores
//! keep what they hold per stream (asks, drains, signatures); this table bounds how many
//! streams there can be ([`crate::Limits::max_streams`]).
//!
//! Must not import: anything that does I/O (see [`crate::session`]).

use super::stream::StreamId;
use super::SessionError;

/// One stream as this side sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// A number the session may give, not joined (yet).
    Unjoined,
    /// Joined, in use.
    Live,
    /// Lost: `sent` when this side sent its `StreamGone`, `received` when the peer's came.
    /// Nothing is read from or written to it any more.
    Gone { sent: bool, received: bool },
}

/// The streams of one session ([`crate::session::stream`] names them).
#[derive(Debug)]
pub(crate) struct LiveStreams {
    /// The session has the `streams` option: the multi-stream frames are allowed.
    enabled: bool,
    /// One state per stream number the session may use, stream 0 first.
    states: Vec<State>,
}

impl Default for LiveStreams {
    fn default() -> Self {
        LiveStreams {
            enabled: false,
            states: vec![State::Live],
        }
    }
}

impl LiveStreams {
    /// A session with the `streams` option, of at most `streams_max` streams (stream 0
    /// included), bounded by `limit` ([`crate::Limits::max_streams`]).
    pub(crate) fn enabled(streams_max: u16, limit: u16) -> LiveStreams {
        let count = streams_max.min(limit).max(1) as usize;
        let mut states = vec![State::Unjoined; count];
        states[0] = State::Live;
        LiveStreams {
            enabled: true,
            states,
        }
    }

    /// Whether the session has the `streams` option.
    pub(crate) fn is_enabled(&self) -> bool {
        self.enabled
    }

    fn state(&self, stream: StreamId) -> Option<State> {
        self.states.get(stream.0 as usize).copied()
    }

    pub(crate) fn is_live(&self, stream: StreamId) -> bool {
        self.state(stream) == Some(State::Live)
    }

    /// Stream `stream` joined the session (the join gate accepted it).
    ///
    /// # Panics
    /// For a stream the session cannot have, or one that joined before: the driver's bug
    /// (its `JoinGate` refuses both).
    pub(crate) fn joined(&mut self, stream: StreamId) {
        let state = self.state(stream);
        assert!(
            self.enabled && state == Some(State::Unjoined),
            "{stream} joined, but it is {state:?} in a session of {} streams (streams option: {})",
            self.states.len(),
            self.enabled
        );
        self.states[stream.0 as usize] = State::Live;
    }

    /// Refuses `what` (a frame's name) from `peer` on `stream` unless the stream is live,
    /// and, if it is a `control` frame, on any stream but 0.
    pub(crate) fn check_frame(
        &self,
        stream: StreamId,
        what: &str,
        control: bool,
        peer: &str,
    ) -> Result<(), SessionError> {
        self.check_live(stream, what, peer)?;
        match control {
            true => Self::check_control(stream, what, peer),
            false => Ok(()),
        }
    }

    /// Refuses `what` (a frame's name) from `peer` on `stream` unless the stream is live.
    fn check_live(&self, stream: StreamId, what: &str, peer: &str) -> Result<(), SessionError> {
        match self.state(stream) {
            Some(State::Live) => Ok(()),
            Some(State::Gone { .. }) => Err(SessionError::protocol(format!(
                "{what} from {peer} on {stream}, after that stream was gone (StreamGone): \
                 nothing may travel on a lost stream"
            ))),
            _ => Err(SessionError::protocol(format!(
                "{what} from {peer} on {stream}, which is not a stream of this session \
                 (it has {} stream numbers, and only joined ones carry frames)",
                self.states.len()
            ))),
        }
    }

    /// Refuses `what`, a control frame, from `peer` on any stream but 0.
    fn check_control(stream: StreamId, what: &str, peer: &str) -> Result<(), SessionError> {
        if stream.is_control() {
            return Ok(());
        }
        Err(SessionError::protocol(format!(
            "{what} from {peer} on {stream}: only stream 0, the control stream, carries it"
        )))
    }

    /// This side lost `stream` (its connection ended): returns whether this side now
    /// sends `StreamGone` (false when it did already).
    ///
    /// # Panics
    /// For stream 0 (its loss ends the attempt, it is not a core's to handle) or a stream
    /// that never joined: the driver's bug.
    pub(crate) fn lost_here(&mut self, stream: StreamId) -> bool {
        let state = self.state(stream);
        assert!(
            !stream.is_control() && matches!(state, Some(State::Live | State::Gone { .. })),
            "{stream} lost, but it is {state:?}: stream 0's loss ends the session, and only \
             a joined stream can be lost"
        );
        match state {
            Some(State::Live) => {
                self.states[stream.0 as usize] = State::Gone {
                    sent: true,
                    received: false,
                };
                true
            }
            Some(State::Gone { sent, received }) => {
                self.states[stream.0 as usize] = State::Gone {
                    sent: true,
                    received,
                };
                !sent
            }
            _ => unreachable!("asserted"),
        }
    }

    /// The peer's `StreamGone{stream}` came (on stream 0: the caller checked): returns
    /// whether this side must now answer with its own (it had not sent one).
    pub(crate) fn peer_gone(&mut self, stream: u16, peer: &str) -> Result<bool, SessionError> {
        let id = StreamId(stream);
        if id.is_control() {
            return Err(SessionError::protocol(format!(
                "StreamGone for stream 0 from {peer}: the control stream cannot be lost \
                 inside a session (its loss ends it)"
            )));
        }
        match self.state(id) {
            Some(State::Live) => {
                self.states[stream as usize] = State::Gone {
                    sent: true,
                    received: true,
                };
                Ok(true)
            }
            Some(State::Gone {
                sent,
                received: false,
            }) => {
                self.states[stream as usize] = State::Gone {
                    sent: true,
                    received: true,
                };
                Ok(!sent)
            }
            Some(State::Gone { received: true, .. }) => Err(SessionError::protocol(format!(
                "StreamGone for {id} from {peer} twice: a side says it once per stream"
            ))),
            _ => Err(SessionError::protocol(format!(
                "StreamGone for {id} from {peer}, which never joined this session"
            ))),
        }
    }

    /// Both sides said `StreamGone{stream}`.
    pub(crate) fn both_gone(&self, stream: StreamId) -> bool {
        self.state(stream)
            == Some(State::Gone {
                sent: true,
                received: true,
            })
    }

    /// Live streams, lowest first.
    pub(crate) fn live(&self) -> impl Iterator<Item = StreamId> + '_ {
        self.states
            .iter()
            .enumerate()
            .filter(|(_, s)| **s == State::Live)
            .map(|(k, _)| StreamId(k as u16))
    }
}
