//! The joiner: `--join CODE` on push, pull and probe, run once before the command itself.

use std::path::PathBuf;

use ferry_net::pairing::wire::{Request, Response, MAX_NAME, MAX_RESPONSE};
use ferry_net::pairing::{digest, joiner_key, peers, proof, JoinCode, PairingError, PinnedCa};
use ferry_net::{Counted, NetError, TlsFailure, TlsPeer, WireCounter};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::client::connect::{tcp, tunnel, Route};
use crate::error::EngineError;
use crate::exit::ExitCode;

/// A pairing done: where its certificates are, and the new certificate's fingerprint.
#[derive(Debug)]
pub struct Joined {
    pub dir: PathBuf,
    pub fingerprint: String,
}

/// Pairs with the server of `route` using `code`, and stores the client certificate it
/// issues in `route.tls_dir`. Within `route.connect_timeout` as a whole.
pub async fn join(route: &Route, code: &JoinCode) -> Result<Joined, EngineError> {
    let server = format!("{}:{}", route.host, route.port);
    match tokio::time::timeout(route.connect_timeout, exchange(route, code, &server)).await {
        Ok(result) => result,
        Err(_) => Err(EngineError::new(
            ExitCode::ConnectTimeout,
            format!(
                "pairing with {server} did not finish within {:?}; check the network path and that `ferry serve --pair` runs there",
                route.connect_timeout
            ),
        )),
    }
}

async fn exchange(route: &Route, code: &JoinCode, server: &str) -> Result<Joined, EngineError> {
    let (public_key, key_pem) = joiner_key()?;
    let pinned = PinnedCa::new(*code.ca_sha256());
    let config = ferry_net::pairing::join_client_config(pinned.clone())?;
    let name = ferry_net::server_name(&route.server_name)?;
    let stream = tunnel(
        route,
        Counted::new(tcp(route).await?, WireCounter::default()),
    )
    .await?;
    let mut tls = match ferry_net::tls_connect(config, name, stream).await {
        Ok(tls) => tls,
        Err(e) => return Err(handshake_failed(e, &pinned, code, server).into()),
    };
    let exporter = proof::exporter(tls.get_ref().1).map_err(|e| NetError::Setup {
        detail: format!("no TLS exporter: {e}"),
    })?;
    let host = own_name();
    let request = Request {
        proof: proof::proof(code.secret(), &exporter, &public_key, host.as_bytes()),
        public_key,
        name: host,
    };
    let peer = TlsPeer::Server(route.server_name.clone());
    let io = |e| EngineError::from(ferry_net::stream_error(peer.clone(), e));
    tls.write_all(&request.encode()).await.map_err(io)?;
    tls.flush().await.map_err(io)?;
    let mut buf = Vec::new();
    let response = loop {
        match Response::decode(&buf) {
            Ok(Some((response, _))) => break response,
            Ok(None) => {}
            Err(e) => return Err(malformed(server, e.to_string())),
        }
        let mut chunk = [0u8; 4096];
        let n = tls.read(&mut chunk).await.map_err(io)?;
        if n == 0 {
            return Err(malformed(
                server,
                "it closed the connection before answering".to_owned(),
            ));
        }
        if buf.len() + n > MAX_RESPONSE {
            return Err(malformed(
                server,
                format!("its answer is over {MAX_RESPONSE} bytes"),
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let _ = tls.shutdown().await;
    let (cert_der, ca_der) = match response {
        Response::Granted { cert_der, ca_der } => (cert_der, ca_der),
        Response::Refused { reason, message } => {
            return Err(NetError::from(PairingError::Refused {
                server: server.to_owned(),
                reason,
                message: ferry_proto::escape(message.as_bytes()).to_string(),
            })
            .into())
        }
    };
    if digest::sha256(&ca_der) != *code.ca_sha256() {
        return Err(malformed(
            server,
            "the CA certificate it sent is not the pinned one".to_owned(),
        ));
    }
    peers::store(&route.tls_dir, &cert_der, &key_pem, &ca_der)?;
    // What was stored must work as a TLS directory before anyone relies on it.
    ferry_net::client_config(&ferry_net::TlsDir::new(&route.tls_dir))?;
    Ok(Joined {
        dir: route.tls_dir.clone(),
        fingerprint: format!("sha256:{}", digest::hex(&digest::sha256(&cert_der))),
    })
}

/// Names the two refusals a joiner meets at the handshake: a chain that does not end at
/// the pin, and a server with no pairing window open.
fn handshake_failed(e: NetError, pinned: &PinnedCa, code: &JoinCode, server: &str) -> NetError {
    if let Some(shown) = pinned.mismatch() {
        return PairingError::WrongCa {
            expected: digest::hex(code.ca_sha256()),
            shown,
        }
        .into();
    }
    match e {
        NetError::Tls {
            failure: TlsFailure::Alpn { .. },
            ..
        } => PairingError::NotPairing {
            server: server.to_owned(),
        }
        .into(),
        e => e,
    }
}

fn malformed(server: &str, detail: String) -> EngineError {
    NetError::from(PairingError::Malformed {
        server: server.to_owned(),
        detail,
    })
    .into()
}

/// This host's name as the server logs it and puts it in the certificate: the kernel's
/// host name, kept to the characters the exchange allows.
fn own_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    host.trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        .take(MAX_NAME)
        .collect()
}
