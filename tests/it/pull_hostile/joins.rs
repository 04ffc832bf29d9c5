//! A hostile server's answers to `Join`, against the real `ferry pull --streams 5`: a
//! `Joined` for another stream number, a `Welcome` instead of `Joined`, a refusal whose
//! words try to act on the terminal, and a stream joined and then flooded with
//! heartbeats and a frame a joined stream may not carry. None of it fails the pull,
//! each is a `stream` event, the key is never shown; and `--streams 1` opens no second
//! connection even when the server offers 16 streams and a key.

use std::sync::Arc;

use serde_json::Value;

use super::*;
use crate::peer_text::{assert_peer_text_escaped, HOSTILE};
use crate::raw_server::{welcome, JoinAnswer, RawServer};
use crate::util::{pull, Certs};

/// The key in `raw_server::welcome`.
const KEY: [u8; 32] = [0x6b; 32];

fn hostile_joins() -> JoinAnswer {
    Arc::new(|first: Option<&Message>| {
        let Some(Message::Join { stream, .. }) = first else {
            return Vec::new();
        };
        match stream {
            1 => vec![Step::Send(Message::Joined { stream: 2 })],
            2 => vec![Step::Send(welcome(16))],
            3 => vec![Step::Send(Message::Refused {
                reason: ferry_proto::RefuseReason::UnknownSession,
                message: HOSTILE.to_owned(),
            })],
            _ => {
                let mut steps = vec![Step::Send(Message::Joined { stream: *stream })];
                steps.extend((0..10_000).map(|_| Step::Send(Message::Heartbeat)));
                steps.push(Step::Send(Message::ListEnd {
                    entries: 0,
                    read_errors: 0,
                }));
                steps
            }
        }
    })
}

fn states(events: &[Value]) -> Vec<(u64, String, String)> {
    let mut states: Vec<_> = events
        .iter()
        .filter(|e| e["event"] == "stream")
        .map(|e| {
            (
                e["stream"].as_u64().expect("stream number"),
                e["state"].as_str().expect("state").to_owned(),
                e["reason"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    states.sort();
    states
}

#[test]
fn a_hostile_servers_answers_to_join_cost_only_those_streams() {
    let (_tmp, place, _) = scene();
    let dest = place.tmp.join("dest");
    let certs = Certs::new();
    let script = || {
        vec![
            Step::Send(Message::Root {
                meta: own_meta(&dest),
            }),
            Step::Send(Message::List {
                dir: Vec::new(),
                first: 0,
                entries: Vec::new(),
                dir_done: true,
                dir_complete: true,
            }),
            Step::Send(Message::ListEnd {
                entries: 0,
                read_errors: 0,
            }),
        ]
    };
    let server = RawServer::joinable(
        &certs.server_dir(),
        vec![Step::Send(welcome(16))],
        script(),
        hostile_joins(),
    );
    let out = pull(&certs, &server.url(), &dest)
        .arg("--streams")
        .arg("5")
        .json()
        .run();
    let joins = server.joins();
    let _ = server.finish();
    assert_eq!(out.output.code, Some(0), "{}", out.output.dump());
    assert_peer_text_escaped(&out.output, 0);
    let mut asked: Vec<_> = joins
        .iter()
        .map(|first| match first {
            Some(Message::Join { key, stream, .. }) if key.as_bytes() == &KEY => *stream,
            other => panic!("expected a Join with the Welcome's key, got {other:?}"),
        })
        .collect();
    asked.sort();
    assert_eq!(asked, [1, 2, 3, 4]);
    let states = states(out.events());
    let state = |n: u64| -> Vec<&str> {
        states
            .iter()
            .filter(|(s, _, _)| *s == n)
            .map(|(_, state, _)| state.as_str())
            .collect()
    };
    assert_eq!(state(1), ["failed"], "{states:?}");
    assert!(
        states[0].2.contains("got Joined {stream: 2}"),
        "the reason names the stream the server answered for: {states:?}"
    );
    assert_eq!(state(2), ["failed"], "{states:?}");
    assert_eq!(state(3), ["refused"], "{states:?}");
    // Flooded: joined, and lost if the flood's last frame arrived before the session
    // ended (it usually does; either way the pull succeeds).
    assert!(
        matches!(
            state(4)[..],
            ["joined"] | ["joined", "lost"] | ["lost", "joined"]
        ),
        "{states:?}"
    );
    let shown = format!("{}{}", out.stdout(), out.stderr());
    for key in ["6b6b6b6b", "107, 107, 107"] {
        assert!(!shown.contains(key), "the key is shown: {shown}");
    }

    // `--streams 1`: no join, whatever the server offers.
    let server = RawServer::joinable(
        &certs.server_dir(),
        vec![Step::Send(welcome(16))],
        script(),
        hostile_joins(),
    );
    let out = pull(&certs, &server.url(), &dest)
        .arg("--streams")
        .arg("1")
        .run();
    let joins = server.joins();
    let _ = server.finish();
    assert_eq!(out.output.code, Some(0), "{}", out.output.dump());
    assert!(joins.is_empty(), "--streams 1 joined: {joins:?}");
}
