//! A hostile source: after a proper Hello/Welcome/Root, frames that break the protocol.
//!
//! Each case runs against a fresh `serve --once` whose volume lies next to a sentinel
//! directory. The target must end the session with a protocol `Error` (or just close),
//! `serve --once` must exit 12, and nothing may change: not the sentinel, not the volume's
//! pre-existing files, not the directory around them, nothing at the absolute paths a name
//! points to, and the target's peak memory stays under a fixed bound. (Valid entries
//! listed before the bad one may appear inside the volume.)
//! The `contained` cases look valid to the target; for them only the last part holds.

mod contained;
mod data;
mod filters;
mod frames;
mod listing;
mod names;

use ferry_proto::{Content, Entry, ErrorClass, Message, Meta, Timestamp};
use tempfile::TempDir;

use crate::files::{own_meta, symlink, write};
use crate::raw::{RawClient, Recv};
use crate::snapshot::{assert_untouched, Snapshot};
use crate::util::{Certs, Output, Server};

fn meta() -> Meta {
    Meta {
        mode: 0o644,
        uid: 0,
        gid: 0,
        mtime: Timestamp {
            sec: 1_600_000_000,
            nsec: 0,
        },
        xattrs: Vec::new(),
    }
}

/// The content of every file entry (`size` 5), sent when the target wants it.
const FILE_DATA: &[u8] = b"12345";

fn file(name: &[u8]) -> Entry {
    Entry {
        name: name.to_vec(),
        meta: meta(),
        content: Content::File {
            size: 5,
            checksum: None,
        },
    }
}

fn dir(name: &[u8]) -> Entry {
    Entry {
        name: name.to_vec(),
        meta: Meta {
            mode: 0o755,
            ..meta()
        },
        content: Content::Dir,
    }
}

fn hard_link(name: &[u8], leader: u64, path: &[u8]) -> Entry {
    Entry {
        name: name.to_vec(),
        meta: meta(),
        content: Content::HardLink {
            leader,
            path: path.to_vec(),
        },
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

/// A name no other test or run uses, for absolute paths that must not come to exist.
fn unique(tmp: &TempDir) -> String {
    tmp.path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// What one hostile session left behind.
struct Run {
    tmp: TempDir,
    uniq: String,
    before: Snapshot,
    seen: Vec<Recv>,
    server: Output,
    /// The target's peak resident memory (VmHWM) as last seen before it exited.
    peak_rss_kib: u64,
}

/// The most resident memory a target may reach under any hostile case: every length
/// the peer sends is bounded before anything is allocated for it, so an attack costs
/// no more than an honest session of one tiny file (about 15 MiB here).
const PEAK_RSS_BOUND_KIB: u64 = 64 * 1024;

/// Samples the VmHWM of process `pid` until it exits (a zombie has none); returns the
/// last value seen. VmHWM only grows, so this is the peak up to the process's last
/// moments: it can miss growth in those, never report more than there was.
fn watch_peak_rss(pid: u32) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut peak = 0;
        loop {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            let hwm = status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
            match hwm {
                Some(kib) => peak = peak.max(kib),
                None => return peak,
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    })
}

/// The volume `vol` (with pre-existing files and symlinks that point at the sentinel) next
/// to `sentinel/`, a fresh `serve --once`, and a session with Root sent; then `attack`
/// (given a unique name) and the target's answers until it ends the session. Every `Want`
/// is served with the 5 bytes [`FILE_DATA`]; write errors (the target hung up) are ignored.
fn run_session(attack: impl FnOnce(&mut RawClient, &str)) -> Run {
    let tmp = TempDir::new().unwrap();
    let uniq = unique(&tmp);
    let vol = tmp.path().join("vol");
    write(&vol.join("pre.txt"), b"pre-existing\n", 0o644);
    write(&vol.join("predir/inner.txt"), b"inner\n", 0o600);
    symlink(b"pre.txt", &vol.join("prelink"));
    symlink(b"../sentinel/s.txt", &vol.join("out-link"));
    symlink(b"../sentinel/sub", &vol.join("out-dir"));
    write(&tmp.path().join("sentinel/s.txt"), b"sentinel\n", 0o644);
    write(
        &tmp.path().join("sentinel/sub/t.txt"),
        b"sentinel t\n",
        0o600,
    );
    let before = Snapshot::take(tmp.path());

    let certs = Certs::new();
    let server = Server::builder(&certs).volume("v", &vol).once().start();
    let peak_rss = watch_peak_rss(server.pid());
    let mut client = RawClient::connect_as_client(&server.addr, &certs.client_dir());
    client.start_session("v");
    // The volume root's own attributes, so that applying them changes nothing.
    let root = own_meta(&vol);
    client
        .send(&Message::Root { meta: root })
        .expect("send Root");
    attack(&mut client, &uniq);
    let seen = client.recv_until_end_with(|client, msg| {
        if let Message::Want { index, .. } = *msg {
            send_ignoring_hangup(
                client,
                &[
                    Message::Data {
                        index,
                        offset: 0,
                        bytes: FILE_DATA.to_vec().into(),
                    },
                    Message::FileEnd {
                        index,
                        size: FILE_DATA.len() as u64,
                        hash: *blake3::hash(FILE_DATA).as_bytes(),
                    },
                ],
            );
        }
    });
    drop(client);
    let server = server.finish();
    let peak_rss_kib = peak_rss.join().expect("memory watcher");
    Run {
        tmp,
        uniq,
        before,
        seen,
        server,
        peak_rss_kib,
    }
}

/// Asserts the target stayed within [`PEAK_RSS_BOUND_KIB`] (and that it was measured).
fn assert_memory_bounded(run: &Run) {
    eprintln!("target peak RSS: {} KiB", run.peak_rss_kib);
    assert!(
        run.peak_rss_kib > 0,
        "the target's memory was never sampled"
    );
    assert!(
        run.peak_rss_kib <= PEAK_RSS_BOUND_KIB,
        "the target reached {} KiB resident, over the bound of {PEAK_RSS_BOUND_KIB} KiB",
        run.peak_rss_kib
    );
}

/// Asserts nothing outside the volume changed and no `absent` path exists.
fn assert_contained(run: &Run, absent: &[&str]) {
    let after = Snapshot::take(run.tmp.path());
    assert_untouched(
        &run.before.clone().without(b"vol"),
        &after.clone().without(b"vol"),
    );
    for path in absent {
        let path = path.replace("UNIQ", &run.uniq);
        assert!(
            std::fs::symlink_metadata(&path).is_err(),
            "{path} was created outside the volume"
        );
    }
}

/// A hostile case that must be refused: protocol `Error` (or a close), exit 12, nothing
/// changed outside the volume or to what was in it. `absent` lists absolute paths
/// (with `UNIQ` for the unique name) that must not exist afterwards.
fn hostile_case(attack: impl FnOnce(&mut RawClient, &str), absent: &[&str]) {
    let run = run_session(attack);
    match run.seen.last() {
        Some(
            Recv::Msg(Message::Error {
                class: ErrorClass::Protocol,
                ..
            })
            | Recv::Eof
            | Recv::Failed(_),
        ) => {}
        _ => panic!(
            "the target did not refuse the session; it sent: {:?}\nserver:\n{}",
            run.seen,
            run.server.dump()
        ),
    }
    assert_eq!(
        run.server.code,
        Some(12),
        "serve --once should exit 12 (protocol)\n{}",
        run.server.dump()
    );
    assert_contained(&run, absent);
    assert_memory_bounded(&run);
    // Inside the volume, valid entries listed before the bad one may have been created;
    // what was there before must be as it was.
    let after = Snapshot::take(run.tmp.path());
    let pre_existing = |s: &Snapshot| {
        let mut s = s.clone();
        s.nodes
            .retain(|k, _| k.starts_with(b"vol/") && run.before.nodes.contains_key(k));
        s
    };
    assert_untouched(&pre_existing(&run.before), &pre_existing(&after));
    let (b, a) = (run.before.get(b"vol"), after.get(b"vol"));
    assert_eq!(
        (b.mode, b.uid, b.gid),
        (a.mode, a.uid, a.gid),
        "the volume root's mode or owner changed"
    );
}

fn send_ignoring_hangup(client: &mut RawClient, msgs: &[Message]) {
    for m in msgs {
        if client.send(m).is_err() {
            return;
        }
    }
}

/// One List of the root with these entries, then ListEnd (so that a target that lets the
/// list through goes on to finish, and the test fails on its `Done`, not on a hang).
fn bad_entries(entries: Vec<Entry>, absent: &[&str]) {
    let end = Message::ListEnd {
        entries: entries.len() as u64,
        read_errors: 0,
    };
    hostile_case(
        |c, _| send_ignoring_hangup(c, &[list(b"", 0, entries, true), end]),
        absent,
    );
}

/// A case the target may accept: only nothing outside the volume may change.
fn contained_case(frames: Vec<Message>) {
    let run = run_session(|c, _| send_ignoring_hangup(c, &frames));
    assert_contained(&run, &[]);
    assert_memory_bounded(&run);
}
