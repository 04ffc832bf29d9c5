//! Which certificates the mutual TLS accepts, beyond what `ferry certs` makes: certificates
//! from a CA built here (rcgen), with a validity window or extended key usage that `ferry
//! certs` never writes.
//!
//! * A certificate whose validity starts tomorrow is reported as not yet valid, with a
//!   word about the clocks, by the side that checks it; the side that presented it hears
//!   alert `certificate_expired` (TLS's one alert for both ends of the window) and is told
//!   it may be the clocks, not that its certificate expired.
//! * A client certificate without an extended key usage is accepted (RFC 5280: absence
//!   means any use, as in the WebPKI); one whose extended key usage lists only serverAuth
//!   is refused as a client.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ferry_net::{
    client_config, server_config, server_name, Counted, NetError, NetErrorClass, TlsDir,
    TlsFailure, WireCounter,
};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsAcceptor;

const PATIENCE: Duration = Duration::from_secs(30);
const DAY: Duration = Duration::from_secs(24 * 3600);

/// What a leaf certificate looks like.
struct Leaf {
    /// Its validity starts this long from now (negative: in the past).
    starts_in: i64,
    eku: Vec<ExtendedKeyUsagePurpose>,
}

impl Leaf {
    fn valid(eku: ExtendedKeyUsagePurpose) -> Leaf {
        Leaf {
            starts_in: -3600,
            eku: vec![eku],
        }
    }
}

/// A CA, and a server/ and a client/ directory (`tls.crt`, `tls.key`, `ca.crt`) holding
/// leaves it signed as described.
fn pki(server: Leaf, client: Leaf) -> TempDir {
    let out = tempfile::tempdir().unwrap();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::default();
    ca.distinguished_name.push(DnType::CommonName, "test CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.not_before = epoch + (now - DAY);
    ca.not_after = epoch + (now + 30 * DAY);
    let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(ca, ca_key);
    for (side, leaf, sans) in [
        (
            "server",
            server,
            vec![SanType::DnsName("localhost".try_into().unwrap())],
        ),
        ("client", client, Vec::new()),
    ] {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, side);
        params.subject_alt_names = sans;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = leaf.eku;
        let start = now.as_secs() as i64 + leaf.starts_in;
        params.not_before = epoch + Duration::from_secs(start as u64);
        params.not_after = epoch + (now + 10 * DAY);
        let cert = params.signed_by(&key, &issuer).unwrap();
        let dir = out.path().join(side);
        std::fs::create_dir(&dir).unwrap();
        write(&dir, "tls.crt", &cert.pem());
        write(&dir, "tls.key", &key.serialize_pem());
        write(&dir, "ca.crt", &ca_pem);
    }
    out
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

/// One handshake between the server/ and client/ halves of `pki`; the client reads once
/// after it, so a refusal the server sends after the client's Finished (TLS 1.3) is heard.
async fn handshake(pki: &TempDir) -> (Result<(), NetError>, Result<(), NetError>) {
    let server_dir = TlsDir::new(&pki.path().join("server"));
    let acceptor = TlsAcceptor::from(server_config(&server_dir).unwrap());
    let listener = ferry_net::listen("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut tls = ferry_net::tls_accept(&acceptor, stream).await?;
        // A clean close (close_notify), so the client's read below ends without an error.
        let _ = tls.shutdown().await;
        Ok(())
    });
    let client_dir = TlsDir::new(&pki.path().join("client"));
    let stream = ferry_net::connect("127.0.0.1", port, PATIENCE)
        .await
        .unwrap();
    let client = match ferry_net::tls_connect(
        client_config(&client_dir).unwrap(),
        server_name("localhost").unwrap(),
        Counted::new(stream, WireCounter::default()),
    )
    .await
    {
        Ok(mut tls) => match tls.read(&mut [0u8; 16]).await {
            Err(e) => Err(ferry_net::stream_error(
                ferry_net::TlsPeer::Server("localhost".into()),
                e,
            )),
            Ok(_) => Ok(()),
        },
        Err(e) => Err(e),
    };
    let server = tokio::time::timeout(PATIENCE, server)
        .await
        .expect("the server's handshake ended")
        .unwrap();
    (client, server)
}

fn failure(error: &NetError) -> &TlsFailure {
    match error {
        NetError::Tls { failure, .. } => failure,
        other => panic!("expected a TLS failure, got {other:?}"),
    }
}

/// What the side that presented a certificate dated tomorrow hears: not "expired".
fn assert_refused_as_out_of_date(error: &NetError) {
    assert_eq!(error.class(), NetErrorClass::Tls, "{error}");
    assert_eq!(failure(error), &TlsFailure::RefusedAsOutOfDate, "{error:?}");
    let text = error.to_string();
    assert!(text.contains("not yet valid"), "{text}");
    assert!(text.contains("clocks of both hosts"), "{text}");
}

#[tokio::test]
async fn a_server_certificate_valid_from_tomorrow_is_not_yet_valid_not_expired() {
    let pki = pki(
        Leaf {
            starts_in: DAY.as_secs() as i64,
            eku: vec![ExtendedKeyUsagePurpose::ServerAuth],
        },
        Leaf::valid(ExtendedKeyUsagePurpose::ClientAuth),
    );
    let (client, server) = handshake(&pki).await;
    let error = client.unwrap_err();
    assert_eq!(error.class(), NetErrorClass::Tls);
    assert!(
        matches!(failure(&error), TlsFailure::NotYetValid { .. }),
        "{error:?}"
    );
    let text = error.to_string();
    assert!(text.contains("not yet valid"), "{text}");
    assert!(text.contains("clocks of both hosts"), "{text}");
    assert!(!text.contains("expired"), "{text}");
    assert_refused_as_out_of_date(&server.unwrap_err());
}

#[tokio::test]
async fn a_client_certificate_valid_from_tomorrow_is_not_yet_valid_not_expired() {
    let pki = pki(
        Leaf::valid(ExtendedKeyUsagePurpose::ServerAuth),
        Leaf {
            starts_in: DAY.as_secs() as i64,
            eku: vec![ExtendedKeyUsagePurpose::ClientAuth],
        },
    );
    let (client, server) = handshake(&pki).await;
    let error = server.unwrap_err();
    assert!(
        matches!(failure(&error), TlsFailure::NotYetValid { .. }),
        "{error:?}"
    );
    assert!(!error.to_string().contains("expired"), "{error}");
    assert_refused_as_out_of_date(&client.unwrap_err());
}

#[tokio::test]
async fn a_client_certificate_without_extended_key_usage_is_accepted() {
    let pki = pki(
        Leaf::valid(ExtendedKeyUsagePurpose::ServerAuth),
        Leaf {
            starts_in: -3600,
            eku: Vec::new(),
        },
    );
    let (client, server) = handshake(&pki).await;
    server.unwrap();
    client.unwrap();
}

#[tokio::test]
async fn a_client_certificate_for_server_auth_only_is_refused() {
    let pki = pki(
        Leaf::valid(ExtendedKeyUsagePurpose::ServerAuth),
        Leaf::valid(ExtendedKeyUsagePurpose::ServerAuth),
    );
    let (client, server) = handshake(&pki).await;
    let error = server.unwrap_err();
    assert!(
        matches!(failure(&error), TlsFailure::WrongPurpose { .. }),
        "{error:?}"
    );
    assert!(client.is_err(), "the client was not told it was refused");
}

/// The control: the same PKI with both leaves valid now and made for their use works, so
/// the refusals above are about the one thing each case changes.
#[tokio::test]
async fn the_test_pki_works_when_nothing_is_wrong() {
    let pki = pki(
        Leaf::valid(ExtendedKeyUsagePurpose::ServerAuth),
        Leaf::valid(ExtendedKeyUsagePurpose::ClientAuth),
    );
    let (client, server) = handshake(&pki).await;
    server.unwrap();
    client.unwrap();
}
