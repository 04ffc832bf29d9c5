//! A source that floods the target with file data: every file it is asked for comes
//! back at once in the largest `Data` frames the limits allow (`Limits::data_chunk`,
//! 256 KiB; a larger one is refused by the codec), as fast as the connection takes them. What the target queues for its apply workers is bounded by
//! its byte budget (`APPLY_BYTES`, 32 MiB), so its resident memory stays flat however
//! much is sent; the files still arrive whole.

use ferry_proto::{Content, Entry, Limits};

use super::*;

/// Files the source is asked for, each [`FRAMES`] frames of [`FRAME`] bytes: 256 MiB.
const FILES: u64 = 16;
const FRAMES: u64 = 64;
const FRAME: usize = 256 << 10;

/// What a target fed this may reach resident: its readers (one frame and its read
/// buffer), the budget, TLS and the runtime, with room for the allocator.
const FLOOD_RSS_BOUND_KIB: u64 = 150 * 1024;

#[test]
fn a_source_flooding_data_frames_keeps_the_target_within_its_budget() {
    assert_eq!(FRAME, Limits::default().data_chunk);
    let scene = Scene::new();
    let vol = scene.vol();
    let certs = Certs::new();
    let server = Server::builder(&certs).volume("v", &vol).once().start();
    let peak_rss = watch_peak_rss(server.pid());
    let mut client = RawClient::connect_as_client(&server.addr, &certs.client_dir());
    client.start_session("v");
    client
        .send(&Message::Root {
            meta: own_meta(&vol),
        })
        .expect("send Root");
    let size = FRAMES * FRAME as u64;
    let entries = (0..FILES)
        .map(|i| Entry {
            name: format!("flood{i:02}").into_bytes(),
            meta: meta(),
            content: Content::File {
                size,
                checksum: None,
            },
        })
        .collect();
    client
        .send(&list(b"", 0, entries, true))
        .expect("send List");
    client
        .send(&Message::ListEnd {
            entries: FILES,
            read_errors: 0,
        })
        .expect("send ListEnd");
    let piece: bytes::Bytes = (0..FRAME)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<_>>()
        .into();
    let mut whole = blake3::Hasher::new();
    for _ in 0..FRAMES {
        whole.update(&piece);
    }
    let hash = *whole.finalize().as_bytes();
    let seen = client.recv_until_end_with(|client, msg| {
        if let Message::Want { index, .. } = *msg {
            for k in 0..FRAMES {
                let data = Message::Data {
                    index,
                    offset: k * FRAME as u64,
                    bytes: piece.clone(),
                };
                if client.send(&data).is_err() {
                    return;
                }
            }
            let _ = client.send(&Message::FileEnd { index, size, hash });
        }
    });
    drop(client);
    let server = server.finish();
    let peak_rss_kib = peak_rss.join().expect("memory watcher");
    assert!(
        matches!(seen.last(), Some(Recv::Msg(Message::Done { .. }))),
        "the session did not end with Done: {:?}\nserver:\n{}",
        seen.iter().rev().take(3).collect::<Vec<_>>(),
        server.dump()
    );
    for i in 0..FILES {
        let path = vol.join(format!("flood{i:02}"));
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        assert_eq!(len, size, "{} is not whole", path.display());
    }
    eprintln!("target peak RSS under the flood: {peak_rss_kib} KiB");
    assert!(peak_rss_kib > 0, "the target's memory was never sampled");
    assert!(
        peak_rss_kib <= FLOOD_RSS_BOUND_KIB,
        "the target reached {peak_rss_kib} KiB resident under a flood of {} MiB, over the \
         bound of {FLOOD_RSS_BOUND_KIB} KiB",
        (FILES * size) >> 20
    );
}
