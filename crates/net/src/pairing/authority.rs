//! A server's own CA: made once, kept in the state directory, and used to sign the
//! server's certificate and every joiner's client certificate.
//!
//! Unlike `ferry certs`, this CA key is kept (mode 0600): pairing needs it to issue a
//! certificate to each new peer. The CA's name is derived from its key, so loading it back
//! needs only the key file: its certificate's subject and key identifier come out the same.
//!
//! Must not import sockets or the engine.

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PublicKeyData, SanType, SerialNumber, SignatureAlgorithm,
};

use super::digest::{random, sha256};
use crate::certs::{leaf_profile, new_key, parse_names, BACKDATE};
use crate::error::NetError;

/// How long the CA is valid: pairings outlive many server restarts.
const CA_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 60 * 60);
/// How long a server or client certificate is valid. A client re-pairs after that.
pub const LEAF_LIFETIME: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// The CA: its key and its certificate.
pub struct Authority {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
    cert_der: Vec<u8>,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority").finish_non_exhaustive()
    }
}

/// A joiner's public key as sent in an enrollment request: an uncompressed P-256 point,
/// checked to lie on the curve.
pub struct JoinerKey(Vec<u8>);

impl JoinerKey {
    pub fn parse(point: &[u8]) -> Option<JoinerKey> {
        aws_lc_rs::signature::ParsedPublicKey::new(
            &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1,
            point,
        )
        .ok()?;
        Some(JoinerKey(point.to_vec()))
    }
}

impl PublicKeyData for JoinerKey {
    fn der_bytes(&self) -> &[u8] {
        &self.0
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

/// A joiner's new key: its public point (as sent in the request) and its PEM (stored as
/// `tls.key`).
pub fn joiner_key() -> Result<(Vec<u8>, String), NetError> {
    let key = new_key("client key")?;
    Ok((key.public_key_raw().to_vec(), key.serialize_pem()))
}

impl Authority {
    /// A new CA with a fresh key. Returns it and its key in PEM, for the caller to store
    /// with [`Authority::cert_pem`].
    pub fn create() -> Result<(Authority, String), NetError> {
        let key = new_key("CA key")?;
        let key_pem = key.serialize_pem();
        let params = ca_params(&key);
        let cert = params
            .self_signed(&key)
            .map_err(|source| NetError::Generate {
                what: "CA certificate",
                source,
            })?;
        let authority = Authority {
            issuer: Issuer::new(params, key),
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
        };
        Ok((authority, key_pem))
    }

    /// The CA stored as `key_pem` and `cert_pem` (what [`Authority::create`] made). The
    /// certificate is kept as stored (a signature is randomised: signing again would
    /// change its fingerprint); issuing needs only the name, derived from the key.
    pub fn load(
        key_pem: &str,
        cert_pem: &str,
        cert_path: &std::path::Path,
    ) -> Result<Authority, NetError> {
        use rustls::pki_types::pem::PemObject;
        let key = KeyPair::from_pem(key_pem).map_err(|source| NetError::Generate {
            what: "CA key (from the state directory)",
            source,
        })?;
        let cert_der = rustls::pki_types::CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .map_err(|e| NetError::Pem {
                path: cert_path.to_owned(),
                what: "CA certificate",
                detail: e.to_string(),
            })?
            .to_vec();
        Ok(Authority {
            issuer: Issuer::new(ca_params(&key), key),
            cert_pem: cert_pem.to_owned(),
            cert_der,
        })
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// SHA-256 of the CA certificate: what a join code pins.
    pub fn fingerprint(&self) -> [u8; 32] {
        sha256(&self.cert_der)
    }

    /// A server certificate for `names` with a fresh key: (certificate PEM, key PEM).
    pub fn issue_server(&self, names: &[String]) -> Result<(String, String), NetError> {
        let sans: Vec<SanType> = parse_names(names)?;
        let key = new_key("server key")?;
        let params = leaf_params(&names[0], sans, ExtendedKeyUsagePurpose::ServerAuth)?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|source| NetError::Generate {
                what: "server certificate",
                source,
            })?;
        Ok((cert.pem(), key.serialize_pem()))
    }

    /// A client certificate for a joiner's key; `name` (checked by the wire format) goes
    /// into its common name. Returns its DER.
    pub fn issue_client(&self, key: &JoinerKey, name: &str) -> Result<Vec<u8>, NetError> {
        let cn = if name.is_empty() {
            "ferry-client".to_owned()
        } else {
            format!("ferry-client {name}")
        };
        let params = leaf_params(&cn, Vec::new(), ExtendedKeyUsagePurpose::ClientAuth)?;
        let cert = params
            .signed_by(key, &self.issuer)
            .map_err(|source| NetError::Generate {
                what: "client certificate",
                source,
            })?;
        Ok(cert.der().to_vec())
    }
}

/// The CA's parameters, all derived from its key.
fn ca_params(key: &KeyPair) -> CertificateParams {
    let tag = super::digest::hex(&sha256(key.public_key_raw())[..6]);
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, format!("ferry CA {tag}"));
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    params.not_before = epoch + now.saturating_sub(BACKDATE);
    params.not_after = epoch + now + CA_LIFETIME;
    params.serial_number = Some(SerialNumber::from_slice(
        &sha256(key.public_key_raw())[..16],
    ));
    params
}

fn leaf_params(
    cn: &str,
    sans: Vec<SanType>,
    eku: ExtendedKeyUsagePurpose,
) -> Result<CertificateParams, NetError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let mut params = leaf_profile(cn, sans, eku);
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    params.not_before = epoch + now.saturating_sub(BACKDATE);
    params.not_after = epoch + now + LEAF_LIFETIME;
    let mut serial = [0u8; 16];
    random(&mut serial)?;
    serial[0] &= 0x7f;
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    Ok(params)
}

/// The names a server certificate gets when none are given: this host's name,
/// `localhost`, the loopback addresses, and the addresses this host would use to reach
/// the outside (found by routing a UDP socket; nothing is sent).
pub fn default_server_names() -> Vec<String> {
    let mut names = Vec::new();
    if let Ok(host) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        let host = host.trim();
        if !host.is_empty() && crate::tls::server_name(host).is_ok() {
            names.push(host.to_owned());
        }
    }
    names.push("localhost".to_owned());
    let mut addrs: Vec<IpAddr> = vec![[127, 0, 0, 1].into(), std::net::Ipv6Addr::LOCALHOST.into()];
    for (bind, probe) in [("0.0.0.0:0", "192.0.2.1:9"), ("[::]:0", "[2001:db8::1]:9")] {
        let routed = std::net::UdpSocket::bind(bind)
            .and_then(|socket| socket.connect(probe).map(|()| socket))
            .and_then(|socket| socket.local_addr());
        if let Ok(addr) = routed {
            if !addr.ip().is_unspecified() && !addrs.contains(&addr.ip()) {
                addrs.push(addr.ip());
            }
        }
    }
    names.extend(addrs.iter().map(IpAddr::to_string));
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loaded_ca_is_the_one_that_was_stored() {
        let (ca, key_pem) = Authority::create().unwrap();
        let again = Authority::load(&key_pem, ca.cert_pem(), "ca.crt".as_ref()).unwrap();
        assert_eq!(ca.cert_der(), again.cert_der());
        assert_eq!(ca.fingerprint(), again.fingerprint());
        // What the loaded CA issues chains to the stored certificate.
        let server = again.issue_server(&["a.example".to_owned()]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("tls.crt"), &server.0).unwrap();
        std::fs::write(dir.path().join("tls.key"), &server.1).unwrap();
        std::fs::write(dir.path().join("ca.crt"), ca.cert_pem()).unwrap();
        let tls = crate::TlsDir::new(dir.path());
        assert!(crate::server_config(&tls).is_ok());
    }

    #[test]
    fn only_points_on_the_curve_are_certified() {
        let key = new_key("test").unwrap();
        assert!(JoinerKey::parse(key.public_key_raw()).is_some());
        let mut off_curve = key.public_key_raw().to_vec();
        off_curve[64] ^= 1;
        assert!(JoinerKey::parse(&off_curve).is_none());
        assert!(JoinerKey::parse(&[4; 65]).is_none());
    }

    #[test]
    fn default_names_are_valid_server_names() {
        let names = default_server_names();
        assert!(names.iter().any(|n| n == "127.0.0.1"), "{names:?}");
        assert!(parse_names(&names).is_ok(), "{names:?}");
    }
}
