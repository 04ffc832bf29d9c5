//! The enrollment exchange driven by a raw joiner: a proof is bound to its TLS
//! connection (the same bytes that enroll on the connection they were made for are
//! refused on another), and an enrollment connection carries nothing but the exchange.

use ferry_net::pairing::wire::{Reason, Request, Response};
use ferry_net::pairing::{join_client_config, joiner_key, proof, JoinCode, PinnedCa};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{join_code, Hosts};

type Joiner = tokio_rustls::client::TlsStream<TcpStream>;

async fn connect(addr: &str, code: &JoinCode) -> Joiner {
    let config = join_client_config(PinnedCa::new(*code.ca_sha256())).unwrap();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ferry_net::server_name("127.0.0.1").unwrap();
    ferry_net::tls_connect(config, name, tcp).await.unwrap()
}

async fn exchange(tls: &mut Joiner, request: &Request) -> Response {
    tls.write_all(&request.encode()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tls.read_to_end(&mut answer).await;
    match Response::decode(&answer) {
        Ok(Some((response, _))) => response,
        other => panic!("no whole response ({other:?}): {answer:?}"),
    }
}

#[test]
fn a_proof_replayed_on_another_connection_is_refused() {
    let hosts = Hosts::new();
    let server = hosts.serve_pairing(&[]);
    let code: JoinCode = join_code(&server).parse().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut first = connect(&server.addr, &code).await;
        let exporter = proof::exporter(first.get_ref().1).unwrap();
        let (key, _) = joiner_key().unwrap();
        let request = Request {
            proof: proof::proof(code.secret(), &exporter, &key, b"replayer"),
            public_key: key,
            name: "replayer".to_owned(),
        };

        let mut second = connect(&server.addr, &code).await;
        match exchange(&mut second, &request).await {
            Response::Refused { reason, .. } => assert_eq!(reason, Reason::BadProof),
            Response::Granted { .. } => panic!("a replayed proof was granted a certificate"),
        }
        // The very same request on the connection it was made for: granted. So the
        // refusal above is the binding to the connection, not a bad proof.
        match exchange(&mut first, &request).await {
            Response::Granted { ca_der, .. } => {
                assert_eq!(
                    ferry_net::pairing::digest::sha256(&ca_der),
                    *code.ca_sha256()
                );
            }
            Response::Refused { reason, message } => {
                panic!("the original proof was refused ({reason:?}): {message}")
            }
        }
    });
    let refused = server.wait_for_log("refused: the proof did not verify");
    assert!(refused.contains("1 of 3"), "{refused}");
    server.wait_for_log("enrolled a new peer");
}

/// An enrollment connection has no client certificate, so it must never carry a session:
/// a session's Hello sent on it is a malformed request, answered as such, and the
/// connection is closed without a session (the volume is not even looked at).
#[test]
fn an_enrollment_connection_cannot_start_a_session() {
    use ferry_proto::{encode, Message, SessionOptions, PROTOCOL_VERSION};

    let hosts = Hosts::new();
    let server = hosts.serve_pairing(&[]);
    let code: JoinCode = join_code(&server).parse().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let answer = runtime.block_on(async {
        let mut tls = connect(&server.addr, &code).await;
        let mut hello = bytes::BytesMut::new();
        encode(
            &Message::Hello {
                version: PROTOCOL_VERSION,
                volume: b"vol".to_vec(),
                options: SessionOptions::default(),
                filter: Default::default(),
            },
            &mut hello,
        );
        tls.write_all(&hello).await.unwrap();
        let mut answer = Vec::new();
        let _ = tls.read_to_end(&mut answer).await;
        answer
    });
    match Response::decode(&answer) {
        Ok(Some((Response::Refused { reason, .. }, _))) => assert_eq!(reason, Reason::Malformed),
        other => panic!("a Hello on an enrollment connection got {other:?}"),
    }
    server.wait_for_log("refused: malformed request");
    assert!(
        !server.log().contains("session started"),
        "a session ran:\n{}",
        server.log()
    );
}
