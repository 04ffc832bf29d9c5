use std::time::Duration;

use tokio::io::{duplex, split, DuplexStream};

use super::*;
use crate::framed::spawn_writer;

const OPENER: [u8; 32] = [7; 32];
const OTHER: [u8; 32] = [8; 32];

fn opener() -> Opener {
    Opener {
        identity: OPENER,
        sni: Some("ferry.example".into()),
    }
}

fn key(byte: u8) -> SessionKey {
    SessionKey::new([byte; 32])
}

/// A joining connection over memory: what the hub gets, and the client's reader.
fn joining(key: SessionKey, stream: u16, joiner: Opener) -> (Joining, FrameReader<DuplexStream>) {
    let (server, client) = duplex(64 * 1024);
    let (read, write) = split(server);
    let reader = FrameReader::new(read, ferry_proto::Limits::default()).boxed();
    let (tx, writer) = spawn_writer(write, 8, Duration::from_secs(10));
    let joining = Joining {
        key,
        stream,
        joiner,
        reader,
        tx,
        writer,
        compression: Default::default(),
    };
    (
        joining,
        FrameReader::new(client, ferry_proto::Limits::default()),
    )
}

/// Joins as `stream` and returns the server's answer.
async fn join(
    hubs: &Hubs,
    metrics: &Metrics,
    key: SessionKey,
    stream: u16,
    joiner: Opener,
) -> Message {
    join_keeping(hubs, metrics, key, stream, joiner).await.0
}

/// [`join`], and the client's end of the connection, kept open.
async fn join_keeping(
    hubs: &Hubs,
    metrics: &Metrics,
    key: SessionKey,
    stream: u16,
    joiner: Opener,
) -> (Message, FrameReader<DuplexStream>) {
    let (joining, mut client) = joining(key, stream, joiner);
    answer(hubs, metrics, &FailureLog::default(), joining).await;
    let answer = tokio::time::timeout(Duration::from_secs(10), client.next())
        .await
        .expect("an answer")
        .expect("it decodes")
        .expect("a frame");
    (answer, client)
}

/// Waits (up to 10 s) until the session holds `live` joined streams; `what` says why.
async fn live_becomes(registration: &Registration, live: usize, what: &str) {
    tokio::time::timeout(Duration::from_secs(10), async {
        while registration.streams.live() != live {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect(what);
}

fn refused(answer: &Message) -> RefuseReason {
    match answer {
        Message::Refused { reason, .. } => *reason,
        other => panic!("expected Refused, got {other:?}"),
    }
}

#[tokio::test]
async fn joins_are_checked_in_order_and_a_good_one_reaches_the_session() {
    let hubs = Arc::new(Hubs::default());
    let metrics = Metrics::new(&[]);
    let registration = hubs.register_key(key(1), 4, opener());

    // A key no session has.
    let answer = join(&hubs, &metrics, key(2), 1, opener()).await;
    assert_eq!(refused(&answer), RefuseReason::UnknownSession);
    let unknown_words = answer.clone();

    // The right key with another certificate, or another SNI: the same words as an
    // unknown key, so a refusal does not say the key is live.
    let other_cert = Opener {
        identity: OTHER,
        ..opener()
    };
    let answer = join(&hubs, &metrics, key(1), 1, other_cert).await;
    assert_eq!(answer, unknown_words);
    let other_sni = Opener {
        sni: Some("other.example".into()),
        ..opener()
    };
    assert_eq!(
        join(&hubs, &metrics, key(1), 1, other_sni).await,
        unknown_words
    );

    // Over the session's limit, and stream 0.
    let answer = join(&hubs, &metrics, key(1), 4, opener()).await;
    assert_eq!(refused(&answer), RefuseReason::TooManyStreams);
    assert_eq!(
        refused(&join(&hubs, &metrics, key(1), 0, opener()).await),
        RefuseReason::StreamTaken
    );

    // A good one, then the same stream again.
    let (answer, one) = join_keeping(&hubs, &metrics, key(1), 1, opener()).await;
    assert_eq!(answer, Message::Joined { stream: 1 });
    assert_eq!(
        refused(&join(&hubs, &metrics, key(1), 1, opener()).await),
        RefuseReason::StreamTaken
    );
    let (answer, three) = join_keeping(&hubs, &metrics, key(1), 3, opener()).await;
    assert_eq!(answer, Message::Joined { stream: 3 });
    live_becomes(&registration, 2, "both joined streams reach the session").await;
    assert_eq!(hubs.joined(), 2);

    // Finishing: late joins are refused as such.
    registration.hub.close();
    assert_eq!(
        refused(&join(&hubs, &metrics, key(1), 2, opener()).await),
        RefuseReason::JoinClosed
    );

    let text = metrics.render();
    for line in [
        "ferry_stream_joins_total{result=\"joined\"} 2",
        "ferry_stream_joins_total{result=\"unknown\"} 1",
        "ferry_stream_joins_total{result=\"identity\"} 2",
        "ferry_stream_joins_total{result=\"too_many\"} 1",
        "ferry_stream_joins_total{result=\"taken\"} 2",
        "ferry_stream_joins_total{result=\"closed\"} 1",
    ] {
        assert!(text.lines().any(|l| l == line), "{line:?} missing:\n{text}");
    }

    // Over: the key is forgotten, and the joined streams are closed once the client
    // has closed them (the grace ends early).
    drop((one, three));
    registration.end(&hubs).await;
    assert_eq!(
        refused(&join(&hubs, &metrics, key(1), 2, opener()).await),
        RefuseReason::UnknownSession
    );
    assert_eq!(hubs.joined(), 0, "the server-wide count is given back");
}

#[tokio::test]
async fn the_server_wide_limit_refuses_only_after_who_and_when() {
    let hubs = Arc::new(Hubs::default());
    let metrics = Metrics::new(&[]);
    let registration = hubs.register_key(key(1), 16, opener());
    hubs.joined.store(MAX_JOINED, SeqCst);
    assert_eq!(
        refused(&join(&hubs, &metrics, key(1), 1, opener()).await),
        RefuseReason::TooManyStreams
    );
    let stranger = Opener {
        identity: OTHER,
        ..opener()
    };
    assert_eq!(
        refused(&join(&hubs, &metrics, key(1), 1, stranger).await),
        RefuseReason::UnknownSession
    );
    hubs.joined.store(0, SeqCst);
    // The refusal for the server's limit did not take stream 1.
    assert_eq!(
        join(&hubs, &metrics, key(1), 1, opener()).await,
        Message::Joined { stream: 1 }
    );
    registration.hub.close();
    hubs.joined.store(MAX_JOINED, SeqCst);
    assert_eq!(
        refused(&join(&hubs, &metrics, key(1), 2, opener()).await),
        RefuseReason::JoinClosed
    );
    hubs.joined.store(1, SeqCst);
    drop(registration);
}

#[test]
fn only_a_tree_session_that_asks_may_have_streams() {
    let asks = SessionOptions {
        streams: true,
        ..SessionOptions::default()
    };
    assert_eq!(streams_max(&asks, 8), 8);
    assert_eq!(streams_max(&asks, 1), 1);
    assert_eq!(streams_max(&asks, 40), 16);
    assert_eq!(streams_max(&SessionOptions::default(), 8), 1);
    for not in [
        SessionOptions {
            probe: true,
            ..asks
        },
        SessionOptions {
            block: true,
            ..asks
        },
        SessionOptions {
            dry_run: true,
            ..asks
        },
    ] {
        assert_eq!(streams_max(&not, 8), 1, "{not:?}");
    }
}

#[test]
fn the_key_never_shows_in_debug() {
    let shown = format!("{:?}", key(0xab));
    assert!(
        !shown.contains("171") && !shown.to_lowercase().contains("ab"),
        "{shown}"
    );
}

#[tokio::test]
async fn a_session_that_panics_forgets_its_key_and_gives_its_streams_back() {
    let hubs = Arc::new(Hubs::default());
    let metrics = Metrics::new(&[]);
    let registration = hubs.register_key(key(1), 4, opener());
    let (answer, _one) = join_keeping(&hubs, &metrics, key(1), 1, opener()).await;
    assert_eq!(answer, Message::Joined { stream: 1 });
    live_becomes(&registration, 1, "the joined stream reaches the session").await;

    // The session's task unwinds without reaching Registration::end (a panic in a
    // session, or its future dropped).
    let died = tokio::spawn(async move {
        let _registration = registration;
        panic!("a session that panics");
    })
    .await;
    assert!(died.unwrap_err().is_panic());

    assert_eq!(
        refused(&join(&hubs, &metrics, key(1), 2, opener()).await),
        RefuseReason::UnknownSession,
        "the key of a session that is gone must not take joins"
    );
    tokio::time::timeout(Duration::from_secs(10), async {
        while hubs.joined() != 0 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the dead session's joined stream is closed and uncounted");
}

#[tokio::test]
async fn a_join_that_passed_the_gate_as_the_session_ended_gives_its_slot_back() {
    let hubs = Arc::new(Hubs::default());
    let registration = hubs.register_key(key(1), 4, opener());
    // The join is checked and counted; then, before its connection reaches the
    // session, the session ends.
    let Ok((hub, slot)) = hubs.join(&key(1), 1, &opener()) else {
        panic!("the join is taken");
    };
    assert_eq!(hubs.joined(), 1);
    registration.end(&hubs).await;
    let (joining, _client) = joining(key(1), 1, opener());
    let conn = JoinedConn {
        stream: 1,
        reader: joining.reader,
        tx: joining.tx,
        writer: joining.writer,
        slot: Some(slot),
    };
    // Refused (the session is gone) or taken into a channel nobody reads any more:
    // either way the connection is dropped and its count given back.
    let _ = hub.to_session.try_send(conn);
    drop(hub);
    tokio::time::timeout(Duration::from_secs(10), async {
        while hubs.joined() != 0 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the late join's server-wide count is given back");
}

#[tokio::test]
async fn a_lost_stream_is_not_replaced() {
    let hubs = Arc::new(Hubs::default());
    let metrics = Metrics::new(&[]);
    let registration = hubs.register_key(key(5), 4, opener());
    let (answer, one) = join_keeping(&hubs, &metrics, key(5), 1, opener()).await;
    assert_eq!(answer, Message::Joined { stream: 1 });
    live_becomes(&registration, 1, "the joined stream reaches the session").await;

    // The client's end closes: the session counts the stream lost.
    drop(one);
    live_becomes(&registration, 0, "the session sees the stream lost").await;

    assert_eq!(
        refused(&join(&hubs, &metrics, key(5), 1, opener()).await),
        RefuseReason::StreamTaken,
        "a lost stream's number is not given out again"
    );
    let (answer, two) = join_keeping(&hubs, &metrics, key(5), 2, opener()).await;
    assert_eq!(
        answer,
        Message::Joined { stream: 2 },
        "another number still joins"
    );
    drop(two);
    registration.end(&hubs).await;
}
