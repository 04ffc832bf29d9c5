//! A raw protocol client: mutual TLS with rustls (blocking), then frames from
//! `ferry_proto::encode` or any bytes at all. It plays a hostile or stalling source.
//!
//! Built on rustls directly rather than `ferry_net`, so that a test can also leave out the
//! client certificate or send bytes no well-behaved client would.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use ferry_proto::{decode, encode, Limits, Message, SessionOptions, PROTOCOL_VERSION};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

/// Hang guard on every read and write: a target that neither answers nor closes fails the
/// test instead of hanging it.
const IO_GUARD: Duration = Duration::from_secs(60);

/// The client side of TLS from a `ferry certs` client directory (`tls.crt`, `tls.key`,
/// `ca.crt`); without `client_cert`, only `ca.crt` is used and no certificate is offered.
pub fn tls_config(client_dir: &Path, client_cert: bool) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(client_dir.join("ca.crt")).expect("read ca.crt") {
        roots.add(cert.expect("parse ca.crt")).expect("add CA");
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots);
    let config = if client_cert {
        let chain = CertificateDer::pem_file_iter(client_dir.join("tls.crt"))
            .expect("read tls.crt")
            .collect::<Result<Vec<_>, _>>()
            .expect("parse tls.crt");
        let key = PrivateKeyDer::from_pem_file(client_dir.join("tls.key")).expect("read tls.key");
        builder
            .with_client_auth_cert(chain, key)
            .expect("client cert")
    } else {
        builder.with_no_client_auth()
    };
    let mut config = config;
    config.alpn_protocols = vec![ferry_net::ALPN.to_vec()];
    Arc::new(config)
}

/// What came back from the target.
#[derive(Debug)]
pub enum Recv {
    Msg(Message),
    /// Clean end of stream.
    Eof,
    /// The connection failed (reset, TLS alert, undecodable bytes); shown in failures.
    Failed(#[allow(dead_code)] String),
}

pub struct RawClient {
    tls: StreamOwned<ClientConnection, TcpStream>,
    buf: BytesMut,
    limits: Limits,
}

impl RawClient {
    /// TCP connect and complete the TLS handshake, verifying the server as `server_name`.
    pub fn connect(
        addr: &str,
        config: Arc<ClientConfig>,
        server_name: &str,
    ) -> io::Result<RawClient> {
        let tcp = TcpStream::connect(addr)?;
        tcp.set_read_timeout(Some(IO_GUARD))?;
        tcp.set_write_timeout(Some(IO_GUARD))?;
        let name = ServerName::try_from(server_name.to_string()).expect("server name");
        let conn = ClientConnection::new(config, name).map_err(io::Error::other)?;
        let mut tls = StreamOwned::new(conn, tcp);
        while tls.conn.is_handshaking() {
            tls.conn.complete_io(&mut tls.sock)?;
        }
        Ok(RawClient {
            tls,
            buf: BytesMut::new(),
            limits: Limits::default(),
        })
    }

    /// Connects with the client certificate of `client_dir`, as `localhost`.
    pub fn connect_as_client(addr: &str, client_dir: &Path) -> RawClient {
        RawClient::connect(addr, tls_config(client_dir, true), "localhost")
            .unwrap_or_else(|e| panic!("raw client: TLS to {addr} failed: {e}"))
    }

    /// Sends `Hello` for `volume` and panics unless the answer is `Welcome`.
    pub fn start_session(&mut self, volume: &str) {
        self.send(&Message::Hello {
            version: PROTOCOL_VERSION,
            volume: volume.as_bytes().to_vec(),
            options: SessionOptions::default(),
            filter: Default::default(),
        })
        .expect("send Hello");
        match self.recv() {
            Recv::Msg(Message::Welcome { .. }) => {}
            other => panic!("raw client: expected Welcome for volume {volume:?}, got {other:?}"),
        }
    }

    pub fn send(&mut self, msg: &Message) -> io::Result<()> {
        let mut frame = BytesMut::new();
        encode(msg, &mut frame);
        self.send_raw(&frame)
    }

    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.tls.write_all(bytes)?;
        self.tls.flush()
    }

    /// The next message; panics (hang guard) if the target neither answers nor closes.
    pub fn recv(&mut self) -> Recv {
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            match decode(&mut self.buf, &self.limits) {
                Ok(Some(msg)) => return Recv::Msg(msg),
                Ok(None) => {}
                Err(e) => return Recv::Failed(format!("undecodable bytes from the target: {e}")),
            }
            match self.tls.read(&mut chunk) {
                Ok(0) => return Recv::Eof,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    panic!("raw client: the target neither answered nor closed within {IO_GUARD:?}")
                }
                Err(e) => return Recv::Failed(e.to_string()),
            }
        }
    }

    /// A handle on the TCP connection under the TLS, to shut it down from another
    /// thread (which ends a write blocked on a peer that stopped reading).
    pub fn socket(&self) -> TcpStream {
        self.tls.sock.try_clone().expect("clone the socket")
    }

    /// The next message if one comes within `wait`, else `None` (the connection stays
    /// usable: a read cut short by the timeout loses nothing). For a peer that listens
    /// on several connections at once.
    pub fn try_recv(&mut self, wait: Duration) -> Option<Recv> {
        let mut chunk = vec![0u8; 64 * 1024];
        let _ = self.tls.sock.set_read_timeout(Some(wait));
        let got = loop {
            match decode(&mut self.buf, &self.limits) {
                Ok(Some(msg)) => break Some(Recv::Msg(msg)),
                Ok(None) => {}
                Err(e) => {
                    break Some(Recv::Failed(format!(
                        "undecodable bytes from the target: {e}"
                    )))
                }
            }
            match self.tls.read(&mut chunk) {
                Ok(0) => break Some(Recv::Eof),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    break None
                }
                Err(e) => break Some(Recv::Failed(e.to_string())),
            }
        };
        let _ = self.tls.sock.set_read_timeout(Some(IO_GUARD));
        got
    }

    /// Reads until the target ends the session: an `Error`, `Done`, `Refused`, end of
    /// stream or a failed connection. Returns everything it sent, the ending last.
    /// Heartbeats do not extend the hang guard: after [`IO_GUARD`] in all, it panics.
    pub fn recv_until_end(&mut self) -> Vec<Recv> {
        self.recv_until_end_with(|_, _| {})
    }

    /// Like [`RawClient::recv_until_end`], calling `on_msg` for every message on the way
    /// (to answer a `Want`, say).
    pub fn recv_until_end_with(&mut self, on_msg: impl FnMut(&mut Self, &Message)) -> Vec<Recv> {
        until_end(self, RawClient::recv, on_msg)
    }
}

/// Reads from `peer` with `recv` until the target ends the session: an `Error`, `Done`,
/// `Refused`, end of stream or a failed connection; calls `on_msg` for every message on
/// the way. Returns everything the target sent, the ending last. Heartbeats do not
/// extend the hang guard: after [`IO_GUARD`] in all, it panics.
pub fn until_end<P>(
    peer: &mut P,
    mut recv: impl FnMut(&mut P) -> Recv,
    mut on_msg: impl FnMut(&mut P, &Message),
) -> Vec<Recv> {
    let start = std::time::Instant::now();
    let mut seen = Vec::new();
    loop {
        if start.elapsed() > IO_GUARD {
            panic!("the target did not end the session within {IO_GUARD:?}; it sent: {seen:?}");
        }
        let r = recv(peer);
        let end = !matches!(
            r,
            Recv::Msg(
                Message::Want { .. }
                    | Message::Ack { .. }
                    | Message::Signature { .. }
                    | Message::Change { .. }
                    | Message::FileError { .. }
                    | Message::Heartbeat
                    | Message::Welcome { .. }
            )
        );
        if let Recv::Msg(m) = &r {
            on_msg(peer, m);
        }
        seen.push(r);
        if end {
            return seen;
        }
    }
}
