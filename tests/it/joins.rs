//! Joins to a running push session, in-process (`ferry_engine::testing`): the engine's
//! real hub and join answer beside the real target session; and once over real TLS with
//! a second client certificate of the server's own CA. A forged key, another
//! client certificate (of the same CA: the TLS layer let it in), another SNI, a stream
//! over the session's limit, a stream twice and a join after `Done` are all refused,
//! while the session itself completes as if nothing happened.

use std::path::Path;

use ferry_engine::testing::TargetPeer;
use ferry_proto::session::stream::SessionKey;
use ferry_proto::{Filter, Message, RefuseReason, SessionOptions, PROTOCOL_VERSION};

use crate::files::own_meta;
use crate::raw::{tls_config, RawClient, Recv};
use crate::util::Server;

const OPENER: [u8; 32] = [0x11; 32];
const OTHER_CLIENT: [u8; 32] = [0x22; 32];
const SNI: Option<&str> = Some("route-a.example");

fn refusal(answer: std::io::Result<Option<Message>>) -> RefuseReason {
    match answer {
        Ok(Some(Message::Refused { reason, .. })) => reason,
        other => panic!("expected Refused, got {other:?}"),
    }
}

#[test]
fn forged_foreign_over_the_limit_twice_and_late_joins_are_refused_and_the_session_completes() {
    let tmp = tempfile::TempDir::new().expect("tempdir");
    let vol = tmp.path().join("vol");
    std::fs::create_dir(&vol).expect("mkdir");
    let options = SessionOptions {
        streams: true,
        ..SessionOptions::default()
    };
    let mut peer = TargetPeer::serve_joinable(&vol, options, Filter::default(), 4, OPENER, SNI);
    let key = peer.key();

    let mut forged = key;
    forged[0] ^= 1;
    assert_eq!(
        refusal(peer.join(forged, 1, OPENER, SNI)),
        RefuseReason::UnknownSession
    );
    assert_eq!(
        refusal(peer.join(key, 1, OTHER_CLIENT, SNI)),
        RefuseReason::UnknownSession,
        "the key with another client certificate is an unknown session"
    );
    assert_eq!(
        refusal(peer.join(key, 1, OPENER, Some("route-b.example"))),
        RefuseReason::UnknownSession
    );
    assert_eq!(
        refusal(peer.join(key, 4, OPENER, SNI)),
        RefuseReason::TooManyStreams
    );
    assert_eq!(
        peer.join(key, 1, OPENER, SNI).expect("an answer"),
        Some(Message::Joined { stream: 1 })
    );
    assert_eq!(
        refusal(peer.join(key, 1, OPENER, SNI)),
        RefuseReason::StreamTaken
    );

    // The session, over stream 0: an empty tree.
    peer.send(&Message::Root {
        meta: own_meta(&vol),
    })
    .expect("Root");
    peer.send(&Message::List {
        dir: Vec::new(),
        first: 0,
        entries: Vec::new(),
        dir_done: true,
        dir_complete: true,
    })
    .expect("List");
    peer.send(&Message::ListEnd {
        entries: 0,
        read_errors: 0,
    })
    .expect("ListEnd");
    let done = loop {
        match peer.recv().expect("the target answers") {
            Some(Message::Done { stats }) => break stats,
            Some(Message::Ack { .. } | Message::Heartbeat) => continue,
            other => panic!("expected Done, got {other:?}"),
        }
    };
    assert_eq!(done.file_errors, 0);

    // Once the target has said Done, a join is late: the session is finishing (or, if
    // it has ended since, its key is gone): either way refused.
    let late = refusal(peer.join(key, 2, OPENER, SNI));
    assert!(
        matches!(
            late,
            RefuseReason::JoinClosed | RefuseReason::UnknownSession
        ),
        "a join after Done got {late:?}"
    );
    let ended = peer.finish();
    assert_eq!(ended.code, 0, "the session failed: {ended:?}");
}

/// Two client certificates of the server's own CA (as pairing enrolls them), stored as
/// client directories `a` and `b` under `dir`; returns their leaves' SHA-256.
fn two_clients_of_the_servers_ca(state: &Path, dir: &Path) -> [[u8; 32]; 2] {
    use ferry_net::pairing::{digest::sha256, joiner_key, peers, Authority, JoinerKey};
    let key = std::fs::read_to_string(state.join("ca.key")).expect("the server's CA key");
    let cert = std::fs::read_to_string(state.join("ca.crt")).expect("the server's CA");
    let authority = Authority::load(&key, &cert, &state.join("ca.crt")).expect("load the CA");
    ["a", "b"].map(|name| {
        let (point, key_pem) = joiner_key().expect("a client key");
        let joiner = JoinerKey::parse(&point).expect("a P-256 point");
        let der = authority
            .issue_client(&joiner, name)
            .expect("a client certificate");
        peers::store(&dir.join(name), &der, &key_pem, authority.cert_der()).expect("store");
        sha256(&der)
    })
}

fn answer(client: &mut RawClient) -> Message {
    loop {
        match client.recv() {
            Recv::Msg(Message::Heartbeat) => continue,
            Recv::Msg(message) => return message,
            other => panic!("expected an answer, got {other:?}"),
        }
    }
}

/// A raw client of certificate `dir` that says `Join{key, stream}`; its answer.
fn join_raw(addr: &str, dir: &Path, key: SessionKey, stream: u16) -> (Message, RawClient) {
    let mut client = RawClient::connect(addr, tls_config(dir, true), "127.0.0.1")
        .unwrap_or_else(|e| panic!("TLS to {addr} failed: {e}"));
    client
        .send(&Message::Join {
            version: PROTOCOL_VERSION,
            key,
            stream,
        })
        .expect("send Join");
    (answer(&mut client), client)
}

#[test]
fn over_real_tls_another_certificate_of_the_same_ca_is_refused_and_logged() {
    let tmp = tempfile::TempDir::new().expect("tempdir");
    let (state, vol) = (tmp.path().join("state"), tmp.path().join("vol"));
    std::fs::create_dir(&vol).expect("mkdir");
    let server = Server::builder_with_state(&state)
        .volume("vol", &vol)
        .start();
    let [a, b] = two_clients_of_the_servers_ca(&state, tmp.path());
    let (dir_a, dir_b) = (tmp.path().join("a"), tmp.path().join("b"));

    let mut opener = RawClient::connect(&server.addr, tls_config(&dir_a, true), "127.0.0.1")
        .expect("TLS with client a");
    opener
        .send(&Message::Hello {
            version: PROTOCOL_VERSION,
            volume: b"vol".to_vec(),
            options: SessionOptions {
                streams: true,
                ..SessionOptions::default()
            },
            filter: Filter::default(),
        })
        .expect("send Hello");
    let key = match answer(&mut opener) {
        Message::Welcome {
            streams_max: 8,
            key: Some(key),
            ..
        } => key,
        other => panic!("expected a Welcome of 8 streams with a key, got {other:?}"),
    };

    let (refused, _) = join_raw(&server.addr, &dir_b, key.clone(), 1);
    let (unknown, _) = join_raw(&server.addr, &dir_a, SessionKey::new([0; 32]), 1);
    match (&refused, &unknown) {
        (
            Message::Refused {
                reason: RefuseReason::UnknownSession,
                message,
            },
            Message::Refused {
                reason: RefuseReason::UnknownSession,
                message: unknown_message,
            },
        ) => assert_eq!(message, unknown_message, "the same words: no oracle"),
        other => panic!("expected two UnknownSession refusals, got {other:?}"),
    }
    let log = server.wait_for_log("refused as an unknown session");
    let hex = ferry_net::pairing::digest::hex;
    assert!(
        log.contains(&hex(&a)) && log.contains(&hex(&b)),
        "the log names both certificates: {log}"
    );
    let (joined, _stream_1) = join_raw(&server.addr, &dir_a, key.clone(), 1);
    assert_eq!(joined, Message::Joined { stream: 1 });

    opener
        .send(&Message::Root {
            meta: own_meta(&vol),
        })
        .expect("Root");
    opener
        .send(&Message::List {
            dir: Vec::new(),
            first: 0,
            entries: Vec::new(),
            dir_done: true,
            dir_complete: true,
        })
        .expect("List");
    opener
        .send(&Message::ListEnd {
            entries: 0,
            read_errors: 0,
        })
        .expect("ListEnd");
    loop {
        match answer(&mut opener) {
            Message::Done { stats } => break assert_eq!(stats.file_errors, 0),
            Message::Ack { .. } => continue,
            other => panic!("expected Done, got {other:?}"),
        }
    }
    let (late, _) = join_raw(&server.addr, &dir_a, key, 2);
    assert!(
        matches!(
            late,
            Message::Refused {
                reason: RefuseReason::JoinClosed | RefuseReason::UnknownSession,
                ..
            }
        ),
        "a join after Done got {late:?}"
    );
}
