//! Turns rustls errors into [`TlsFailure`]s a person can act on.
//!
//! rustls reports the cause precisely but in TLS terms ("UnknownIssuer", "alert
//! BadCertificate"); the admin reading a pod log needs to know which certificate to fix.

use std::io;

use rustls::{AlertDescription, CertificateError, Error};

use crate::error::TlsFailure;

/// The rustls error inside an I/O error from tokio-rustls, if there is one.
pub(crate) fn io_error(error: &io::Error) -> Option<&Error> {
    error.get_ref()?.downcast_ref::<Error>()
}

pub(crate) fn failure(error: &Error) -> TlsFailure {
    match error {
        Error::InvalidCertificate(cert) => certificate(cert),
        Error::NoCertificatesPresented => TlsFailure::NoClientCert,
        // TLS has one alert for both ends of the validity period: rustls sends it for a
        // certificate not yet valid too, so the message must not say "expired".
        Error::AlertReceived(AlertDescription::CertificateExpired) => {
            TlsFailure::RefusedAsOutOfDate
        }
        Error::AlertReceived(AlertDescription::CertificateRevoked) => TlsFailure::Revoked,
        Error::AlertReceived(alert) if refuses_certificate(*alert) => TlsFailure::RefusedByPeer {
            alert: alert_name(*alert),
        },
        Error::NoApplicationProtocol
        | Error::AlertReceived(AlertDescription::NoApplicationProtocol) => TlsFailure::Alpn {
            got: "no common protocol".to_owned(),
        },
        other => TlsFailure::Other {
            detail: other.to_string(),
        },
    }
}

fn certificate(error: &CertificateError) -> TlsFailure {
    match error {
        CertificateError::NotValidForName => TlsFailure::NameMismatch {
            expected: "the requested name".to_owned(),
            presented: Vec::new(),
        },
        CertificateError::NotValidForNameContext {
            expected,
            presented,
        } => TlsFailure::NameMismatch {
            expected: expected.to_str().into_owned(),
            presented: presented.iter().map(|name| plain_name(name)).collect(),
        },
        // A CA from another run has another name, so webpki finds no issuer; BadSignature
        // covers a CA with the same name but another key.
        CertificateError::UnknownIssuer | CertificateError::BadSignature => TlsFailure::UnknownCa,
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            TlsFailure::Expired {
                detail: error.to_string(),
            }
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            TlsFailure::NotYetValid {
                detail: error.to_string(),
            }
        }
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            TlsFailure::WrongPurpose {
                detail: error.to_string(),
            }
        }
        other => TlsFailure::Other {
            detail: format!("the peer's certificate is invalid: {other}"),
        },
    }
}

/// rustls presents certificate names in their `Debug` form (`DnsName("a.b")`,
/// `IpAddress(10.0.0.1)`); a person wants `a.b` and `10.0.0.1`.
fn plain_name(name: &str) -> String {
    let inner = name
        .split_once('(')
        .and_then(|(_, rest)| rest.strip_suffix(')'))
        .unwrap_or(name);
    inner.trim_matches('"').to_owned()
}

/// Alerts a peer sends when it does not accept the certificate we presented (or the lack
/// of one).
fn refuses_certificate(alert: AlertDescription) -> bool {
    matches!(
        alert,
        AlertDescription::BadCertificate
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::CertificateRevoked
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateUnknown
            | AlertDescription::UnknownCA
            | AlertDescription::AccessDenied
            | AlertDescription::CertificateRequired
            | AlertDescription::NoCertificate
    )
}

/// `BadCertificate` -> `bad_certificate`, the spelling of the TLS RFCs and of openssl.
fn alert_name(alert: AlertDescription) -> String {
    let debug = format!("{alert:?}");
    let mut name = String::with_capacity(debug.len() + 4);
    let mut previous_lower = false;
    for c in debug.chars() {
        if c.is_ascii_uppercase() && previous_lower {
            name.push('_');
        }
        previous_lower = c.is_ascii_lowercase();
        name.push(c.to_ascii_lowercase());
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_names_follow_the_rfc_spelling() {
        assert_eq!(
            alert_name(AlertDescription::BadCertificate),
            "bad_certificate"
        );
        assert_eq!(alert_name(AlertDescription::UnknownCA), "unknown_ca");
        assert_eq!(
            alert_name(AlertDescription::CertificateRequired),
            "certificate_required"
        );
    }

    #[test]
    fn presented_names_lose_their_debug_wrapping() {
        assert_eq!(plain_name("DnsName(\"a.example\")"), "a.example");
        assert_eq!(plain_name("IpAddress(127.0.0.1)"), "127.0.0.1");
        assert_eq!(plain_name("plain"), "plain");
    }

    #[test]
    fn io_errors_without_rustls_inside_are_not_tls_failures() {
        let plain = io::Error::new(io::ErrorKind::ConnectionReset, "reset");
        assert!(io_error(&plain).is_none());
        let wrapped = io::Error::new(io::ErrorKind::InvalidData, Error::NoCertificatesPresented);
        assert_eq!(
            io_error(&wrapped).map(failure),
            Some(TlsFailure::NoClientCert)
        );
    }
}
