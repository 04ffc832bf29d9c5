//! A hostile server: the target role of `ferry pull`, in-process ([`crate::in_process`]),
//! played by a source that, after the handshake and a proper Root, sends what a real
//! source never would. The puller is the target here, so it is the one that must keep
//! every write inside DEST.
//!
//! DEST starts with files of its own and symlinks that point at a sentinel directory next
//! to it. In every case nothing outside DEST changes, nothing comes to exist at the paths
//! the hostile names point to, and no file in DEST is half-written: a file the pull wrote
//! holds the whole content it was sent, under its final name, and no partial is left.
//! A *refused* case also exits 12 (protocol) with an error that says what was wrong, and
//! leaves DEST's own entries as they were (valid entries listed before the bad one may
//! appear). The other cases look valid to the target, or cost only one file (exit 23):
//! it may replace its own entries, and each asserts the exact exit code ferry gives and
//! why.
//!
//! The cases under `real` run the real `ferry pull` against a fake server over TLS
//! ([`crate::raw_server`]), for what only the process shows: its exit status, its output
//! (a hostile server's words and names reach the terminal escaped) and TLS.

mod content;
mod joins;
mod names;
mod real;
mod scene;

use bytes::Bytes;
use ferry_engine::testing::Ended;
use ferry_proto::{
    encode, Content, Entry, Filter, Limits, Message, Meta, Rule, RuleKind, SessionOptions,
    Timestamp, PROTOCOL_VERSION,
};
use tempfile::TempDir;

use crate::files::{own_meta, random_bytes};
use crate::in_process::InProcess;
use crate::raw_server::{End, Step};
use crate::snapshot::Snapshot;
use scene::{assert_contained, assert_own_entries_untouched, scene, Place};

/// The content of every file entry (`size` 5); the fake server sends it for every `Want`
/// unless a case says otherwise.
const FILE_DATA: &[u8] = b"12345";

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

fn entry(name: &[u8], content: Content) -> Entry {
    let mode = if content == Content::Dir {
        0o755
    } else {
        0o644
    };
    Entry {
        name: name.to_vec(),
        meta: Meta { mode, ..meta() },
        content,
    }
}

fn file(name: &[u8]) -> Entry {
    let size = FILE_DATA.len() as u64;
    entry(
        name,
        Content::File {
            size,
            checksum: None,
        },
    )
}

fn dir(name: &[u8]) -> Entry {
    entry(name, Content::Dir)
}

fn link(name: &[u8], target: &[u8]) -> Entry {
    let target = target.to_vec();
    entry(name, Content::Symlink { target })
}

fn hard_link(name: &[u8], leader: u64, path: &[u8]) -> Entry {
    let path = path.to_vec();
    entry(name, Content::HardLink { leader, path })
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

fn list_end(entries: u64) -> Message {
    Message::ListEnd {
        entries,
        read_errors: 0,
    }
}

fn sends(messages: impl IntoIterator<Item = Message>) -> Vec<Step> {
    messages.into_iter().map(Step::Send).collect()
}

/// One List of the root with `entries`, then ListEnd (so that a target that lets the list
/// through goes on to finish, and the test fails on its exit code, not on a hang).
fn listing(entries: Vec<Entry>) -> Vec<Step> {
    let n = entries.len() as u64;
    sends([list(b"", 0, entries, true), list_end(n)])
}

fn data(index: u64, offset: u64, bytes: &'static [u8]) -> Step {
    let bytes = Bytes::from_static(bytes);
    Step::Send(Message::Data {
        index,
        offset,
        bytes,
    })
}

fn file_end(index: u64, size: u64, hash: [u8; 32]) -> Step {
    Step::Send(Message::FileEnd { index, size, hash })
}

/// The honest answer to a `Want`: all of [`FILE_DATA`] and its BLAKE3.
fn whole(index: u64) -> Vec<Step> {
    let hash = *blake3::hash(FILE_DATA).as_bytes();
    vec![
        data(index, 0, FILE_DATA),
        file_end(index, FILE_DATA.len() as u64, hash),
    ]
}

type Script = Box<dyn FnOnce(&Place) -> Vec<Step>>;

/// A hostile case, built up and then run by [`Hostile::refused`] or
/// [`Hostile::contained`] (in-process), or by their `real` twins.
struct Hostile {
    script: Script,
    answer: Box<dyn FnMut(u64) -> Vec<Step> + Send>,
    absent: Vec<&'static str>,
    /// `--exclude` patterns of the pull.
    excludes: Vec<&'static str>,
    /// Other `ferry pull` flags (real pulls only).
    args: Vec<&'static str>,
    /// What the server sends when the puller says `Done`.
    on_done: Vec<Step>,
}

/// A fake server that plays `script` after Welcome and Root (the volume root's own
/// attributes, so that applying them changes nothing) and answers each `Want` with
/// [`whole`].
fn hostile_server(script: impl FnOnce(&Place) -> Vec<Step> + 'static) -> Hostile {
    Hostile {
        script: Box::new(script),
        answer: Box::new(whole),
        absent: Vec::new(),
        excludes: Vec::new(),
        args: Vec::new(),
        on_done: crate::raw_server::source_done(),
    }
}

/// What the in-process puller sent after its handshake, and how its stream ended.
#[derive(Debug)]
struct Transcript {
    received: Vec<Message>,
    #[allow(dead_code)] // Shown in failures.
    end: End,
}

/// What one hostile session left behind.
struct Run {
    place: Place,
    before: Snapshot,
    /// How `ferry pull` would have exited, and the error it would have printed.
    ended: Ended,
    transcript: Transcript,
    _tmp: TempDir,
}

impl Hostile {
    /// Answers each `Want` for entry `index` with `answer(index)` instead of [`whole`].
    fn answering(mut self, answer: impl FnMut(u64) -> Vec<Step> + Send + 'static) -> Self {
        self.answer = Box::new(answer);
        self
    }

    /// Answers the puller's `Done` with `steps` instead of `SourceDone`.
    fn answering_done(mut self, steps: Vec<Step>) -> Self {
        self.on_done = steps;
        self
    }

    /// Pulls with `--exclude pattern`.
    fn excluding(mut self, pattern: &'static str) -> Self {
        self.excludes.push(pattern);
        self
    }

    /// Paths (`TMP` and `UNIQ` filled in) that must not exist afterwards.
    fn absent(mut self, paths: &[&'static str]) -> Self {
        self.absent.extend_from_slice(paths);
        self
    }

    /// Runs the pull and asserts it exits 12 with an error that says why, with
    /// everything [`Hostile::contained`] asserts, and that DEST's own entries and its
    /// root's mode and owner are unchanged.
    fn refused(self) -> Run {
        let run = self.contained(12);
        let error = run.ended.error.as_deref().unwrap_or_default();
        assert!(
            !error.trim().is_empty(),
            "the pull was refused without saying why\n{}",
            run.dump()
        );
        assert_own_entries_untouched(&run.place, &run.before);
        run
    }

    /// Runs the pull and asserts it exits with `code`, nothing outside DEST changed,
    /// nothing exists at the `absent` paths, and no file in DEST is half-written.
    fn contained(self, code: i32) -> Run {
        let absent = self.absent.clone();
        let run = self.run();
        assert_eq!(
            run.ended.code,
            code,
            "ferry pull: unexpected exit code\n{}",
            run.dump()
        );
        assert_contained(&run.place, &run.before, &absent, &run.dump());
        run
    }

    /// The pull's filter, as `ferry pull` builds it from these `--exclude` flags.
    fn filter(&self) -> Filter {
        let mut rules = vec![Rule::new(RuleKind::Exclude, b"/lost+found/").unwrap()];
        for pattern in &self.excludes {
            rules.push(Rule::new(RuleKind::Exclude, pattern.as_bytes()).unwrap());
        }
        Filter::checked(rules).expect("within the limits")
    }

    fn run(mut self) -> Run {
        assert!(
            self.args.is_empty(),
            "flags {:?} need a real pull (`real`)",
            self.args
        );
        let filter = self.filter();
        let (tmp, place, before) = scene();
        let dest = place.tmp.join("dest");
        let root = own_meta(&dest);
        let mut script = vec![Step::Send(Message::Root { meta: root })];
        script.extend((self.script)(&place));
        let mut client = InProcess::pull(&dest, SessionOptions::default(), filter);
        play(&mut client, script);
        let mut on_done = Some(self.on_done);
        let mut received = Vec::new();
        let end = loop {
            let message = match client.next() {
                Ok(Some(message)) => message,
                Ok(None) => break End::Eof,
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => break End::Stalled,
                Err(e) => break End::Failed(e.to_string()),
            };
            let reply = match message {
                Message::Want { index, .. } | Message::Resume { index, .. } => (self.answer)(index),
                Message::Done { .. } => on_done.take().unwrap_or_default(),
                _ => Vec::new(),
            };
            received.push(message);
            play(&mut client, reply);
        };
        let ended = client.finish();
        Run {
            place,
            before,
            ended,
            transcript: Transcript { received, end },
            _tmp: tmp,
        }
    }
}

/// Does `steps`, the bytes of each run of them in one write, as back-to-back frames
/// arrive over a socket (one by one in-process, the puller could finish between two of
/// them). Write errors are ignored, since a puller that hung up is seen by the next read.
fn play(client: &mut InProcess, steps: Vec<Step>) {
    let mut bytes = bytes::BytesMut::new();
    for step in steps {
        match step {
            Step::Send(message) => encode(&message, &mut bytes),
            Step::Raw(raw) => bytes.extend_from_slice(&raw),
            Step::CloseWrite => {
                let _ = client.send_raw(&bytes.split());
                client.close_write();
            }
        }
    }
    if !bytes.is_empty() {
        let _ = client.send_raw(&bytes);
    }
}

impl Run {
    fn dump(&self) -> String {
        format!(
            "{:?}\n--- the fake server got ---\n{:?}",
            self.ended, self.transcript
        )
    }

    fn wants(&self, index: u64) -> usize {
        let want = |m: &&Message| matches!(m, Message::Want { index: i, .. } if *i == index);
        self.transcript.received.iter().filter(want).count()
    }
}
