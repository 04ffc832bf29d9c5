//! The one error type of the crate, and the classes callers act on.
//!
//! Every message says what went wrong and what to do about it, because these messages end
//! up in the log of a pod that a cluster admin reads without the source at hand.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// What a TLS directory must contain; appended to every file error.
const EXPECTED_DIR: &str =
    "expected a directory with tls.crt, tls.key and ca.crt as written by `ferry certs`";

/// How the caller should treat a [`NetError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NetErrorClass {
    /// Bad or missing files, names or addresses: a usage error, retrying will not help.
    Config,
    /// DNS, TCP connect, reset or a dropped connection: retrying may help.
    Connect,
    /// Handshake or authentication failure: permanent until certificates or names change.
    Tls,
    /// A proxy refused our credentials or wants some: permanent until the user or password
    /// changes.
    Auth,
    /// The peer did not answer in time: retrying may help.
    Timeout,
}

/// Which end of a TLS connection the error is about, as seen from this side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TlsPeer {
    /// We are the client; the server was expected to be `name`.
    Server(String),
    /// We are the server.
    Client,
}

impl fmt::Display for TlsPeer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsPeer::Server(name) => write!(f, "server {name:?}"),
            TlsPeer::Client => f.write_str("a client"),
        }
    }
}

/// Why a TLS handshake (or a TLS stream, for alerts that arrive after it) failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TlsFailure {
    #[error(
        "its certificate is not valid for the name {expected:?} (it names {}); connect with a \
         name given to `ferry certs`, or make new certificates that include {expected:?}",
        list(presented)
    )]
    NameMismatch {
        expected: String,
        presented: Vec<String>,
    },
    #[error(
        "its certificate is signed by another CA: check that both sides use certs from the \
         same `ferry certs` run"
    )]
    UnknownCa,
    #[error(
        "it presented no certificate; give the client the client/ directory written by \
         `ferry certs`"
    )]
    NoClientCert,
    #[error(
        "it refused our certificate (alert {alert}): check that both sides use certs from the \
         same `ferry certs` run, the server its server/ directory and the client its client/ \
         directory"
    )]
    RefusedByPeer { alert: String },
    #[error(
        "it has revoked our certificate (alert certificate_revoked): its operator forgot this \
         peer (--revoke or --revoked-file); if that was a mistake, pair again with a new code \
         from `ferry serve --pair`"
    )]
    Revoked,
    #[error(
        "its certificate has expired ({detail}); make new certificates with `ferry certs` \
         (or check the clocks of both hosts)"
    )]
    Expired { detail: String },
    #[error(
        "its certificate is not yet valid ({detail}): check the clocks of both hosts (one runs \
         behind the other, or the certificates were made on a host whose clock runs ahead)"
    )]
    NotYetValid { detail: String },
    #[error(
        "it refused our certificate as expired or not yet valid (alert certificate_expired, \
         which TLS sends for both): check the clocks of both hosts, and if they agree make new \
         certificates with `ferry certs`"
    )]
    RefusedAsOutOfDate,
    #[error(
        "its certificate is not made for this use ({detail}); the server must use the server/ \
         directory and the client the client/ directory written by `ferry certs`"
    )]
    WrongPurpose { detail: String },
    #[error(
        "it does not speak ferry/1 (ALPN {got}); check that the address points at a ferry \
         server of the same version"
    )]
    Alpn { got: String },
    #[error("{detail}; check that the address points at a ferry server of the same version")]
    Other { detail: String },
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "no names".to_owned()
    } else {
        names.join(", ")
    }
}

/// The address we tried, when the host was a name rather than that address.
fn resolved(host: &str, addr: &SocketAddr) -> String {
    if host.parse::<std::net::IpAddr>() == Ok(addr.ip()) {
        String::new()
    } else {
        format!(" ({})", addr.ip())
    }
}

fn connect_hint(error: &io::Error) -> &'static str {
    match error.kind() {
        io::ErrorKind::ConnectionRefused => {
            "nothing listens there: check that the ferry server runs and the port is right"
        }
        io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable => {
            "no route to it: check network policies, egress firewalls and whether a proxy is needed"
        }
        _ => "check the address and the network path (policies, firewalls, proxy)",
    }
}

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("cannot read {}: {source}; {EXPECTED_DIR}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("{} holds no usable {what}: {detail}; {EXPECTED_DIR}", path.display())]
    Pem {
        path: PathBuf,
        what: &'static str,
        detail: String,
    },
    #[error("{} cannot serve as a trust anchor: {source}; {EXPECTED_DIR}", path.display())]
    Trust {
        path: PathBuf,
        source: rustls::Error,
    },
    #[error(
        "{} does not fit {}: {source}; use tls.crt and tls.key from the same directory \
         written by `ferry certs`",
        key.display(),
        cert.display()
    )]
    Credentials {
        cert: PathBuf,
        key: PathBuf,
        source: rustls::Error,
    },
    #[error(
        "TLS setup failed: {detail}; this is a bug in ferry or its crypto library, please report it"
    )]
    Setup { detail: String },
    #[error(
        "{name:?} is not a valid server name ({reason}); give a DNS name such as \
         dvm-ns.apps.example.com or an IP address"
    )]
    InvalidName { name: String, reason: String },
    #[error(
        "no server names given; name at least one DNS name or IP address clients will connect to"
    )]
    NoServerNames,
    #[error("refusing to overwrite {}; choose an empty --out directory", path.display())]
    WouldOverwrite { path: PathBuf },
    #[error("cannot write {}: {source}; check that the --out directory is writable", path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot generate the {what}: {source}; this is a bug in ferry, please report it")]
    Generate {
        what: &'static str,
        source: rcgen::Error,
    },
    #[error(
        "cannot listen on {addr}: {source}; check that no other process uses the port and that \
         the address belongs to this host"
    )]
    Bind { addr: SocketAddr, source: io::Error },
    #[error(
        "cannot resolve {host} (port {port}): {source}; check the host name and this pod's DNS"
    )]
    Resolve {
        host: String,
        port: u16,
        source: io::Error,
    },
    #[error("{host} (port {port}) resolves to no address; check the host name and this pod's DNS")]
    NoAddress { host: String, port: u16 },
    #[error(
        "cannot connect to {host}:{port}{}: {source}; {}",
        resolved(host, addr),
        connect_hint(source)
    )]
    Connect {
        host: String,
        port: u16,
        addr: SocketAddr,
        source: io::Error,
    },
    #[error(
        "connecting to {host}:{port} timed out after {after:?}; check the network path \
         (policies, firewalls, proxy) and that the server is up"
    )]
    Timeout {
        host: String,
        port: u16,
        after: Duration,
    },
    #[error("cannot tune the TCP socket: {source}; the connection is probably already gone")]
    Tune { source: io::Error },
    #[error("TLS handshake with {peer} failed: {failure}")]
    Tls { peer: TlsPeer, failure: TlsFailure },
    #[error("{}", handshake_broke(peer, source))]
    HandshakeIo { peer: TlsPeer, source: io::Error },
    #[error("the connection with {peer} broke: {source}; retrying may help")]
    Io { peer: TlsPeer, source: io::Error },
    // The proxy variants hold the proxy only in its redacted form (`ProxyUrl::redacted`), so
    // no password can reach a message, a `Debug` dump or a JSON report.
    #[error("invalid proxy URL {url}: {reason}; expected http://[USER:PASSWORD@]HOST[:PORT]")]
    ProxyUrl { url: String, reason: String },
    #[error(
        "cannot reach proxy {proxy}: {}; check --proxy / HTTPS_PROXY",
        unreachable(cause)
    )]
    ProxyUnreachable {
        proxy: String,
        /// What dialling the proxy's host and port gave. Its own message is written for a
        /// ferry server, so the message above rewords it for a proxy.
        cause: Box<NetError>,
    },
    #[error("{}", proxy_auth(proxy, *had_credentials, user))]
    ProxyAuth {
        proxy: String,
        had_credentials: bool,
        /// The user name sent (empty without credentials).
        user: String,
    },
    #[error("proxy {proxy} refused CONNECT: {status} {reason}; {hint}")]
    ProxyRefused {
        proxy: String,
        status: u16,
        /// The reason phrase, printable ASCII only and at most 200 characters.
        reason: String,
        hint: String,
    },
    #[error(
        "cannot write {}: {source}; check that the state directory (--state-dir; as root \
         /var/lib/ferry) is writable by this user",
        path.display()
    )]
    StateWrite { path: PathBuf, source: io::Error },
    #[error(
        "the state directory {} {problem}: another user could read or replace its CA key; \
         give a directory only this user owns and can write (mode 0700), or remove this one",
        path.display()
    )]
    StateUnsafe { path: PathBuf, problem: String },
    #[error(transparent)]
    Pairing(#[from] crate::pairing::PairingError),
    #[error("CONNECT through proxy {proxy} failed: {detail}")]
    ProxyProtocol { proxy: String, detail: String },
    #[error(
        "the connection to proxy {proxy} broke during CONNECT: {source}; retrying may help, \
         otherwise check the proxy's logs"
    )]
    ProxyIo { proxy: String, source: io::Error },
}

fn proxy_auth(proxy: &str, had_credentials: bool, user: &str) -> String {
    if had_credentials {
        format!(
            "proxy {proxy} rejected the credentials for user {user:?}: check the user and password"
        )
    } else {
        format!("proxy {proxy} requires credentials: give --proxy http://USER:PASSWORD@host:port")
    }
}

/// A handshake cut short. When the server closes it, the likely causes are a target busy
/// with connections that have not authenticated (it closes the oldest of them to let new
/// ones in) or a refusal of our certificate that came without an alert.
fn handshake_broke(peer: &TlsPeer, source: &io::Error) -> String {
    let where_to_look = "check that the address points at a ferry server (a router that \
                         forwards by SNI needs the route host as the server name) and that no \
                         proxy inspects TLS";
    let closed = matches!(
        source.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    );
    match peer {
        TlsPeer::Server(_) if closed => format!(
            "the target ({peer}) closed the connection during the TLS handshake ({source}): it \
             may be overloaded with connections that have not authenticated, which it closes \
             oldest first, so retrying helps (--retries); or it refused our certificate: \
             check that this side uses the client/ directory of the same `ferry certs` run as \
             the target's server/ directory. If it keeps happening, {where_to_look}"
        ),
        _ => format!(
            "the connection with {peer} broke during the TLS handshake: {source}; {where_to_look}"
        ),
    }
}

/// Why dialling a proxy failed, worded for a proxy rather than a ferry server.
fn unreachable(cause: &NetError) -> String {
    match cause {
        NetError::Connect { addr, source, .. } => {
            let hint = match source.kind() {
                io::ErrorKind::ConnectionRefused => "nothing listens on that port",
                io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable => {
                    "no route to it: check network policies and egress firewalls"
                }
                _ => "check the network path to it",
            };
            format!("{source} (at {addr}); {hint}")
        }
        NetError::Resolve { host, source, .. } => format!("cannot resolve {host}: {source}"),
        NetError::NoAddress { host, .. } => format!("{host} resolves to no address"),
        NetError::Timeout { after, .. } => format!("no connection within {after:?}"),
        other => other.to_string(),
    }
}

impl NetError {
    /// How the caller should treat this error (retry, give up, blame the user).
    pub fn class(&self) -> NetErrorClass {
        use NetError::*;
        match self {
            Read { .. }
            | Pem { .. }
            | Trust { .. }
            | Credentials { .. }
            | Setup { .. }
            | InvalidName { .. }
            | NoServerNames
            | WouldOverwrite { .. }
            | Write { .. }
            | Generate { .. }
            | Bind { .. }
            | StateWrite { .. }
            | StateUnsafe { .. } => NetErrorClass::Config,
            Pairing(e) => e.class(),
            Resolve { .. }
            | NoAddress { .. }
            | Connect { .. }
            | Tune { .. }
            | HandshakeIo { .. }
            | Io { .. }
            | ProxyRefused { .. }
            | ProxyProtocol { .. }
            | ProxyIo { .. } => NetErrorClass::Connect,
            // A proxy that does not answer in time is a connect timeout like any other.
            ProxyUnreachable { cause, .. } => match cause.class() {
                NetErrorClass::Timeout => NetErrorClass::Timeout,
                _ => NetErrorClass::Connect,
            },
            ProxyUrl { .. } => NetErrorClass::Config,
            ProxyAuth { .. } => NetErrorClass::Auth,
            Tls { .. } => NetErrorClass::Tls,
            Timeout { .. } => NetErrorClass::Timeout,
        }
    }
}
