//! The session's rules as state machines without I/O: a [`source`] core and a [`target`]
//! core, each fed what happened (`handle_*`: a decoded message from the peer, a local
//! completion such as "file N is in place", the end of a listing) and drained of what
//! to do (`poll_*`: messages to send, work for the driver, events to report).
//!
//! ```text
//!            handle_message(peer's Message)        poll_transmit() ─▶ Message to send
//! driver ──▶ handle_<completion>(local result) ──▶ core ──▶ poll_work() ─▶ work to do
//!                                                       └─▶ poll_event() ─▶ what to report
//! ```
//!
//! A core owns every rule a peer can break (what may come when, indices, the listing
//! window, bounds on what a peer makes this side hold) and refuses a broken one with a
//! [`SessionError::Protocol`]. It never blocks and never fails on its own: no sockets,
//! files, clocks, threads or randomness (a key or a time is handed in as a value). The
//! engine drives it: one task owns a core and does what it asks.
//!
//! Must not import: tokio, std::fs, std::net, or any crate that does I/O.

pub mod block;
pub mod join;
mod live;
pub mod source;
pub mod stream;
pub mod target;

use crate::message::ErrorClass;
use crate::path::peer_text;

/// Why a session stops, as a core sees it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// The peer broke a rule of the protocol. The session ends with a protocol error
    /// (exit 12), and this side tells the peer so with `Error{class: Protocol}`.
    #[error("{0}")]
    Protocol(String),
    /// The peer stopped the session with a fatal `Error` of its own; `message` is its
    /// text made safe to show ([`peer_text`]).
    #[error("{message}")]
    Peer { class: ErrorClass, message: String },
    /// This side's volume has no room for what the session must write (the target's
    /// pre-flight space check): a file I/O failure (exit 11), told to the peer as
    /// `Error{class: FileIo}`. The message names both numbers and what to do.
    #[error("{0}")]
    NoSpace(String),
}

impl SessionError {
    pub(crate) fn protocol(message: impl Into<String>) -> SessionError {
        SessionError::Protocol(message.into())
    }

    /// The error for a peer's `Error{class, message}`: `said` introduces the peer's
    /// words ("target says"), which follow made safe to show.
    pub fn from_peer(said: &str, class: ErrorClass, message: &str) -> SessionError {
        SessionError::Peer {
            class,
            message: format!("{said}: {}", peer_text(message)),
        }
    }
}
