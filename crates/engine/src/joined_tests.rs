use std::sync::Mutex;

use tokio::io::{duplex, split, DuplexStream};

use super::*;
use crate::framed::spawn_writer;

/// A joined stream over memory: the session's side, and the peer's end.
fn conn(stream: u16) -> (JoinedConn, DuplexStream) {
    let (ours, theirs) = duplex(64 * 1024);
    let (read, write) = split(ours);
    let reader = FrameReader::new(read, ferry_proto::Limits::default()).boxed();
    let (tx, writer) = spawn_writer(write, 8, Duration::from_secs(10));
    let conn = JoinedConn {
        stream,
        reader,
        tx,
        writer,
        slot: None,
    };
    (conn, theirs)
}

/// The streams reported lost, and why.
type Lost = Arc<Mutex<Vec<(u16, String)>>>;

fn recorder() -> (Lost, OnLost) {
    let lost = Arc::new(Mutex::new(Vec::new()));
    let seen = lost.clone();
    let on_lost: OnLost = Box::new(move |stream, why| {
        seen.lock().unwrap().push((stream, why.to_owned()));
    });
    (lost, on_lost)
}

#[tokio::test]
async fn a_stream_the_peer_closes_mid_session_is_lost_and_the_others_live_on() {
    let (lost, on_lost) = recorder();
    let streams = JoinedStreams::new(on_lost);
    let (one, peer_one) = conn(1);
    let (two, _peer_two) = conn(2);
    streams.add(one);
    streams.add(two);
    assert_eq!(streams.most(), 3);
    drop(peer_one);
    tokio::time::timeout(Duration::from_secs(10), async {
        while streams.live() != 1 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("stream 1 ends");
    assert_eq!(lost.lock().unwrap().len(), 1);
    assert_eq!(lost.lock().unwrap()[0].0, 1);
    assert_eq!(streams.most(), 3, "the most at once stays");
    streams.close(Duration::ZERO).await;
    assert_eq!(lost.lock().unwrap().len(), 1, "closing loses nothing");
}

#[tokio::test]
async fn a_frame_other_than_a_heartbeat_loses_the_stream() {
    use tokio::io::AsyncWriteExt;
    let (lost, on_lost) = recorder();
    let streams = JoinedStreams::new(on_lost);
    let (one, mut peer) = conn(1);
    streams.add(one);
    let mut frame = bytes::BytesMut::new();
    ferry_proto::encode(&Message::Heartbeat, &mut frame);
    ferry_proto::encode(&Message::Ack { through: 0 }, &mut frame);
    peer.write_all(&frame).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), async {
        while streams.live() != 0 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the stream ends");
    let lost = lost.lock().unwrap();
    assert!(lost[0].1.contains("Ack"), "{lost:?}");
}

#[tokio::test]
async fn closing_waits_for_the_peer_within_the_grace_and_reports_nothing() {
    let (lost, on_lost) = recorder();
    let streams = JoinedStreams::new(on_lost);
    let (one, peer) = conn(1);
    streams.add(one);
    let closing = streams.close(Duration::from_secs(30));
    let peer_closes = async {
        tokio::task::yield_now().await;
        drop(peer);
    };
    tokio::time::timeout(Duration::from_secs(10), async {
        tokio::join!(closing, peer_closes)
    })
    .await
    .expect("close ends when the peer has closed, not at the grace");
    assert!(lost.lock().unwrap().is_empty());
    assert_eq!(streams.live(), 0);
}

/// A joined stream carries only heartbeats (5 bytes a frame): one announcing a large
/// frame is lost at its header, before its body is buffered. Else each of the server's
/// 256 joined streams could hold a frame of `max_frame` (4 MiB) until the session's end.
#[tokio::test]
async fn a_joined_stream_announcing_a_large_frame_is_lost_at_its_header() {
    use tokio::io::AsyncWriteExt;
    let (lost, on_lost) = recorder();
    let streams = JoinedStreams::new(on_lost);
    let (one, mut peer) = conn(1);
    streams.add(one);
    // A Data frame's header for a 1 MiB body, and only its first bytes: an unbounded
    // reader would wait for the rest.
    let mut frame = bytes::BytesMut::new();
    ferry_proto::encode(
        &Message::Data {
            index: 0,
            offset: 0,
            bytes: bytes::Bytes::from(vec![7u8; 1 << 20]),
        },
        &mut frame,
    );
    peer.write_all(&frame[..4096]).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), async {
        while streams.live() != 0 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the stream is lost at the header, not held waiting for the body");
    let lost = lost.lock().unwrap();
    assert_eq!(lost.len(), 1, "{lost:?}");
    drop(peer);
}
