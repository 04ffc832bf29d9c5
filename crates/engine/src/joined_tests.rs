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

/// The driver hears of a joined stream in order: that it joined, each frame it carried
/// (not its heartbeats), that it was lost.
#[tokio::test]
async fn a_stream_s_join_frames_and_loss_reach_the_driver_in_order() {
    use tokio::io::AsyncWriteExt;
    let (_lost, on_lost) = recorder();
    let streams = JoinedStreams::new(on_lost);
    let mut incoming = streams.take_incoming().expect("the driver's end");
    assert!(streams.take_incoming().is_none(), "taken once");
    let (one, mut peer) = conn(1);
    streams.add(one);
    let mut frame = bytes::BytesMut::new();
    ferry_proto::encode(&Message::Heartbeat, &mut frame);
    ferry_proto::encode(&Message::Ack { through: 7 }, &mut frame);
    peer.write_all(&frame).await.unwrap();
    drop(peer);
    let mut seen = Vec::new();
    while let Some(event) = tokio::time::timeout(Duration::from_secs(10), incoming.events.recv())
        .await
        .expect("events come")
    {
        let done = matches!(event, StreamEvent::Lost { .. });
        seen.push(match event {
            StreamEvent::Joined { stream, .. } => format!("joined {stream}"),
            StreamEvent::Frame {
                stream, message, ..
            } => format!("{stream}: {}", message.name()),
            StreamEvent::Lost { stream, .. } => format!("lost {stream}"),
        });
        if done {
            break;
        }
    }
    assert_eq!(seen, ["joined 1", "1: Ack", "lost 1"]);
}

/// A driver that does not take frames stops the joined readers once the frames queued
/// for it hold [`INCOMING_BYTES`]: a fast peer cannot make this side buffer more.
#[tokio::test]
async fn frames_queued_for_a_slow_driver_are_bounded_by_the_incoming_budget() {
    use tokio::io::AsyncWriteExt;
    let (_lost, on_lost) = recorder();
    let streams = JoinedStreams::new(on_lost);
    let mut incoming = streams.take_incoming().expect("the driver's end");
    let (one, mut peer) = conn(1);
    streams.add(one);
    let chunk = 256 * 1024;
    let total = INCOMING_BYTES + 8 * chunk;
    let writing = tokio::spawn(async move {
        let mut frame = bytes::BytesMut::new();
        for i in 0..(total / chunk) as u64 {
            frame.clear();
            ferry_proto::encode(
                &Message::Data {
                    index: i,
                    offset: 0,
                    bytes: bytes::Bytes::from(vec![7u8; chunk]),
                },
                &mut frame,
            );
            if peer.write_all(&frame).await.is_err() {
                break;
            }
        }
        peer
    });
    // Give the reader time to queue all it may.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut queued = 0;
    // No await in this loop: the reader cannot refill what is given back.
    while let Ok(event) = incoming.events.try_recv() {
        if let StreamEvent::Frame {
            message: Message::Data { bytes, .. },
            ..
        } = event
        {
            queued += bytes.len();
        }
    }
    assert!(
        queued <= INCOMING_BYTES,
        "{queued} bytes queued past the budget of {INCOMING_BYTES}"
    );
    assert!(queued >= INCOMING_BYTES / 2, "only {queued} bytes queued");
    writing.abort();
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

#[test]
fn every_frame_is_charged_at_least_what_it_holds() {
    use ferry_proto::{Content, Entry, Meta, Timestamp, Xattr};
    let xattrs = (0..62)
        .map(|i| Xattr {
            name: format!("user.a{i:02}").into_bytes(),
            value: vec![0; 64 << 10],
        })
        .collect();
    let entry = Entry {
        name: b"x".to_vec(),
        meta: Meta {
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: Timestamp { sec: 0, nsec: 0 },
            xattrs,
        },
        content: Content::File {
            size: 1,
            checksum: None,
        },
    };
    let list = Message::List {
        dir: Vec::new(),
        first: 0,
        entries: vec![entry],
        dir_done: true,
        dir_complete: true,
    };
    assert!(
        frame_cost(&list) >= 62 << 16,
        "a 4 MiB List charged {}",
        frame_cost(&list)
    );
    let data = Message::Data {
        index: 0,
        offset: 0,
        bytes: vec![0; 1 << 18].into(),
    };
    assert_eq!(frame_cost(&data), 1 << 18);
    assert_eq!(frame_cost(&Message::StreamGone { stream: 1 }), 64);
}
