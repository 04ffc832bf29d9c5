//! Ferry's engine: the async drivers that run a session's two roles, and the commands
//! that connect or accept and hand a connection to a role.
//!
//! Owns: sessions, the streams between the walker, the sender threads, the apply workers and
//! the connection, the window that keeps memory flat, the summary and exit code, and
//! the enrollment exchange of pairing (`enroll`: `--join` and `serve --pair`).
//! Does not own: the wire format (`ferry-proto`), filesystem access (`ferry-tree`),
//! signatures and deltas (`ferry-delta`), or sockets and TLS (`ferry-net`).
//!
//! ```text
//! push:  walker ─▶ List ─▶ ┐                      ┌─▶ planner ─▶ Want ─┐
//!        senders ─▶ Data ─▶ ┴─▶ TLS ═══════▶ TLS ─┴─▶ apply workers ─▶ temp, verify, rename
//!        ◀──────────── Want / Signature / Ack / Done ◀──────────────────┘
//! ```
//!
//! # The house, by role
//! * Roles: `source` (walk, list, read, answer wants) and `target` (plan, receive,
//!   apply, verify, finish). Each runs on a connection whose handshake is done, whichever
//!   side connected: a push runs the source and `serve` the target; a pull the reverse.
//! * Commands: `push`, `pull`, `serve`, `probe`. They connect (`client`) or
//!   accept, pick a role and hand over; they never import each other.
//! * Shared below them: `report` (events, progress, summary: the one place that
//!   prints), `framed` (frames over a stream), `ratelimit`, `cancel`, `zeros`, `error`,
//!   `exit`.
//!
//! Imports run down only: commands → roles → shared. A role does not import a command
//! or the other role; nothing reaches up with `super::super::`.
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

mod block;
mod cancel;
mod client;
mod enroll;
mod error;
mod exit;
mod framed;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod joined;
mod probe;
mod pull;
mod push;
// The engine uses a range's value (both roles); the file's hash from its ranges' values
// (`combine`, `RangeMerger`) is the proof, tested against `blake3::hash`, that verifying
// every range verifies the file, and is not needed on the wire.
#[allow(dead_code)]
mod range_hash;
mod ratelimit;
mod report;
mod serve;
mod source;
mod target;
#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod testing;
mod zeros;

pub use client::connect::Route;
pub use client::streams::Streams;
pub use enroll::{join, Joined};
pub use error::EngineError;
pub use exit::ExitCode;
/// Capabilities and what a side cannot do without them (the binary says so up front).
pub use ferry_tree::{Cap, Caps, PrivilegeReport, Side};
pub use framed::DEFAULT_HEARTBEAT;
pub use probe::{probe, Hop, Verdict};
pub use pull::{pull, PullConfig};
pub use push::{push, PushConfig};
pub use ratelimit::parse_rate;
pub use report::summary::Summary;
pub use report::{Event, EventSink, Output, SCHEMA};
pub use serve::hub::DEFAULT_MAX_STREAMS;
pub use serve::{bind, serve, serve_bound, Bound, Export, ServeConfig, ServerIdentity};
