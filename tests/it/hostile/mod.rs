//! A hostile source: after a proper Hello/Welcome/Root, frames that break the protocol.
//!
//! Each case runs against the target role of `serve`, in-process ([`crate::in_process`]),
//! on a volume that lies next to a sentinel directory. The target must end the session
//! with a protocol `Error` (or just close) and say what was wrong, `serve --once` would
//! exit 12, and nothing may change: not the sentinel, not the volume's pre-existing
//! files, not the directory around them, nothing at the absolute paths a name points to.
//! (Valid entries listed before the bad one may appear inside the volume.)
//! The `contained` cases look valid to the target; for them only the last part holds.
//!
//! The cases under `real` run a real `serve --once` over TLS instead, for what only a
//! process shows: the target's peak memory under an attack, the CPU a filter costs, the
//! refusal of a Hello, the exit status and log of the binary.

mod contained;
mod data;
mod frames;
mod listing;
mod names;
mod real;

use ferry_engine::testing::Ended;
use ferry_proto::{Content, Entry, ErrorClass, Message, Meta, Timestamp};
use tempfile::TempDir;

use crate::files::{own_meta, symlink, write};
use crate::in_process::InProcess;
use crate::raw::Recv;
use crate::snapshot::{assert_untouched, Snapshot};

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

/// The volume `vol` (with pre-existing files, and symlinks that point at the sentinel)
/// next to `sentinel/`, as a case found them.
struct Scene {
    tmp: TempDir,
    uniq: String,
    before: Snapshot,
}

impl Scene {
    fn new() -> Scene {
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
        Scene { tmp, uniq, before }
    }

    fn vol(&self) -> std::path::PathBuf {
        self.tmp.path().join("vol")
    }

    /// Asserts nothing outside the volume changed and no `absent` path exists.
    fn assert_contained(&self, absent: &[&str]) {
        let after = Snapshot::take(self.tmp.path());
        assert_untouched(
            &self.before.clone().without(b"vol"),
            &after.clone().without(b"vol"),
        );
        for path in absent {
            let path = path.replace("UNIQ", &self.uniq);
            assert!(
                std::fs::symlink_metadata(&path).is_err(),
                "{path} was created outside the volume"
            );
        }
    }

    /// Asserts what was in the volume before is as it was, the volume root's mode and
    /// owner too. (Valid entries listed before a bad one may have been created.)
    fn assert_pre_existing_untouched(&self) {
        let after = Snapshot::take(self.tmp.path());
        let pre_existing = |s: &Snapshot| {
            let mut s = s.clone();
            s.nodes
                .retain(|k, _| k.starts_with(b"vol/") && self.before.nodes.contains_key(k));
            s
        };
        assert_untouched(&pre_existing(&self.before), &pre_existing(&after));
        let (b, a) = (self.before.get(b"vol"), after.get(b"vol"));
        assert_eq!(
            (b.mode, b.uid, b.gid),
            (a.mode, a.uid, a.gid),
            "the volume root's mode or owner changed"
        );
    }
}

/// Whether the target's last word ended the session as a refusal: a protocol `Error`,
/// or the connection closed or broken.
fn is_refusal(seen: &[Recv]) -> bool {
    matches!(
        seen.last(),
        Some(
            Recv::Msg(Message::Error {
                class: ErrorClass::Protocol,
                ..
            }) | Recv::Eof
                | Recv::Failed(_)
        )
    )
}

/// What one hostile session left behind.
struct Run {
    scene: Scene,
    seen: Vec<Recv>,
    /// How `serve --once` would have exited, and the error it would have logged.
    ended: Ended,
}

/// The honest answer to a `Want` for entry `index`: all of [`FILE_DATA`] and its end.
fn whole_file(index: u64) -> [Message; 2] {
    [
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
    ]
}

/// A fresh [`Scene`] and an in-process target session on its volume, with Root sent;
/// then `attack` (given a unique name) and the target's answers until it ends the
/// session. Every `Want` is served with the 5 bytes [`FILE_DATA`]; write errors (the
/// target hung up) are ignored.
fn run_session(attack: impl FnOnce(&mut InProcess, &str)) -> Run {
    let scene = Scene::new();
    let vol = scene.vol();
    let mut client = InProcess::serve(&vol);
    // The volume root's own attributes, so that applying them changes nothing.
    let root = own_meta(&vol);
    client
        .send(&Message::Root { meta: root })
        .expect("send Root");
    attack(&mut client, &scene.uniq);
    let seen = client.recv_until_end_with(|client, msg| {
        if let Message::Want { index, .. } = *msg {
            send_ignoring_hangup(client, &whole_file(index));
        }
    });
    let ended = client.finish();
    Run { scene, seen, ended }
}

/// A hostile case that must be refused: protocol `Error` (or a close), exit 12 with an
/// error that says what was wrong (the one the peer was told, if it was), nothing
/// changed outside the volume or to what was in it. `absent` lists absolute paths
/// (with `UNIQ` for the unique name) that must not exist afterwards.
fn hostile_case(attack: impl FnOnce(&mut InProcess, &str), absent: &[&str]) {
    let run = run_session(attack);
    assert!(
        is_refusal(&run.seen),
        "the target did not refuse the session; it sent: {:?}\n{:?}",
        run.seen,
        run.ended
    );
    assert_eq!(
        run.ended.code, 12,
        "serve --once would not exit 12 (protocol): {:?}",
        run.ended
    );
    assert_says_why(&run);
    run.scene.assert_contained(absent);
    run.scene.assert_pre_existing_untouched();
}

/// Asserts the session ended with an error message, and that an `Error` the source
/// was sent (if it got one) says the same.
fn assert_says_why(run: &Run) {
    let error = run.ended.error.as_deref().unwrap_or_default();
    assert!(
        !error.trim().is_empty(),
        "the target ended without saying why: {:?}",
        run.ended
    );
    if let Some(Recv::Msg(Message::Error { message, .. })) = run.seen.last() {
        assert_eq!(message, error, "the source was told another reason");
    }
}

/// Sends `msgs` in one write, as frames sent back to back arrive over a socket: the
/// target reads them together. (Sent one by one in-process, the target could finish
/// between two of them, and a frame after a file's last would come after its `Done`.)
fn send_ignoring_hangup(client: &mut InProcess, msgs: &[Message]) {
    let mut frames = bytes::BytesMut::new();
    for m in msgs {
        ferry_proto::encode(m, &mut frames);
    }
    let _ = client.send_raw(&frames);
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
    run.scene.assert_contained(&[]);
}
