//! Ferry's engine: the async pumps that run a push (source), a serve (target of pushes,
//! source of pulls) and a pull (target).
//!
//! Owns: sessions, the streams between the walker, the sender and receiver threads and
//! the connection, the window that keeps memory flat, the summary and exit code, and
//! the enrollment exchange of pairing (`enroll`: `--join` and `serve --pair`).
//! Does not own: the wire format (`ferry-proto`), filesystem access (`ferry-tree`),
//! signatures and deltas (`ferry-delta`), or sockets and TLS (`ferry-net`).
//!
//! ```text
//! push:  walker ─▶ List ─▶ ┐                      ┌─▶ planner ─▶ Want ─┐
//!        senders ─▶ Data ─▶ ┴─▶ TLS ═══════▶ TLS ─┴─▶ receivers ─▶ temp, verify, rename
//!        ◀──────────── Want / Signature / Ack / Done ◀──────────────────┘
//! ```
//!
//! # Error rules
//! * A *fatal* error ends the session; it carries an [`ExitCode`] class: usage (1),
//!   version (2), session start (5: TLS, auth, unknown or busy volume), socket (10),
//!   target file I/O such as no space (11), protocol (12), interrupted (20), timeouts
//!   (30, 35). The side that detects a protocol or file I/O error tells the peer with an
//!   `Error` message before closing.
//! * A *per-file* error (a file the target cannot write, a source file it cannot read)
//!   is reported, counted, and the run goes on; the exit code is then 23.
//! * A source file that vanishes or changes while it is read is a warning (exit 24): it
//!   is never committed torn, and the next pass sends it.
//! * Exit codes: the worst class wins; fatal beats per-file beats vanished.

mod cancel;
mod connect;
mod display;
mod enroll;
mod error;
mod exit;
mod framed;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod probe;
mod progress;
mod pull;
mod push;
mod ratelimit;
mod report;
mod serve;
mod summary;
mod zeros;

pub use connect::Route;
pub use enroll::{join, Joined};
pub use error::EngineError;
pub use exit::ExitCode;
pub use framed::DEFAULT_HEARTBEAT;
pub use probe::{probe, Hop, Verdict};
pub use pull::{pull, PullConfig};
pub use push::{push, PushConfig};
pub use ratelimit::parse_rate;
pub use report::{Output, SCHEMA};
pub use serve::{bind, serve, serve_bound, Bound, Export, ServeConfig, ServerIdentity};
pub use summary::Summary;
