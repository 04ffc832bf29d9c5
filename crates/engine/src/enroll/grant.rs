//! The server's side: one enrollment on a connection the gate let through without a
//! client certificate (`serve --pair`, window open).
//!
//! The connection still holds its pre-authentication slot (the caller keeps it, so a
//! flood of enrollment attempts evicts itself like any other unauthenticated flood), may
//! send at most one request of at most `MAX_REQUEST` bytes, and has [`ENROLL_TIMEOUT`]
//! for it. Whatever happens, it is answered at most once and closed.

use std::fs::File;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferry_net::pairing::state::log_line;
use ferry_net::pairing::wire::{Reason, Request, Response, MAX_REQUEST};
use ferry_net::pairing::{
    digest, proof, Authority, Closed, JoinerKey, PairingWindow, Verdict, MAX_FAILED_PROOFS,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_rustls::server::TlsStream;

/// How long a joiner has from the end of TLS to a whole request.
const ENROLL_TIMEOUT: Duration = Duration::from_secs(10);

/// What a pairing server holds: the window, the CA that issues, and the enrollment log.
pub struct Pairing {
    pub window: Arc<PairingWindow>,
    pub authority: Authority,
    /// `STATE/enrolled`, opened before privileges were dropped; `None` if it could not be.
    pub log: Option<Mutex<File>>,
}

impl std::fmt::Debug for Pairing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pairing")
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

/// Runs one enrollment; logs what happened (never the code).
pub async fn grant<S: AsyncRead + AsyncWrite + Unpin>(
    pairing: &Pairing,
    mut tls: TlsStream<S>,
    peer: SocketAddr,
) {
    let answer = match tokio::time::timeout(ENROLL_TIMEOUT, decide(pairing, &mut tls, peer)).await {
        Ok(Some(answer)) => answer,
        Ok(None) => return,
        Err(_) => {
            tracing::warn!(
                "enrollment from {peer}: no whole request within {} s; closed",
                ENROLL_TIMEOUT.as_secs()
            );
            return;
        }
    };
    let _ = tokio::time::timeout(ENROLL_TIMEOUT, async {
        tls.write_all(&answer.encode()).await?;
        tls.shutdown().await
    })
    .await;
}

/// Reads the request and decides the answer; `None` when there is no one to answer.
async fn decide<S: AsyncRead + AsyncWrite + Unpin>(
    pairing: &Pairing,
    tls: &mut TlsStream<S>,
    peer: SocketAddr,
) -> Option<Response> {
    let refuse = |reason, message: String| Response::Refused { reason, message };
    let Ok(exporter) = proof::exporter(tls.get_ref().1) else {
        tracing::error!("enrollment from {peer}: no TLS exporter value; this is a bug");
        return Some(refuse(
            Reason::Internal,
            "the server has no TLS exporter".to_owned(),
        ));
    };
    let mut buf = Vec::with_capacity(MAX_REQUEST);
    let request = loop {
        match Request::decode(&buf) {
            Ok(Some((request, _))) => break request,
            Ok(None) => {}
            Err(e) => {
                tracing::warn!("enrollment from {peer} refused: malformed request: {e}");
                return Some(refuse(Reason::Malformed, format!("malformed request: {e}")));
            }
        }
        // Never more than the longest request: the decoder has refused anything longer.
        let mut chunk = [0u8; MAX_REQUEST];
        let room = MAX_REQUEST - buf.len();
        match tls.read(&mut chunk[..room.max(1)]).await {
            Ok(0) | Err(_) => {
                tracing::warn!("enrollment from {peer}: closed before a whole request");
                return None;
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let Some(key) = JoinerKey::parse(&request.public_key) else {
        tracing::warn!("enrollment from {peer} refused: its public key is not a P-256 point");
        return Some(refuse(
            Reason::Malformed,
            "the public key is not a valid P-256 point".to_owned(),
        ));
    };
    let verdict = pairing.window.redeem(
        Instant::now(),
        &exporter,
        &request.public_key,
        request.name.as_bytes(),
        &request.proof,
    );
    match verdict {
        Verdict::Granted => {}
        Verdict::BadProof { failures, closed } => {
            tracing::warn!(
                name = %request.name,
                "enrollment from {peer} refused: the proof did not verify ({failures} of {MAX_FAILED_PROOFS} failed proofs allowed)"
            );
            if closed {
                tracing::warn!("pairing window closed: {MAX_FAILED_PROOFS} proofs failed; the code is void, start `ferry serve --pair` again for a new one");
            }
            return Some(refuse(
                Reason::BadProof,
                "the proof did not verify: the code is not this server's, or the proof was made on another connection".to_owned(),
            ));
        }
        Verdict::Closed(why) => {
            tracing::warn!("enrollment from {peer} refused: the pairing window closed ({why})");
            return Some(refuse(
                Reason::Closed,
                format!("the pairing window is closed ({why}); run `ferry serve --pair` again for a new code"),
            ));
        }
    }
    let cert = match pairing.authority.issue_client(&key, &request.name) {
        Ok(cert) => cert,
        Err(e) => {
            tracing::error!("enrollment from {peer}: cannot issue the certificate: {e}");
            return Some(refuse(
                Reason::Internal,
                "the server could not issue the certificate".to_owned(),
            ));
        }
    };
    let fingerprint = digest::sha256(&cert);
    tracing::info!(
        name = %request.name,
        fingerprint = %format!("sha256:{}", digest::hex(&fingerprint)),
        "enrolled a new peer from {peer}; the pairing window is closed (to forget it: --revoke with this fingerprint)"
    );
    if let Some(log) = &pairing.log {
        let line = log_line(&fingerprint, &request.name);
        if let Err(e) = log.lock().expect("log lock").write_all(line.as_bytes()) {
            tracing::warn!("cannot append to the enrollment log: {e}");
        }
    }
    Some(Response::Granted {
        cert_der: cert,
        ca_der: pairing.authority.cert_der().to_vec(),
    })
}

/// Logs the window's expiry when it comes (the gate refuses joiners from then on
/// whether or not this runs).
pub async fn watch_expiry(window: Arc<PairingWindow>) {
    let deadline = tokio::time::Instant::from_std(window.deadline());
    tokio::time::sleep_until(deadline).await;
    if window.closed(Instant::now()) == Some(Closed::Expired) {
        tracing::info!("pairing window closed: the join code expired; start `ferry serve --pair` again for a new code");
    }
}
