//! The target's memory under sixteen streams flooded at once. What the joined streams
//! may queue for the session's driver is bounded (`INCOMING_BYTES`, 16 MiB), what the
//! apply workers hold too (`APPLY_BYTES`, 32 MiB), and each reader holds one frame: so
//! a source flooding every stream with the largest frames the codec allows costs the
//! target a bounded amount, whether nothing it sends was asked for (refused at the
//! first frame the driver reads) or all of it was (sixteen files at once, received
//! whole).

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::thread;

use bytes::Bytes;
use ferry_proto::{Limits, SmallFile};

use super::*;

/// What a flood may cost the target above its resident memory before the session: its
/// readers (16 × one 4 MiB frame and its buffer), the queue to the driver, the apply
/// budget, TLS and the runtime, with room for the allocator.
pub(super) const GROWTH_BOUND_KIB: u64 = 200 * 1024;

/// How much one flooding stream sends at most if the target never stops it.
const FLOOD_CAP: u64 = 1 << 30;

fn piece() -> Bytes {
    content(Limits::default().data_chunk as u64).into()
}

/// Sends `frame` on `client` until the target stops taking it, the test has seen the
/// session end (`stop`: the server reads what a joined stream still brings for a few
/// seconds after that), or [`FLOOD_CAP`] went out; returns the connection.
fn flood(
    mut client: RawClient,
    frame: Message,
    frame_bytes: u64,
    stop: Arc<AtomicBool>,
) -> RawClient {
    let mut sent = 0;
    while sent < FLOOD_CAP && !stop.load(Relaxed) && client.send(&frame).is_ok() {
        sent += frame_bytes;
    }
    client
}

fn report(what: &str, ended: &Ended) -> u64 {
    let growth = ended.growth_kib();
    eprintln!(
        "{what}: serve's resident memory {} KiB before, peak {} KiB, growth {growth} KiB",
        ended.baseline_kib, ended.peak_kib
    );
    growth
}

#[test]
fn fifteen_joined_streams_flooding_frames_nobody_asked_for_are_refused_with_memory_bounded() {
    let mut multi = Multi::start(15, |_| {});
    multi.list(vec![file("asked", CREDIT)]);
    let [asked] = multi.asks(1)[..] else {
        unreachable!("asks(1) returns one")
    };
    let piece = piece();
    let files = Message::Files {
        files: (0..16)
            .map(|i| SmallFile {
                index: 100 + i,
                hash: [0; 32],
                bytes: piece.clone(),
            })
            .collect(),
    };
    let start = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let floods: Vec<_> = (1..=15u16)
        .map(|stream| {
            let client = multi.take(stream);
            // Data for the asked file on a stream it was not asked on (or, on its own
            // stream, for an entry never listed); Files frames of entries never listed.
            let (frame, bytes) = match stream % 2 {
                0 => (files.clone(), 16 * piece.len() as u64),
                _ => {
                    let index = if stream == asked.stream {
                        7
                    } else {
                        asked.index
                    };
                    let data = Message::Data {
                        index,
                        offset: 0,
                        bytes: piece.clone(),
                    };
                    (data, piece.len() as u64)
                }
            };
            let stop = stop.clone();
            thread::spawn(move || flood(client, frame, bytes, stop))
        })
        .collect();
    let seen = multi.until_end(|_, _| {});
    let refused_after = start.elapsed();
    stop.store(true, Relaxed);
    for flood in floods {
        drop(flood.join().expect("flood thread"));
    }
    let (ended, files) = multi.finish();
    ended.assert_protocol_error(&seen, "for entry");
    files.assert_contained_and_absent(&["asked"]);
    eprintln!("refused {refused_after:?} after the flood began");
    let growth = report("15 streams of unasked frames", &ended);
    assert!(
        growth <= GROWTH_BOUND_KIB,
        "serve grew by {growth} KiB under the flood, over {GROWTH_BOUND_KIB} KiB"
    );
}

#[test]
fn sixteen_streams_flooding_the_files_they_were_asked_for_stay_within_the_budgets() {
    const FILES: u64 = 16;
    let mut multi = Multi::start(15, |_| {});
    multi.list(
        (0..FILES)
            .map(|i| file(&format!("f{i:02}"), CREDIT))
            .collect(),
    );
    let asks = multi.asks(FILES as usize);
    let piece = piece();
    let chunk = piece.len() as u64;
    let whole = piece.repeat((CREDIT / chunk) as usize);
    let hash = *blake3::hash(&whole).as_bytes();
    let senders: Vec<_> = (0..=15u16)
        .map(|stream| {
            let mut client = multi.take(stream);
            let mine: Vec<u64> = asks
                .iter()
                .filter(|a| a.stream == stream)
                .map(|a| a.index)
                .collect();
            let piece = piece.clone();
            thread::spawn(move || {
                for index in mine {
                    for k in 0..CREDIT / chunk {
                        let data = Message::Data {
                            index,
                            offset: k * chunk,
                            bytes: piece.clone(),
                        };
                        client.send(&data).expect("send Data");
                    }
                    let end = Message::FileEnd {
                        index,
                        size: CREDIT,
                        hash,
                    };
                    client.send(&end).expect("send FileEnd");
                }
                (stream, client)
            })
        })
        .collect();
    for sender in senders {
        let (stream, client) = sender.join().expect("sender thread");
        multi.streams[usize::from(stream)] = Some(client);
    }
    let seen = multi.until_end(|_, _| {});
    let (ended, files) = multi.finish();
    assert!(
        matches!(seen.last(), Some(Recv::Msg(Message::Done { .. }))),
        "the session did not end with Done: {:?}\n{}",
        seen.last(),
        ended.server.dump()
    );
    assert_eq!(ended.server.code, Some(0), "{}", ended.server.dump());
    for i in 0..FILES {
        let path = files.vol.join(format!("f{i:02}"));
        let got = std::fs::read(&path).unwrap_or_default();
        assert!(got == whole, "{} is not the file sent", path.display());
    }
    let streams: std::collections::BTreeSet<u16> = asks.iter().map(|a| a.stream).collect();
    eprintln!("the 16 files were asked on streams {streams:?}");
    let growth = report("16 streams of asked files", &ended);
    assert!(
        growth <= GROWTH_BOUND_KIB,
        "serve grew by {growth} KiB receiving 16 files at once, over {GROWTH_BOUND_KIB} KiB"
    );
}
