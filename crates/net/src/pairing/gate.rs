//! The server's TLS door: which configuration a connection gets, chosen from its
//! ClientHello.
//!
//! A ClientHello whose only ALPN protocol is `ferry-enroll/1`, arriving while the pairing
//! window is open, gets the enrollment configuration: no client certificate asked, ALPN
//! `ferry-enroll/1` only, and the connection can do nothing but one enrollment exchange.
//! Every other ClientHello, and this one when the window is closed, gets the session
//! configuration exactly as without pairing: a client certificate from our CA is
//! required and only `ferry/1` is spoken (so an enrollment attempt outside the window
//! fails the handshake with `no_application_protocol`). A session can never be taken for
//! an enrollment nor the reverse: the negotiated ALPN says which one it is, and it is
//! checked again after the handshake.
//!
//! Must not import the engine.

use std::sync::Arc;
use std::time::Instant;

use rustls::server::Acceptor;
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::server::TlsStream;
use tokio_rustls::LazyConfigAcceptor;

use super::window::PairingWindow;
use super::ENROLL_ALPN;
use crate::error::{NetError, TlsFailure, TlsPeer};
use crate::tls::{handshake_error, ALPN};

/// A handshake done, and what it is for.
pub enum Accepted<S> {
    /// A client with a certificate from our CA, speaking `ferry/1`.
    Session(TlsStream<S>),
    /// An unauthenticated joiner, speaking `ferry-enroll/1`, while the window was open.
    Enroll(TlsStream<S>),
}

/// The server's TLS configurations and the pairing window (if `--pair`).
#[derive(Clone)]
pub struct ServerTls {
    session: Arc<ServerConfig>,
    enroll: Option<(Arc<ServerConfig>, Arc<PairingWindow>)>,
}

impl ServerTls {
    pub fn new(
        session: Arc<ServerConfig>,
        enroll: Option<(Arc<ServerConfig>, Arc<PairingWindow>)>,
    ) -> ServerTls {
        ServerTls { session, enroll }
    }

    /// Runs the server handshake, choosing the configuration from the ClientHello.
    pub async fn accept<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        stream: S,
    ) -> Result<Accepted<S>, NetError> {
        let start = LazyConfigAcceptor::new(Acceptor::default(), stream)
            .await
            .map_err(|e| handshake_error(TlsPeer::Client, e))?;
        let hello = start.client_hello();
        let only_enroll = hello.alpn().is_some_and(|mut offered| {
            offered.next() == Some(ENROLL_ALPN) && offered.next().is_none()
        });
        let enroll = match &self.enroll {
            Some((config, window)) if only_enroll && window.closed(Instant::now()).is_none() => {
                Some(config.clone())
            }
            _ => None,
        };
        let (config, expected) = match enroll {
            Some(config) => (config, ENROLL_ALPN),
            None => (self.session.clone(), ALPN),
        };
        let tls = start
            .into_stream(config)
            .await
            .map_err(|e| handshake_error(TlsPeer::Client, e))?;
        let got = tls.get_ref().1.alpn_protocol();
        if got != Some(expected) {
            return Err(NetError::Tls {
                peer: TlsPeer::Client,
                failure: TlsFailure::Alpn {
                    got: got.map_or_else(
                        || "none".to_owned(),
                        |p| String::from_utf8_lossy(p).into_owned(),
                    ),
                },
            });
        }
        Ok(if expected == ENROLL_ALPN {
            Accepted::Enroll(tls)
        } else {
            Accepted::Session(tls)
        })
    }
}
