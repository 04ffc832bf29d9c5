//! Pairing two hosts by hand: one join code instead of copying certificate directories.
//!
//! A server without `--tls-dir` keeps its own CA in a state directory ([`state`],
//! [`authority`]). `serve --pair` opens a [`window`] and prints a [`code`]: the CA's
//! SHA-256 and a 128-bit one-time secret. The joiner connects with ALPN
//! `ferry-enroll/1`, accepts only a server whose chain ends at the pinned CA ([`pinned`]),
//! sends its new public key and a [`proof`] of the secret bound to this TLS connection
//! (an exporter value), and gets a client certificate back ([`wire`]). It stores the
//! result per server ([`peers`]). The server's [`gate`] lets an unauthenticated
//! connection through TLS only for that exchange and only while the window is open; a
//! [`revoked`] list forgets peers. The exchange is specified in docs/protocol.md ("Enrollment (pairing)").
//!
//! ```text
//! joiner                                               server (serve --pair)
//! JoinCode ─▶ PinnedCa ─ ClientHello ALPN ferry-enroll/1 ─▶ gate: window open? enroll config
//!             chain ends at pin? ◀── cert + CA cert ─────── (no client cert asked)
//! exporter ─▶ proof ─▶ Request(key, name, proof) ─────────▶ window.redeem(exporter, ...)
//! peers::store ◀──── Response(cert DER, CA DER) ◀──────────── authority.issue_client
//! ```
//!
//! Owns the formats, the checks and the files; the exchange over a connection is the
//! engine's (`enroll`). Must not import the engine.

pub mod authority;
pub mod code;
pub mod digest;
mod error;
pub mod gate;
pub mod peers;
pub mod pinned;
pub mod proof;
pub mod revoked;
pub mod state;
pub mod window;
pub mod wire;

pub use authority::{default_server_names, joiner_key, Authority, JoinerKey};
pub use code::{CodeError, JoinCode, SECRET_LEN};
pub use error::PairingError;
pub use gate::{Accepted, ServerTls};
pub use pinned::{join_client_config, PinnedCa};
pub use revoked::{Revocation, RevokingVerifier};
pub use state::{default_state_dir, StateDir};
pub use window::{Closed, PairingWindow, Verdict, MAX_FAILED_PROOFS};

/// The ALPN protocol of the enrollment exchange; never offered by a session.
pub const ENROLL_ALPN: &[u8] = b"ferry-enroll/1";
