//! The joiner's side of the enrollment handshake: a TLS client that accepts the server
//! only if its chain ends at the CA the join code pins, and presents no certificate.
//!
//! The server sends its certificate followed by its CA certificate. The verifier finds
//! the CA whose SHA-256 is the pin among them, then verifies the server certificate
//! against that CA alone exactly as a normal session would (signature, validity, server
//! name, purpose). Any other chain fails the handshake, so a server that is not the one
//! that printed the code (a man in the middle with its own valid-looking certificate)
//! never sees the proof.
//!
//! Must not import the engine or the filesystem.

use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

use super::digest::{hex, sha256};
use super::ENROLL_ALPN;
use crate::error::NetError;

/// Verifies a server against the pinned CA; remembers what it saw on a mismatch, so that
/// the joiner can say which CA the server showed.
#[derive(Debug)]
pub struct PinnedCa {
    pin: [u8; 32],
    provider: Arc<CryptoProvider>,
    /// SHA-256 of the certificates the server sent besides its own, on a mismatch.
    mismatch: Mutex<Option<Vec<String>>>,
}

impl PinnedCa {
    pub fn new(pin: [u8; 32]) -> Arc<PinnedCa> {
        Arc::new(PinnedCa {
            pin,
            provider: Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
            mismatch: Mutex::new(None),
        })
    }

    /// The fingerprints the server showed instead of the pinned CA, if it did.
    pub fn mismatch(&self) -> Option<Vec<String>> {
        self.mismatch.lock().expect("pin lock").clone()
    }
}

/// The joiner's client configuration: TLS 1.3, ALPN `ferry-enroll/1`, no client
/// certificate, and the server verified by `pinned`.
pub fn join_client_config(pinned: Arc<PinnedCa>) -> Result<Arc<ClientConfig>, NetError> {
    let setup = |e: rustls::Error| NetError::Setup {
        detail: e.to_string(),
    };
    let mut config = ClientConfig::builder_with_provider(pinned.provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(setup)?
        .dangerous()
        .with_custom_certificate_verifier(pinned)
        .with_no_client_auth();
    config.alpn_protocols = vec![ENROLL_ALPN.to_vec()];
    Ok(Arc::new(config))
}

impl ServerCertVerifier for PinnedCa {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(ca) = intermediates.iter().find(|c| sha256(c) == self.pin) else {
            *self.mismatch.lock().expect("pin lock") = Some(
                intermediates
                    .iter()
                    .map(|c| format!("sha256:{}", hex(&sha256(c))))
                    .collect(),
            );
            return Err(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer,
            ));
        };
        let mut roots = RootCertStore::empty();
        roots.add(ca.clone().into_owned())?;
        let webpki =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
                .build()
                .map_err(|e| rustls::Error::General(e.to_string()))?;
        webpki.verify_server_cert(end_entity, &[], server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
