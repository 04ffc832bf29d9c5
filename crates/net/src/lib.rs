//! Ferry's transport: how bytes get from one pod to another, authenticated both ways.
//!
//! Owns: TCP listen/connect with socket tuning ([`tcp`]), the HTTP CONNECT tunnel through a
//! proxy and the choice of proxy ([`proxy`], [`no_proxy`]), mutual-TLS configurations loaded
//! from a directory shaped like a Kubernetes TLS secret ([`tls`]), the certificates that
//! fill such directories ([`certs`]), a byte-counting stream wrapper ([`counting`]), and
//! pairing two hosts with a join code instead of copied directories ([`pairing`]).
//!
//! Does not own: the protocol, files, retries or timeouts of whole transfers (the engine
//! decides those from [`NetErrorClass`]).
//!
//! ```text
//!  client                                                   server
//!  tcp::connect(host, port) ─▶ tune ─▶ Counted ─┐          tcp::listen ─▶ accept ─▶ tune ─▶ Counted
//!   or, when choose_proxy gives a proxy:        │                                             │
//!  connect_proxy ─▶ tune ─▶ Counted ─▶ connect_tunnel(host, port)                             │
//!                                               │                                             │
//!  tls::connect(client_config, sni) ─────────── TLS 1.3, ALPN ferry/1 ──────▶ tls::accept(server_config)
//!         │                                                                                   │
//!         ▼                                                                                   ▼
//!    TlsStream ──▶ engine                                                          TlsStream ──▶ engine
//!
//!  certs::generate(out) ─▶ out/server/{tls.crt,tls.key,ca.crt}  ─▶ TlsDir ─▶ server_config
//!                       └▶ out/client/{tls.crt,tls.key,ca.crt}  ─▶ TlsDir ─▶ client_config
//! ```
//!
//! Everything is re-exported at the root; the TLS handshakes as [`tls_connect`] and
//! [`tls_accept`], so that [`connect`] is the TCP one.

pub mod certs;
mod classify;
pub mod counting;
pub mod error;
pub mod no_proxy;
pub mod pairing;
pub mod proxy;
pub mod tcp;
pub mod tls;

pub use certs::generate;
pub use counting::{Counted, WireCounter};
pub use error::{NetError, NetErrorClass, TlsFailure, TlsPeer};
pub use no_proxy::NoProxy;
pub use proxy::{choose_proxy, connect_proxy, connect_tunnel, ProxyUrl};
pub use tcp::{connect, listen, listen_std, tune};
pub use tls::{accept as tls_accept, connect as tls_connect};
pub use tls::{client_config, server_config, server_name, stream_error, TlsDir, ALPN};
pub use tls::{enroll_server_config, server_config_revoking};
