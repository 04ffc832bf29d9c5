//! Joins to a running push session, in-process (`ferry_engine::testing`): the engine's
//! real hub and join answer beside the real target session. A forged key, another
//! client certificate (of the same CA: the TLS layer let it in), another SNI, a stream
//! over the session's limit, a stream twice and a join after `Done` are all refused,
//! while the session itself completes as if nothing happened.

use ferry_engine::testing::TargetPeer;
use ferry_proto::{Filter, Message, RefuseReason, SessionOptions};

use crate::files::own_meta;

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
