//! What the joined streams may queue while the session's driver cannot take it. The
//! source stops reading stream 0 after asking for itemized changes of thousands of
//! entries with long paths: the target's writer fills, and its driver waits to send
//! the next `Change`. Meanwhile the source floods the fifteen joined streams with the
//! largest frames the codec takes (a `List` of one entry with 4 MiB of extended
//! attributes; refused on a joined stream, but only once the driver reads it). What
//! the readers queue for the driver must stay bounded by `INCOMING_BYTES` in bytes, not
//! in a count of frames.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::thread;

use ferry_proto::Xattr;

use super::*;

/// Growth of serve's memory the test allows: the listing's state (16,000 entries of
/// 4 KiB paths, about 56 MiB measured without the flood), the queue to the driver
/// (16 MiB), and each joined reader's frame waiting for room with its read buffer
/// (15 × 2 × 4 MiB), with room for the allocator. Measured: about 184 MiB; more than
/// 1 GiB when a `List` was charged 64 bytes.
const GROWTH_BOUND_KIB: u64 = 256 * 1024;
/// The flood stops once serve has grown this much: the bound is broken, and the
/// machine is spared.
const GIVE_UP_KIB: u64 = 1024 * 1024;
/// How long the joined streams are flooded.
const FLOOD_FOR: Duration = Duration::from_millis(1500);
/// Frames each joined stream sends at most (4 MiB each).
const FRAMES: usize = 128;
/// Directories nested to make long paths (each name 250 bytes).
const DEPTH: usize = 15;
/// Files listed in the deepest directory, in frames of [`PER_FRAME`].
const FILES: usize = 16_000;
const PER_FRAME: usize = 4_000;

fn dir(name: &str) -> Entry {
    Entry {
        name: name.as_bytes().to_vec(),
        meta: Meta {
            mode: 0o755,
            ..meta()
        },
        content: Content::Dir,
    }
}

fn list(dir: &[u8], first: u64, entries: Vec<Entry>, dir_done: bool) -> Message {
    Message::List {
        dir: dir.to_vec(),
        first,
        entries,
        dir_done,
        dir_complete: true,
    }
}

/// The listing: `DEPTH` nested directories, then [`FILES`] files in the deepest, each
/// with a path of about 4 KiB: about 64 MiB of itemized `Change` frames.
fn deep_listing() -> Vec<Message> {
    let names: Vec<String> = (0..DEPTH).map(|k| format!("{k:0>250}")).collect();
    let mut frames = Vec::new();
    let mut path = String::new();
    for (k, name) in names.iter().enumerate() {
        frames.push(list(path.as_bytes(), k as u64, vec![dir(name)], true));
        if !path.is_empty() {
            path.push('/');
        }
        path.push_str(name);
    }
    for start in (0..FILES).step_by(PER_FRAME) {
        let entries = (start..start + PER_FRAME)
            .map(|i| file(&format!("f{i:0>254}"), 1))
            .collect();
        let done = start + PER_FRAME == FILES;
        frames.push(list(path.as_bytes(), (DEPTH + start) as u64, entries, done));
    }
    frames
}

/// A `List` of one entry with 62 extended attributes of 64 KiB: about 4 MiB.
fn fat_list() -> Message {
    let mut entry = file("x", 1);
    entry.meta.xattrs = (0..62)
        .map(|i| Xattr {
            name: format!("user.a{i:02}").into_bytes(),
            value: vec![0x5a; 64 << 10],
        })
        .collect();
    list(b"", 0, vec![entry], true)
}

#[test]
fn joined_streams_flooding_while_the_driver_waits_on_stream_0_stay_within_the_budget() {
    let options = SessionOptions {
        itemize: true,
        ..SessionOptions::default()
    };
    let mut multi = Multi::start_with(options, 15, |_| {});
    let pid = multi.server.pid();
    let baseline = multi.baseline_kib;
    // Stream 0 is never read from here on.
    let mut opener = multi.take(0);
    let stream_0 = opener.socket();
    let lister = thread::spawn(move || {
        for frame in deep_listing() {
            if opener.send(&frame).is_err() {
                break;
            }
        }
        opener
    });
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let stop = stop.clone();
        thread::spawn(move || {
            while !stop.load(Relaxed) {
                match status_kib(pid, "VmRSS") {
                    Some(kib) if kib > baseline + GIVE_UP_KIB => stop.store(true, Relaxed),
                    Some(_) => thread::sleep(Duration::from_millis(5)),
                    None => return,
                }
            }
        })
    };
    // Let the target plan and block on its writer first.
    thread::sleep(Duration::from_millis(500));
    let frame = fat_list();
    let mut sockets = vec![stream_0];
    let floods: Vec<_> = (1..=15u16)
        .map(|stream| {
            let mut client = multi.take(stream);
            sockets.push(client.socket());
            let (frame, stop) = (frame.clone(), stop.clone());
            thread::spawn(move || {
                for _ in 0..FRAMES {
                    if stop.load(Relaxed) || client.send(&frame).is_err() {
                        break;
                    }
                }
                client
            })
        })
        .collect();
    // A target that keeps its bound stops reading the joined streams: their writes
    // block until the connections are shut down.
    thread::sleep(FLOOD_FOR);
    stop.store(true, Relaxed);
    watcher.join().expect("watcher");
    for socket in sockets {
        let _ = socket.shutdown(std::net::Shutdown::Both);
    }
    for flood in floods {
        drop(flood.join().expect("flood"));
    }
    drop(lister.join().expect("lister"));
    let (ended, _files) = multi.finish();
    let growth = ended.growth_kib();
    eprintln!(
        "flood while the driver waits: serve {} KiB before, peak {} KiB, growth {growth} KiB; \
         exit {:?}",
        ended.baseline_kib, ended.peak_kib, ended.server.code
    );
    assert!(
        growth <= GROWTH_BOUND_KIB,
        "serve grew by {growth} KiB while its driver waited and the joined streams were \
         flooded, over {GROWTH_BOUND_KIB} KiB\n{}",
        ended.server.dump()
    );
}
