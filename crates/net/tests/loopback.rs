//! Real TCP and TLS over loopback, with certificates from `generate`.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ferry_net::{
    client_config, server_config, server_name, tcp, Counted, NetError, NetErrorClass, TlsDir,
    TlsFailure, TlsPeer, WireCounter,
};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

const PATIENCE: Duration = Duration::from_secs(30);

fn certs(names: &[&str]) -> TempDir {
    let out = tempfile::tempdir().unwrap();
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    ferry_net::generate(out.path(), &names).unwrap();
    out
}

fn dir(out: &TempDir, side: &str) -> TlsDir {
    TlsDir::new(&out.path().join(side))
}

type ServerSide = Result<tokio_rustls::server::TlsStream<TcpStream>, NetError>;
type ClientSide = Result<tokio_rustls::client::TlsStream<Counted<TcpStream>>, NetError>;

/// One connection: a server with `server` certs, a client with `client` config sending
/// `name` as SNI. The client's TCP stream is counted.
async fn handshake(
    server: &TlsDir,
    client: Arc<rustls::ClientConfig>,
    name: &str,
    counter: WireCounter,
) -> (ClientSide, tokio::task::JoinHandle<ServerSide>) {
    let acceptor = TlsAcceptor::from(server_config(server).unwrap());
    let listener = ferry_net::listen("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        ferry_net::tune(&stream).unwrap();
        ferry_net::tls_accept(&acceptor, stream).await
    });
    let stream = ferry_net::connect("127.0.0.1", port, PATIENCE)
        .await
        .unwrap();
    ferry_net::tune(&stream).unwrap();
    let client = ferry_net::tls_connect(
        client,
        server_name(name).unwrap(),
        Counted::new(stream, counter),
    )
    .await;
    (client, server)
}

fn failure(error: &NetError) -> &TlsFailure {
    match error {
        NetError::Tls { failure, .. } => failure,
        other => panic!("expected a TLS failure, got {other:?}"),
    }
}

#[tokio::test]
async fn mutual_tls_round_trips_bytes_and_negotiates_alpn() {
    let out = certs(&["localhost"]);
    let counter = WireCounter::default();
    let (client, server) = handshake(
        &dir(&out, "server"),
        client_config(&dir(&out, "client")).unwrap(),
        "localhost",
        counter.clone(),
    )
    .await;
    let mut client = client.unwrap();
    let mut server = server.await.unwrap().unwrap();
    assert_eq!(client.get_ref().1.alpn_protocol(), Some(ferry_net::ALPN));
    assert_eq!(
        server.get_ref().1.alpn_protocol(),
        Some(b"ferry/1".as_slice())
    );

    let payload: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
    let echo = tokio::spawn(async move {
        let mut got = vec![0u8; 100_000];
        server.read_exact(&mut got).await.unwrap();
        server.write_all(&got).await.unwrap();
        server.shutdown().await.unwrap();
    });
    client.write_all(&payload).await.unwrap();
    client.flush().await.unwrap();
    let mut back = Vec::new();
    client.read_to_end(&mut back).await.unwrap();
    echo.await.unwrap();
    assert_eq!(back, payload);
    // The wire carries the payload plus handshake and record overhead.
    assert!(counter.written() > 100_000, "{}", counter.written());
    assert!(counter.read() > 100_000, "{}", counter.read());
}

#[tokio::test]
async fn an_ip_san_verifies() {
    let out = certs(&["127.0.0.1"]);
    let (client, server) = handshake(
        &dir(&out, "server"),
        client_config(&dir(&out, "client")).unwrap(),
        "127.0.0.1",
        WireCounter::default(),
    )
    .await;
    client.unwrap();
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_client_from_another_ca_is_refused() {
    let ours = certs(&["localhost"]);
    let theirs = certs(&["localhost"]);
    let (client, server) = handshake(
        &dir(&ours, "server"),
        client_config(&dir(&theirs, "client")).unwrap(),
        "localhost",
        WireCounter::default(),
    )
    .await;
    let error = client.unwrap_err();
    assert_eq!(error.class(), NetErrorClass::Tls);
    assert_eq!(failure(&error), &TlsFailure::UnknownCa);
    assert!(error.to_string().contains("another CA"), "{error}");
    assert!(error.to_string().contains("\"localhost\""), "{error}");

    // The server hears why: the client refused its certificate.
    let error = server.await.unwrap().unwrap_err();
    assert_eq!(error.class(), NetErrorClass::Tls);
    assert!(
        matches!(failure(&error), TlsFailure::RefusedByPeer { alert } if alert == "unknown_ca"),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_server_name_outside_the_sans_is_refused_naming_it() {
    let out = certs(&["localhost", "127.0.0.1"]);
    let (client, _server) = handshake(
        &dir(&out, "server"),
        client_config(&dir(&out, "client")).unwrap(),
        "dvm-other.apps.example.com",
        WireCounter::default(),
    )
    .await;
    let error = client.unwrap_err();
    assert_eq!(error.class(), NetErrorClass::Tls);
    assert!(
        matches!(failure(&error), TlsFailure::NameMismatch { expected, .. }
            if expected == "dvm-other.apps.example.com"),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains("\"dvm-other.apps.example.com\""),
        "{message}"
    );
    assert!(message.contains("localhost"), "{message}");
}

#[tokio::test]
async fn a_client_without_a_certificate_is_refused() {
    let out = certs(&["localhost"]);
    let mut roots = rustls::RootCertStore::empty();
    let ca = std::fs::read(out.path().join("client/ca.crt")).unwrap();
    for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(&ca) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut anonymous = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    anonymous.alpn_protocols = vec![ferry_net::ALPN.to_vec()];

    let (client, server) = handshake(
        &dir(&out, "server"),
        Arc::new(anonymous),
        "localhost",
        WireCounter::default(),
    )
    .await;

    let error = server.await.unwrap().unwrap_err();
    assert_eq!(error.class(), NetErrorClass::Tls);
    assert_eq!(failure(&error), &TlsFailure::NoClientCert);
    assert!(error.to_string().contains("a client"), "{error}");

    // In TLS 1.3 the client finishes first and hears the refusal on its first read.
    let mut client = match client {
        Ok(client) => client,
        Err(error) => {
            assert_eq!(error.class(), NetErrorClass::Tls, "{error}");
            return;
        }
    };
    let read = client.read(&mut [0u8; 16]).await.unwrap_err();
    let error = ferry_net::stream_error(TlsPeer::Server("localhost".into()), read);
    assert_eq!(error.class(), NetErrorClass::Tls);
    assert!(
        matches!(failure(&error), TlsFailure::RefusedByPeer { alert } if alert == "certificate_required"),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_server_certificate_used_as_a_client_certificate_is_refused() {
    let out = certs(&["localhost"]);
    let (client, server) = handshake(
        &dir(&out, "server"),
        client_config(&dir(&out, "server")).unwrap(),
        "localhost",
        WireCounter::default(),
    )
    .await;
    let error = server.await.unwrap().unwrap_err();
    assert_eq!(error.class(), NetErrorClass::Tls);
    assert!(
        matches!(failure(&error), TlsFailure::WrongPurpose { .. }),
        "{error:?}"
    );
    drop(client);
}

#[test]
fn missing_files_are_config_errors_naming_the_path() {
    let empty = tempfile::tempdir().unwrap();
    let tls_dir = TlsDir::new(empty.path());
    for error in [
        server_config(&tls_dir).unwrap_err(),
        client_config(&tls_dir).unwrap_err(),
    ] {
        assert_eq!(error.class(), NetErrorClass::Config);
        let message = error.to_string();
        assert!(
            message.contains(&*tls_dir.ca.to_string_lossy()),
            "{message}"
        );
        assert!(message.contains("ferry certs"), "{message}");
    }

    // With the CA present, the next missing file is named.
    let out = certs(&["localhost"]);
    let partial = out.path().join("server");
    std::fs::remove_file(partial.join("tls.key")).unwrap();
    let error = server_config(&TlsDir::new(&partial)).unwrap_err();
    assert_eq!(error.class(), NetErrorClass::Config);
    assert!(error.to_string().contains("tls.key"), "{error}");
}

#[test]
fn garbage_and_mismatched_files_are_config_errors() {
    let out = certs(&["localhost"]);
    let server = out.path().join("server");
    std::fs::write(server.join("ca.crt"), "not pem at all\n").unwrap();
    let error = server_config(&TlsDir::new(&server)).unwrap_err();
    assert!(matches!(error, NetError::Pem { .. }), "{error:?}");
    assert_eq!(error.class(), NetErrorClass::Config);

    // tls.key from the client directory does not fit the server's tls.crt.
    let out = certs(&["localhost"]);
    let server = out.path().join("server");
    std::fs::remove_file(server.join("tls.key")).unwrap();
    std::fs::copy(out.path().join("client/tls.key"), server.join("tls.key")).unwrap();
    let error = server_config(&TlsDir::new(&server)).unwrap_err();
    assert!(matches!(error, NetError::Credentials { .. }), "{error:?}");
    assert_eq!(error.class(), NetErrorClass::Config);
}

#[test]
fn generate_writes_private_keys_and_refuses_to_overwrite() {
    let out = certs(&["localhost", "::1"]);
    for side in ["server", "client"] {
        let dir = out.path().join(side);
        for file in ["tls.crt", "tls.key", "ca.crt"] {
            assert!(dir.join(file).is_file(), "{side}/{file}");
        }
        let mode = std::fs::metadata(dir.join("tls.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{side}/tls.key");
    }
    let error = ferry_net::generate(out.path(), &["localhost".to_string()]).unwrap_err();
    assert_eq!(error.class(), NetErrorClass::Config);
    assert!(error.to_string().contains("empty --out"), "{error}");
}

#[test]
fn generate_rejects_bad_names() {
    let out = tempfile::tempdir().unwrap();
    let error = ferry_net::generate(out.path(), &[]).unwrap_err();
    assert!(matches!(error, NetError::NoServerNames), "{error:?}");
    let error = ferry_net::generate(out.path(), &["not a name!".to_string()]).unwrap_err();
    assert_eq!(error.class(), NetErrorClass::Config);
    assert!(error.to_string().contains("not a name!"), "{error}");
    assert!(is_empty(out.path()), "nothing written on refusal");
}

#[tokio::test]
async fn connecting_to_a_closed_port_names_host_and_port() {
    let listener = ferry_net::listen("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let error = tcp::connect("127.0.0.1", port, PATIENCE).await.unwrap_err();
    assert_eq!(error.class(), NetErrorClass::Connect);
    assert!(matches!(error, NetError::Connect { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
    assert!(message.contains("nothing listens"), "{message}");
}

#[test]
fn server_names_parse_dns_and_ip() {
    assert!(server_name("dvm-ns.apps.example.com").is_ok());
    assert!(server_name("10.0.0.1").is_ok());
    assert!(server_name("::1").is_ok());
    let error = server_name("bad name").unwrap_err();
    assert_eq!(error.class(), NetErrorClass::Config);
    assert!(error.to_string().contains("\"bad name\""), "{error}");
}

fn is_empty(path: &Path) -> bool {
    std::fs::read_dir(path).unwrap().next().is_none()
}
