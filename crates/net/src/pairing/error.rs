//! What can go wrong while pairing, worded for the person at either host.

use std::path::PathBuf;

use super::wire::Reason;

/// A failed pairing; part of [`crate::NetError`] as `NetError::Pairing`.
#[derive(Debug, thiserror::Error)]
pub enum PairingError {
    #[error(
        "the server's certificate chain does not end at the CA the join code pins (sha256:{expected}; \
         the server showed {}): this is not the server that printed the code, or something on \
         the way intercepts TLS. Nothing was sent. Check the address and that the code comes \
         from this server",
        if shown.is_empty() { "no CA certificate".to_owned() } else { shown.join(", ") }
    )]
    WrongCa {
        expected: String,
        shown: Vec<String>,
    },
    #[error(
        "{server} is not pairing now: its join code was already used, has expired, or was \
         closed after failed attempts (or it was started without --pair). Run `ferry serve \
         --pair` there again and use the new code"
    )]
    NotPairing { server: String },
    #[error("{server} refused the enrollment ({reason:?}): {message}")]
    Refused {
        server: String,
        reason: Reason,
        message: String,
    },
    #[error("{server} answered the enrollment with something else: {detail}; check that it runs the same ferry version")]
    Malformed { server: String, detail: String },
    #[error("cannot store the peer's certificates in {}: {source}; check that it is writable (it is under $XDG_CONFIG_HOME or ~/.config)", path.display())]
    Store {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("revoked fingerprints file {}: {detail}; one SHA-256 fingerprint (64 hex digits) per line, '#' starts a comment", path.display())]
    RevokedFile { path: PathBuf, detail: String },
}

impl PairingError {
    pub fn class(&self) -> crate::NetErrorClass {
        use crate::NetErrorClass;
        match self {
            PairingError::WrongCa { .. }
            | PairingError::NotPairing { .. }
            | PairingError::Refused { .. }
            | PairingError::Malformed { .. } => NetErrorClass::Tls,
            PairingError::Store { .. } | PairingError::RevokedFile { .. } => NetErrorClass::Config,
        }
    }
}
