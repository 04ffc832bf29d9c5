//! Mutual TLS: configurations loaded from a TLS directory, and the two handshakes.
//!
//! Both ends authenticate: the server demands a client certificate chaining to `ca.crt`,
//! and the client trusts only `ca.crt` (never the system roots) and checks the server name.
//! TLS 1.3 only, ALPN `ferry/1`.
//!
//! A TLS 1.3 client finishes its handshake before the server has looked at the client
//! certificate, so a refused client learns of it on its first read, not in [`connect`].
//! Pass such read errors through [`stream_error`] to get the same classified message.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::classify::{failure, io_error};
use crate::error::{NetError, TlsFailure, TlsPeer};
use crate::pairing::{Revocation, RevokingVerifier, ENROLL_ALPN};

/// The ALPN protocol both ends insist on; bump it when the wire protocol breaks.
pub const ALPN: &[u8] = b"ferry/1";

pub(crate) const CERT_FILE: &str = "tls.crt";
pub(crate) const KEY_FILE: &str = "tls.key";
pub(crate) const CA_FILE: &str = "ca.crt";

/// Paths of a TLS directory (the shape of a Kubernetes TLS secret with a CA):
/// `dir/tls.crt`, `dir/tls.key`, `dir/ca.crt`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsDir {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
}

impl TlsDir {
    pub fn new(dir: &Path) -> TlsDir {
        TlsDir {
            cert: dir.join(CERT_FILE),
            key: dir.join(KEY_FILE),
            ca: dir.join(CA_FILE),
        }
    }
}

/// Server side: our certificate from `tls.crt`/`tls.key`; every client must present a
/// certificate chaining to `ca.crt`.
///
/// Reads the files synchronously: call it once at startup, not per connection.
pub fn server_config(dir: &TlsDir) -> Result<Arc<ServerConfig>, NetError> {
    server_config_revoking(dir, Arc::default())
}

/// [`server_config`], refusing client certificates that `revoked` lists.
pub fn server_config_revoking(
    dir: &TlsDir,
    revoked: Arc<Revocation>,
) -> Result<Arc<ServerConfig>, NetError> {
    let provider = provider();
    let roots = load_roots(&dir.ca)?;
    let webpki = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| setup(&e))?;
    let verifier = Arc::new(RevokingVerifier {
        inner: webpki,
        revoked,
    });
    let (certs, key) = load_identity(dir)?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| setup(&e))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .map_err(|source| credentials(dir, source))?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    no_resumption(&mut config);
    Ok(Arc::new(config))
}

/// Every connection makes a full handshake: a resumed TLS 1.3 session carries the client
/// certificate of its first handshake without asking the verifier again, so a revoked
/// (or since expired) certificate would keep getting in on a saved ticket. Ferry's own
/// clients never resume; a session is long, so a handshake per connection costs nothing.
fn no_resumption(config: &mut ServerConfig) {
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
}

/// The enrollment side of a pairing server: the same certificate (whose `tls.crt` holds
/// the CA certificate after it, so a joiner can match its pin), no client certificate
/// asked, ALPN `ferry-enroll/1` only. Used only while a pairing window is open.
pub fn enroll_server_config(dir: &TlsDir) -> Result<Arc<ServerConfig>, NetError> {
    let (certs, key) = load_identity(dir)?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| setup(&e))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|source| credentials(dir, source))?;
    config.alpn_protocols = vec![ENROLL_ALPN.to_vec()];
    no_resumption(&mut config);
    Ok(Arc::new(config))
}

/// Client side: trusts only the certificates in `ca.crt` and presents `tls.crt`/`tls.key`.
///
/// Reads the files synchronously: call it once at startup, not per connection.
pub fn client_config(dir: &TlsDir) -> Result<Arc<ClientConfig>, NetError> {
    let roots = load_roots(&dir.ca)?;
    let (certs, key) = load_identity(dir)?;
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| setup(&e))?
        .with_root_certificates(roots)
        .with_client_auth_cert(certs, key)
        .map_err(|source| credentials(dir, source))?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    Ok(Arc::new(config))
}

/// Parses a DNS name or an IP address, as sent in SNI and checked against the server
/// certificate.
pub fn server_name(name: &str) -> Result<ServerName<'static>, NetError> {
    ServerName::try_from(name.to_owned()).map_err(|e| NetError::InvalidName {
        name: name.to_owned(),
        reason: e.to_string(),
    })
}

/// Runs the client handshake over any stream (TCP today, a proxy tunnel later), sending
/// `name` as SNI and verifying the server certificate against it.
pub async fn connect<S: AsyncRead + AsyncWrite + Unpin>(
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
    stream: S,
) -> Result<tokio_rustls::client::TlsStream<S>, NetError> {
    let peer = TlsPeer::Server(name.to_str().into_owned());
    let expected = config.alpn_protocols.first().cloned().unwrap_or_default();
    let connector = tokio_rustls::TlsConnector::from(config);
    let tls = connector
        .connect(name, stream)
        .await
        .map_err(|e| handshake_error(peer.clone(), e))?;
    check_alpn(peer, &expected, tls.get_ref().1.alpn_protocol())?;
    Ok(tls)
}

/// Runs the server handshake over any stream; on success the client has proven a
/// certificate from our CA.
pub async fn accept<S: AsyncRead + AsyncWrite + Unpin>(
    acceptor: &tokio_rustls::TlsAcceptor,
    stream: S,
) -> Result<tokio_rustls::server::TlsStream<S>, NetError> {
    let tls = acceptor
        .accept(stream)
        .await
        .map_err(|e| handshake_error(TlsPeer::Client, e))?;
    check_alpn(TlsPeer::Client, ALPN, tls.get_ref().1.alpn_protocol())?;
    Ok(tls)
}

/// Classifies an I/O error from an established TLS stream: a TLS alert (notably the
/// server refusing our client certificate, which TLS 1.3 reports only after the handshake)
/// becomes [`NetError::Tls`], anything else [`NetError::Io`].
pub fn stream_error(peer: TlsPeer, error: io::Error) -> NetError {
    match io_error(&error) {
        Some(rustls_error) => tls_error(peer, rustls_error),
        None => NetError::Io {
            peer,
            source: error,
        },
    }
}

pub(crate) fn handshake_error(peer: TlsPeer, error: io::Error) -> NetError {
    match io_error(&error) {
        Some(rustls_error) => tls_error(peer, rustls_error),
        None => NetError::HandshakeIo {
            peer,
            source: error,
        },
    }
}

fn tls_error(peer: TlsPeer, error: &rustls::Error) -> NetError {
    let mut failure = failure(error);
    // Older verifiers report a name mismatch without the name; we know which we asked for.
    if let (TlsFailure::NameMismatch { expected, .. }, TlsPeer::Server(name)) =
        (&mut failure, &peer)
    {
        expected.clone_from(name);
    }
    NetError::Tls { peer, failure }
}

/// Each of our configs offers one protocol (`ferry/1`, or `ferry-enroll/1` for pairing),
/// so rustls already refuses a peer offering something else; this catches a peer that
/// offers no ALPN at all.
fn check_alpn(peer: TlsPeer, expected: &[u8], got: Option<&[u8]>) -> Result<(), NetError> {
    if got == Some(expected) {
        return Ok(());
    }
    let got = got.map_or_else(
        || "none".to_owned(),
        |p| String::from_utf8_lossy(p).into_owned(),
    );
    Err(NetError::Tls {
        peer,
        failure: TlsFailure::Alpn { got },
    })
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn read(path: &Path) -> Result<Vec<u8>, NetError> {
    std::fs::read(path).map_err(|source| NetError::Read {
        path: path.to_owned(),
        source,
    })
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, NetError> {
    let pem_error = |detail: String| NetError::Pem {
        path: path.to_owned(),
        what: "certificate",
        detail,
    };
    let certs = CertificateDer::pem_slice_iter(&read(path)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(e.to_string()))?;
    if certs.is_empty() {
        return Err(pem_error("no CERTIFICATE block found".to_owned()));
    }
    Ok(certs)
}

fn load_roots(path: &Path) -> Result<RootCertStore, NetError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(path)? {
        roots.add(cert).map_err(|source| NetError::Trust {
            path: path.to_owned(),
            source,
        })?;
    }
    Ok(roots)
}

fn load_identity(
    dir: &TlsDir,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), NetError> {
    let certs = load_certs(&dir.cert)?;
    let key = PrivateKeyDer::from_pem_slice(&read(&dir.key)?).map_err(|e| NetError::Pem {
        path: dir.key.clone(),
        what: "private key",
        detail: e.to_string(),
    })?;
    Ok((certs, key))
}

fn credentials(dir: &TlsDir, source: rustls::Error) -> NetError {
    NetError::Credentials {
        cert: dir.cert.clone(),
        key: dir.key.clone(),
        source,
    }
}

fn setup(error: &dyn std::fmt::Display) -> NetError {
    NetError::Setup {
        detail: error.to_string(),
    }
}
