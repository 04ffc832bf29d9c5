//! Who may join a running session: the checks a server makes on a `Join` once its key
//! found the session (docs/protocol.md, "Streams"), as a state machine without I/O.
//!
//! ```text
//! Join{version, key, stream} ─▶ engine: version, key → session (registry)
//!                            ─▶ JoinGate::handle_join(stream, identity, sni)
//!                                 ├─ Ok(StreamId)      ─▶ Joined{stream}, hand the connection on
//!                                 └─ Err(JoinRefusal)  ─▶ Refused{reason, message}
//! ```
//!
//! The gate checks, in this order: the joining client's certificate and SNI are the
//! opener's; the session still takes joins ([`JoinGate::close`] was not called); the
//! stream is within `streams_max`; it was never joined before (also not if it was lost
//! since: a lost stream is not replaced). Lateness is a state the engine sets when the
//! session starts finishing, not a clock. The server-wide cap on joined streams over all
//! sessions is the engine's, not the gate's.
//!
//! Must not import: anything that does I/O, clocks or randomness.

use std::collections::BTreeSet;
use std::fmt;

use super::stream::StreamId;
use crate::message::RefuseReason;

/// What a joining connection is refused for. [`JoinRefusal::reason`] is the code the peer
/// gets; [`JoinRefusal::peer_message`] the words. `Display` is for this side's log and may
/// say more than the peer is told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JoinRefusal {
    /// The client certificate is not the one that opened the session.
    OtherIdentity,
    /// The connection came with another SNI than the one that opened the session.
    OtherSni,
    /// The session is finishing or over: no stream may join any more.
    Closed,
    /// The stream is not below the session's `streams_max`.
    OverLimit { stream: u16, streams_max: u16 },
    /// The stream is the control stream, or joined before (lost or not).
    Taken { stream: u16 },
}

/// What a join with an unknown key is told, and also one with a known key from another
/// client or SNI: the two must read the same, so a refusal does not tell a client that a
/// key it guessed or stole is live.
pub const UNKNOWN_SESSION_MESSAGE: &str = "this server runs no session with that key (it may have ended, or the route reached another server: joined streams need a route to the one server that runs the session)";

impl JoinRefusal {
    /// The `Refused.reason` for this refusal.
    pub fn reason(&self) -> RefuseReason {
        match self {
            JoinRefusal::OtherIdentity | JoinRefusal::OtherSni => RefuseReason::UnknownSession,
            JoinRefusal::Closed => RefuseReason::JoinClosed,
            JoinRefusal::OverLimit { .. } => RefuseReason::TooManyStreams,
            JoinRefusal::Taken { .. } => RefuseReason::StreamTaken,
        }
    }

    /// The `Refused.message` for this refusal: what the joining client may learn.
    pub fn peer_message(&self) -> String {
        match self {
            JoinRefusal::OtherIdentity | JoinRefusal::OtherSni => {
                UNKNOWN_SESSION_MESSAGE.to_string()
            }
            other => other.to_string(),
        }
    }
}

impl fmt::Display for JoinRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinRefusal::OtherIdentity => f.write_str(
                "a join presented the session's key with another client certificate than the one that opened the session",
            ),
            JoinRefusal::OtherSni => f.write_str(
                "a join presented the session's key under another server name (SNI) than the one that opened the session",
            ),
            JoinRefusal::Closed => f.write_str(
                "the session is finishing and takes no more streams; the transfer goes on over the streams it has",
            ),
            JoinRefusal::OverLimit { stream, streams_max } => write!(
                f,
                "stream {stream} is over this session's limit of {streams_max} streams (0..{streams_max}, stream 0 included)"
            ),
            JoinRefusal::Taken { stream: 0 } => f.write_str(
                "stream 0 is the connection that opened the session; joined streams are numbered from 1",
            ),
            JoinRefusal::Taken { stream } => write!(
                f,
                "stream {stream} joined this session before; a stream number is used once, also after its connection was lost"
            ),
        }
    }
}

/// The join checks of one session. Call order: [`JoinGate::new`] when the session is
/// admitted (from its opener's certificate and SNI); [`JoinGate::handle_join`] for each
/// `Join` whose key named this session; [`JoinGate::close`] when the session starts
/// finishing. Whether a joined stream is still connected is the session's to know, not
/// the gate's: a number, once joined, stays taken whatever became of its connection.
#[derive(Debug)]
pub struct JoinGate {
    streams_max: u16,
    identity: [u8; 32],
    sni: Option<String>,
    closed: bool,
    /// Every stream that ever joined (never shrinks: a number is used once). Its size is
    /// below `streams_max`.
    joined: BTreeSet<u16>,
}

impl JoinGate {
    /// A gate for a session of at most `streams_max` streams (stream 0 included), opened
    /// by the client certificate whose leaf's SHA-256 is `identity`, under `sni`.
    pub fn new(streams_max: u16, identity: [u8; 32], sni: Option<String>) -> JoinGate {
        JoinGate {
            streams_max,
            identity,
            sni,
            closed: false,
            joined: BTreeSet::new(),
        }
    }

    /// A connection asks to be stream `stream` of the session; `identity` is its client
    /// certificate's leaf SHA-256, `sni` the server name it asked for.
    pub fn handle_join(
        &mut self,
        stream: u16,
        identity: &[u8; 32],
        sni: Option<&str>,
    ) -> Result<StreamId, JoinRefusal> {
        if identity != &self.identity {
            return Err(JoinRefusal::OtherIdentity);
        }
        if sni != self.sni.as_deref() {
            return Err(JoinRefusal::OtherSni);
        }
        if self.closed {
            return Err(JoinRefusal::Closed);
        }
        if stream >= self.streams_max {
            return Err(JoinRefusal::OverLimit {
                stream,
                streams_max: self.streams_max,
            });
        }
        if stream == StreamId::CONTROL.0 || !self.joined.insert(stream) {
            return Err(JoinRefusal::Taken { stream });
        }
        Ok(StreamId(stream))
    }

    /// The session is finishing: every later join is refused as late.
    pub fn close(&mut self) {
        self.closed = true;
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }

    pub fn streams_max(&self) -> u16 {
        self.streams_max
    }

    /// Streams that ever joined (stream 0 not counted).
    pub fn joined(&self) -> usize {
        self.joined.len()
    }
}

#[cfg(test)]
#[path = "join_tests.rs"]
mod tests;
