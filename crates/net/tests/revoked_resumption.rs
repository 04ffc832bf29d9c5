//! A revoked client certificate gets no session by resuming a TLS 1.3 session it saved
//! before it was revoked (the server keeps no sessions and sends no tickets).
use std::sync::Arc;

use ferry_net::pairing::{joiner_key, peers, Authority, JoinerKey, Revocation};
use ferry_net::{client_config, server_config_revoking, TlsDir};
use rustls::{ClientConnection, ServerConnection};

fn pump(c: &mut ClientConnection, s: &mut ServerConnection) -> Result<(), rustls::Error> {
    for _ in 0..20 {
        let mut buf = Vec::new();
        while c.wants_write() {
            c.write_tls(&mut buf).unwrap();
        }
        let mut rd = &buf[..];
        while !rd.is_empty() {
            s.read_tls(&mut rd).unwrap();
            s.process_new_packets()?;
        }
        let mut buf = Vec::new();
        while s.wants_write() {
            s.write_tls(&mut buf).unwrap();
        }
        let mut rd = &buf[..];
        while !rd.is_empty() {
            c.read_tls(&mut rd).unwrap();
            c.process_new_packets()?;
        }
    }
    Ok(())
}

fn setup() -> (tempfile::TempDir, TlsDir, TlsDir, String) {
    let tmp = tempfile::tempdir().unwrap();
    let (ca, _key) = Authority::create().unwrap();
    let (cert, key) = ca.issue_server(&["localhost".to_owned()]).unwrap();
    let sdir = tmp.path().join("server");
    std::fs::create_dir(&sdir).unwrap();
    std::fs::write(sdir.join("tls.crt"), format!("{cert}{}", ca.cert_pem())).unwrap();
    std::fs::write(sdir.join("tls.key"), key).unwrap();
    std::fs::write(sdir.join("ca.crt"), ca.cert_pem()).unwrap();
    let (point, key_pem) = joiner_key().unwrap();
    let der = ca
        .issue_client(&JoinerKey::parse(&point).unwrap(), "mallory")
        .unwrap();
    let cdir = tmp.path().join("client");
    peers::store(&cdir, &der, &key_pem, ca.cert_der()).unwrap();
    let fp = format!(
        "sha256:{}",
        ferry_net::pairing::digest::hex(&ferry_net::pairing::digest::sha256(&der))
    );
    (tmp, TlsDir::new(&sdir), TlsDir::new(&cdir), fp)
}

#[test]
fn a_revoked_client_is_refused_even_when_it_resumes() {
    let (tmp, sdir, cdir, fp) = setup();
    let revoked = tmp.path().join("revoked");
    std::fs::write(&revoked, "# none yet\n").unwrap();
    let revocation = Arc::new(Revocation::new(Vec::new(), Some(revoked.clone()), true).unwrap());
    let server = server_config_revoking(&sdir, revocation).unwrap();
    let client = client_config(&cdir).unwrap(); // default resumption: in-memory ticket cache
    let name = ferry_net::server_name("localhost").unwrap();

    // 1. Before revocation: a full handshake; the client keeps the tickets it is sent.
    let mut c = ClientConnection::new(client.clone(), name.clone()).unwrap();
    let mut s = ServerConnection::new(server.clone()).unwrap();
    pump(&mut c, &mut s).unwrap();
    assert!(!c.is_handshaking() && !s.is_handshaking());

    // 2. The operator revokes the peer (the file is re-read at the next handshake).
    std::fs::write(&revoked, format!("{fp}\n")).unwrap();

    // A fresh client (no ticket) with the same certificate is refused: revocation works...
    let fresh = client_config(&cdir).unwrap();
    let mut c2 = ClientConnection::new(fresh, name.clone()).unwrap();
    let mut s2 = ServerConnection::new(server.clone()).unwrap();
    assert!(
        pump(&mut c2, &mut s2).is_err(),
        "fresh handshake should be refused"
    );

    // 3. ...but the revoked client resuming with its ticket is let in, as that certificate.
    for round in 0..5 {
        let mut c3 = ClientConnection::new(client.clone(), name.clone()).unwrap();
        let mut s3 = ServerConnection::new(server.clone()).unwrap();
        let r = pump(&mut c3, &mut s3);
        let resumed = matches!(s3.handshake_kind(), Some(rustls::HandshakeKind::Resumed));
        eprintln!(
            "round {round}: result {r:?} resumed {resumed} peer certs {:?}",
            s3.peer_certificates().map(|c| c.len())
        );
        assert!(
            r.is_err() || s3.is_handshaking(),
            "round {round}: a revoked client resumed (resumed={resumed}) and was let in"
        );
    }
}

#[test]
fn an_enrolled_client_certificate_cannot_serve() {
    let (_tmp, sdir, cdir, _) = setup();
    // Serve with the client's certificate and key (EKU clientAuth, no SAN).
    let fake = TlsDir {
        cert: cdir.cert.clone(),
        key: cdir.key.clone(),
        ca: sdir.ca.clone(),
    };
    let server = ferry_net::server_config(&fake).unwrap();
    let client = client_config(&cdir).unwrap();
    for host in ["localhost", "ferry-client"] {
        let name = ferry_net::server_name(host).unwrap();
        let mut c = ClientConnection::new(client.clone(), name).unwrap();
        let mut s = ServerConnection::new(server.clone()).unwrap();
        let r = pump(&mut c, &mut s);
        eprintln!("{host}: {r:?}");
        assert!(r.is_err());
    }
}
