//! `ferry certs`: a fresh CA per run, one server and one client certificate signed by it,
//! written as two Kubernetes-TLS-secret-shaped directories.
//!
//! The CA key is never written: nobody can issue more certificates for this pair later, so
//! a leaked directory compromises only this pair, and the cure is another run.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

use crate::error::NetError;
use crate::tls::{server_name, CA_FILE, CERT_FILE, KEY_FILE};

/// Covers clock skew between the machine that ran `ferry certs` and the pods.
pub(crate) const BACKDATE: Duration = Duration::from_secs(60 * 60);
const LIFETIME: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// Creates a fresh CA and writes `out/server/{tls.crt,tls.key,ca.crt}` and
/// `out/client/{tls.crt,tls.key,ca.crt}`.
///
/// The server certificate names every entry of `server_names` (an IP address becomes an IP
/// SAN, anything else a DNS SAN) and has CN = the first name; the client certificate has CN
/// `ferry-client`. Keys are ECDSA P-256, valid from an hour ago to a year ahead, written
/// with mode 0600. Refuses to overwrite an existing `tls.key`.
/// What every leaf certificate Ferry issues is: one name, one purpose (`eku`: server or
/// client, never both), a signature key only, naming its issuer's key. Validity and
/// serial are the caller's.
pub(crate) fn leaf_profile(
    cn: &str,
    sans: Vec<SanType>,
    eku: ExtendedKeyUsagePurpose,
) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.subject_alt_names = sans;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![eku];
    params.use_authority_key_identifier_extension = true;
    params
}

pub fn generate(out: &Path, server_names: &[String]) -> Result<(), NetError> {
    let sans = parse_names(server_names)?;
    let server_dir = out.join("server");
    let client_dir = out.join("client");
    // Check both before writing either, so a refusal leaves nothing half-written.
    for dir in [&server_dir, &client_dir] {
        let key = dir.join(KEY_FILE);
        if key.symlink_metadata().is_ok() {
            return Err(NetError::WouldOverwrite { path: key });
        }
    }

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let ca_key = new_key("CA key")?;
    let mut ca_params = CertificateParams::default();
    ca_params.distinguished_name = rcgen::DistinguishedName::new();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, format!("ferry CA {}", random_hex()?));
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    set_validity(&mut ca_params, now);
    let ca_cert = ca_params
        .self_signed(&ca_key)
        .map_err(|source| NetError::Generate {
            what: "CA certificate",
            source,
        })?;
    let issuer = Issuer::new(ca_params, ca_key);

    let leaf = |cn: &str, sans: Vec<SanType>, eku, what| {
        let key = new_key(what)?;
        let mut params = leaf_profile(cn, sans, eku);
        set_validity(&mut params, now);
        let cert = params
            .signed_by(&key, &issuer)
            .map_err(|source| NetError::Generate { what, source })?;
        Ok::<_, NetError>((cert.pem(), key.serialize_pem()))
    };
    let server = leaf(
        &server_names[0],
        sans,
        ExtendedKeyUsagePurpose::ServerAuth,
        "server certificate",
    )?;
    let client = leaf(
        "ferry-client",
        Vec::new(),
        ExtendedKeyUsagePurpose::ClientAuth,
        "client certificate",
    )?;

    let ca_pem = ca_cert.pem();
    write_dir(&server_dir, &server.0, &server.1, &ca_pem)?;
    write_dir(&client_dir, &client.0, &client.1, &ca_pem)?;
    tracing::debug!(out = %out.display(), names = ?server_names, "wrote certificates");
    Ok(())
}

/// Validates every name the same way the client will when it verifies the server.
pub(crate) fn parse_names(names: &[String]) -> Result<Vec<SanType>, NetError> {
    if names.is_empty() {
        return Err(NetError::NoServerNames);
    }
    names
        .iter()
        .map(|name| {
            server_name(name)?;
            Ok(match name.parse::<IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => {
                    SanType::DnsName(name.as_str().try_into().map_err(|e: rcgen::Error| {
                        NetError::InvalidName {
                            name: name.clone(),
                            reason: e.to_string(),
                        }
                    })?)
                }
            })
        })
        .collect()
}

pub(crate) fn new_key(what: &'static str) -> Result<KeyPair, NetError> {
    KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|source| NetError::Generate { what, source })
}

/// Sets the validity window around `now` (time since the Unix epoch). `rcgen` wants `time`
/// values; counting from its epoch date spares this crate a dependency on `time`.
pub(crate) fn set_validity(params: &mut CertificateParams, now: Duration) {
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    params.not_before = epoch + now.saturating_sub(BACKDATE);
    params.not_after = epoch + now + LIFETIME;
}

/// A random tag so that CAs from different runs have different names, which makes an
/// "unknown issuer" error easy to recognise in `openssl x509` output.
fn random_hex() -> Result<String, NetError> {
    let mut bytes = [0u8; 6];
    rustls::crypto::aws_lc_rs::default_provider()
        .secure_random
        .fill(&mut bytes)
        .map_err(|_| NetError::Setup {
            detail: "the system random number generator failed".to_owned(),
        })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn write_dir(dir: &Path, cert: &str, key: &str, ca: &str) -> Result<(), NetError> {
    fs::create_dir_all(dir).map_err(|source| NetError::Write {
        path: dir.to_owned(),
        source,
    })?;
    // The key first, with create_new: if someone raced us to it, we stop before anything
    // else in the directory changes.
    write_file(&dir.join(KEY_FILE), key, true)?;
    write_file(&dir.join(CERT_FILE), cert, false)?;
    write_file(&dir.join(CA_FILE), ca, false)
}

pub(crate) fn write_file(path: &Path, contents: &str, secret: bool) -> Result<(), NetError> {
    let mut options = OpenOptions::new();
    options.write(true);
    if secret {
        options.create_new(true).mode(0o600);
    } else {
        options.create(true).truncate(true).mode(0o644);
    }
    let result = options
        .open(path)
        .and_then(|mut file| file.write_all(contents.as_bytes()));
    result.map_err(|source| match source.kind() {
        std::io::ErrorKind::AlreadyExists => NetError::WouldOverwrite {
            path: path.to_owned(),
        },
        _ => NetError::Write {
            path: path.to_owned(),
            source,
        },
    })
}
