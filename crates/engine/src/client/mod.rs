//! What the connecting commands (`push`, `pull`, `probe`) share: the route to the server
//! (proxy, SNI, mutual TLS), the handshake, and the backoff between attempts.
//!
//! Must not import a command (`push`, `pull`, `serve`) or a role (`source`, `target`).

pub(crate) mod attempt;
pub(crate) mod block;
pub(crate) mod connect;
pub(crate) mod handshake;
pub(crate) mod streams;
