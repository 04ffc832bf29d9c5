//! A hostile server's answers to `Join`, against the real `ferry pull --streams 5`: a
//! `Joined` for another stream number, a `Welcome` instead of `Joined`, a refusal whose
//! words try to act on the terminal, and a stream joined and then flooded with
//! heartbeats. None of it fails the pull, each is a `stream` event, the key is never
//! shown. A joined stream that carries a control frame (`ListEnd`) fails the pull as a
//! protocol violation. And `--streams 1` opens no second connection: a server that
//! offers it streams anyway is refused.
//!
//! Streams join lazily, once the puller has asked for enough to spread: the fake server
//! lists one file over that threshold (`MORE_STREAMS_BYTES`, 4 MiB) and holds its answer
//! until the joins were answered, so the joins happen inside the session.

use std::sync::Arc;

use serde_json::Value;

use super::*;
use crate::peer_text::{assert_peer_text_escaped, HOSTILE};
use crate::raw_server::{welcome, Answer, JoinAnswer, JoinLog, Joins, RawServer};
use crate::util::{pull, Certs};

/// The key in `raw_server::welcome`.
const KEY: [u8; 32] = [0x6b; 32];
/// The one file listed: over the 4 MiB at which the puller opens its joined streams.
const BIG: usize = 5 << 20;

fn big_data() -> Vec<u8> {
    random_bytes("hostile joins", BIG)
}

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
                steps
            }
        }
    })
}

/// Root, then the root's listing: the file `big` (entry 0).
fn script(dest: &std::path::Path) -> Vec<Step> {
    let big = entry(
        b"big",
        Content::File {
            size: BIG as u64,
            checksum: None,
        },
    );
    let mut steps = vec![Step::Send(Message::Root {
        meta: own_meta(dest),
    })];
    steps.extend(listing(vec![big]));
    steps
}

/// Answers the ask for `big` once `ready` holds of the joins: the whole file on the
/// stream it was asked on (stream 0, the only one when the puller asked).
fn big_once(log: &Arc<JoinLog>, ready: &'static str, done: fn(&Joins) -> bool) -> Answer {
    let log = log.clone();
    Box::new(move |index| {
        assert_eq!(index, 0, "the puller asked for an entry never listed");
        log.wait_until(ready, done);
        let data = big_data();
        let mut steps: Vec<Step> = data
            .chunks(256 << 10)
            .enumerate()
            .map(|(i, chunk)| {
                Step::Send(Message::Data {
                    index,
                    offset: (i * (256 << 10)) as u64,
                    bytes: Bytes::copy_from_slice(chunk),
                })
            })
            .collect();
        steps.push(file_end(index, BIG as u64, *blake3::hash(&data).as_bytes()));
        steps
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
    let log = Arc::<JoinLog>::default();
    // The file comes once every join was answered and the puller closed the three it
    // refused: their events are out before the session can end.
    let answer = big_once(&log, "4 joins answered, 3 closed", |j| {
        j.answered >= 4 && j.closed >= 3
    });
    let server = RawServer::joinable(
        &certs.server_dir(),
        vec![Step::Send(welcome(16))],
        script(&dest),
        answer,
        hostile_joins(),
        log.clone(),
    );
    let out = pull(&certs, &server.url(), &dest)
        .arg("--streams")
        .arg("5")
        .json()
        .run();
    let joins = server.joins();
    let _ = server.finish();
    assert_eq!(out.output.code, Some(0), "{}", out.output.dump());
    assert_eq!(crate::files::read(&dest.join("big")), big_data());
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
    // Flooded with heartbeats, which a joined stream may carry: joined, and still there
    // at the end.
    assert_eq!(state(4), ["joined"], "{states:?}");
    assert_eq!(out.stat("streams"), 2, "stream 0 and stream 4");
    let shown = format!("{}{}", out.stdout(), out.stderr());
    for key in ["6b6b6b6b", "107, 107, 107"] {
        assert!(!shown.contains(key), "the key is shown: {shown}");
    }
}

#[test]
fn a_control_frame_on_a_joined_stream_fails_the_pull_as_a_protocol_violation() {
    let (_tmp, place, before) = scene();
    let dest = place.tmp.join("dest");
    let certs = Certs::new();
    let log = Arc::<JoinLog>::default();
    let list_end_on_join: JoinAnswer = Arc::new(|first: Option<&Message>| match first {
        Some(Message::Join { stream, .. }) => vec![
            Step::Send(Message::Joined { stream: *stream }),
            Step::Send(list_end(0)),
        ],
        _ => Vec::new(),
    });
    // The file never comes: the pull can only end on the joined stream's frame.
    let log_in_answer = log.clone();
    let answer: Answer = Box::new(move |_| {
        log_in_answer.wait_until("the join answered", |j| j.answered >= 1);
        Vec::new()
    });
    let server = RawServer::joinable(
        &certs.server_dir(),
        vec![Step::Send(welcome(16))],
        script(&dest),
        answer,
        list_end_on_join,
        log,
    );
    let out = pull(&certs, &server.url(), &dest)
        .arg("--streams")
        .arg("2")
        .json()
        .run();
    let _ = server.finish();
    assert_eq!(out.output.code, Some(12), "{}", out.output.dump());
    let error = out.summary()["error"].as_str().unwrap_or("").to_owned();
    assert!(
        error.contains("ListEnd") && error.contains("stream 1"),
        "the error names the frame and the stream: {error}\n{}",
        out.output.dump()
    );
    assert!(
        !dest.join("big").exists(),
        "a file that never came is there"
    );
    assert_own_entries_untouched(&place, &before);
}

#[test]
fn one_stream_opens_no_join_and_refuses_a_server_that_offers_streams() {
    let (_tmp, place, before) = scene();
    let dest = place.tmp.join("dest");
    let certs = Certs::new();
    let log = Arc::<JoinLog>::default();
    let server = RawServer::joinable(
        &certs.server_dir(),
        vec![Step::Send(welcome(16))],
        script(&dest),
        Box::new(|_| Vec::new()),
        hostile_joins(),
        log,
    );
    let out = pull(&certs, &server.url(), &dest)
        .arg("--streams")
        .arg("1")
        .run();
    let joins = server.joins();
    let _ = server.finish();
    // The Hello did not ask for streams (bit 12): a Welcome offering 16 is the server's
    // fault, said before anything is written.
    out.assert_code(12);
    assert!(
        out.stderr().contains("offers 16 streams") && out.stderr().contains("--streams 1"),
        "{}",
        out.output.dump()
    );
    assert!(joins.is_empty(), "--streams 1 joined: {joins:?}");
    assert_own_entries_untouched(&place, &before);
}
