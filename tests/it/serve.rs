//! `ferry serve` on its own: the handshake and `--once`.

use ferry_proto::{Message, RefuseReason, SessionOptions};
use tempfile::TempDir;

use crate::files::write;
use crate::raw::{RawClient, Recv};
use crate::snapshot::assert_trees_equal;
use crate::util::{push, Certs, Server};

#[test]
fn serve_once_exits_with_the_successful_sessions_code() {
    let tmp = TempDir::new().unwrap();
    let (src, dst) = (tmp.path().join("src"), tmp.path().join("dst"));
    write(&src.join("f"), b"f\n", 0o644);
    std::fs::create_dir(&dst).unwrap();
    let certs = Certs::new();
    let server = Server::builder(&certs).volume("vol", &dst).once().start();
    push(&certs, &src, &server.url("vol")).run().assert_ok();
    let finished = server.finish();
    assert_eq!(finished.code, Some(0), "{}", finished.dump());
    assert_trees_equal(&src, &dst);
}

#[test]
fn hello_with_another_protocol_version_is_refused_as_a_version_mismatch() {
    let tmp = TempDir::new().unwrap();
    let certs = Certs::new();
    let server = Server::builder(&certs).volume("vol", tmp.path()).start();
    let mut client = RawClient::connect_as_client(&server.addr, &certs.client_dir());
    client
        .send(&Message::Hello {
            version: ferry_proto::PROTOCOL_VERSION + 1,
            volume: b"vol".to_vec(),
            options: SessionOptions::default(),
            filter: Default::default(),
        })
        .expect("send Hello");
    let seen = client.recv_until_end();
    assert!(
        matches!(
            seen.last(),
            Some(Recv::Msg(Message::Refused {
                reason: RefuseReason::VersionMismatch,
                ..
            }))
        ),
        "expected Refused(VersionMismatch), got {seen:?}"
    );
}

#[test]
fn hello_with_unknown_option_bits_is_refused_naming_them() {
    let tmp = TempDir::new().unwrap();
    let certs = Certs::new();
    let server = Server::builder(&certs).volume("vol", tmp.path()).start();
    let mut client = RawClient::connect_as_client(&server.addr, &certs.client_dir());
    let mut frame = bytes::BytesMut::new();
    ferry_proto::encode(
        &Message::Hello {
            version: ferry_proto::PROTOCOL_VERSION,
            volume: b"vol".to_vec(),
            options: SessionOptions::default(),
            filter: Default::default(),
        },
        &mut frame,
    );
    // Length prefix, tag, version, the volume's length and bytes: then the options.
    let at = 4 + 1 + 4 + 4 + 3;
    frame[at..at + 4].copy_from_slice(&0x8000_2000u32.to_le_bytes());
    client.send_raw(&frame).expect("send Hello");
    let seen = client.recv_until_end();
    match seen.last() {
        Some(Recv::Msg(Message::Refused {
            reason: RefuseReason::VersionMismatch,
            message,
        })) => {
            assert!(message.contains("0x80002000"), "{message}");
            assert!(message.contains("same Ferry version"), "{message}");
        }
        _ => panic!("expected Refused(VersionMismatch) naming the bits, got {seen:?}"),
    }
}

/// What a server answers a Hello asking for several streams (`Hello.options.streams`).
fn welcome_to_a_streams_hello(max_streams: Option<&str>) -> (u16, bool, u32) {
    let tmp = TempDir::new().unwrap();
    let certs = Certs::new();
    let mut builder = Server::builder(&certs).volume("vol", tmp.path());
    if let Some(max) = max_streams {
        builder = builder.arg("--max-streams").arg(max);
    }
    let server = builder.start();
    let mut client = RawClient::connect_as_client(&server.addr, &certs.client_dir());
    client
        .send(&Message::Hello {
            version: ferry_proto::PROTOCOL_VERSION,
            volume: b"vol".to_vec(),
            options: SessionOptions {
                streams: true,
                ..SessionOptions::default()
            },
            filter: Default::default(),
        })
        .expect("send Hello");
    match client.recv() {
        Recv::Msg(Message::Welcome {
            streams_max,
            key,
            cores,
            ..
        }) => (streams_max, key.is_some(), cores),
        other => panic!("expected Welcome, got {other:?}"),
    }
}

/// By default a server grants up to 8 streams with a session key, and says its cores.
#[test]
fn hello_asking_for_streams_is_welcomed_with_eight_streams_and_a_key() {
    let (streams_max, key, cores) = welcome_to_a_streams_hello(None);
    assert_eq!((streams_max, key), (8, true));
    assert!(cores >= 1, "cores {cores}");
}

/// `serve --max-streams 1` grants no joins: `streams_max = 1` and no key.
#[test]
fn hello_asking_for_streams_of_a_one_stream_server_gets_one_stream_and_no_key() {
    let (streams_max, key, cores) = welcome_to_a_streams_hello(Some("1"));
    assert_eq!((streams_max, key), (1, false));
    assert!(cores >= 1, "cores {cores}");
}
