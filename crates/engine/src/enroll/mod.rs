//! The enrollment exchange over a connection (the formats and checks are
//! `ferry_net::pairing`'s; the specification is docs/protocol.md, "Enrollment (pairing)").
//!
//! ```text
//! join (push/pull/probe --join):  tcp ─▶ [proxy tunnel] ─▶ TLS (ALPN ferry-enroll/1, CA pinned)
//!                                 ─▶ Request(key, name, proof) ─▶ Response ─▶ peers dir
//! grant (serve --pair):           gate says Enroll ─▶ read Request (bounded, deadline)
//!                                 ─▶ window.redeem ─▶ issue + log ─▶ Response ─▶ close
//! ```
//!
//! Owns the I/O of the exchange and its deadlines; must not import the session protocol.

mod grant;
mod join;

pub use grant::{grant, watch_expiry, Pairing};
pub use join::{join, Joined};
