//! Work a peer's numbers set is bounded, and stops with the session; a basis changed
//! under a delta costs one file, never the process.
//!
//! * A file declared larger than the target filesystem is refused before a byte of it is
//!   hashed or written (a FileError naming it and both sizes; the run goes on, exit 23).
//! * A hole the target must hash (BLAKE3 of zeros costs time in proportion to its
//!   length) stops being hashed as soon as the session ends: the peer left, or `serve`
//!   got SIGTERM. The process exits promptly and burns little CPU after the peer left.
//!   The same holds for `ferry pull` against a hostile server.
//! * A basis truncated by another process while the target applies a delta against it
//!   (push to serve, and pull) does not kill the target (it was mapped: SIGBUS); the file
//!   is asked for again whole and ends correct.
//!
//! The holes are as large as the filesystem allows: a 1 TiB tmpfs (only a limit; tmpfs
//! allocates nothing until written), about ten minutes of hashing. The bounds below are
//! hang guards: a target that does not stop runs into them.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ferry_proto::{Content, Entry, Message, Meta, Timestamp};
use tempfile::TempDir;

use crate::files::{own_meta, random_bytes, read, set_mtime, write};
use crate::raw::{RawClient, Recv};
use crate::raw_server::{RawServer, Step};
use crate::util::{ferry, push, Certs, Server, Tmpfs};

/// How long a process may take to exit once its session ended or it was signalled.
const EXIT_GUARD: Duration = Duration::from_secs(20);

/// The most CPU a target may spend after its peer left (or the signal came): a hang
/// guard for the hashing that does not stop, which runs at a full core.
const CPU_AFTER_GUARD_TICKS: u64 = 300;

/// `/proc/PID/stat` after the command name: state, then the numeric fields.
fn stat_fields(path: &str) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(path).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// utime + stime of a process (all its threads, the dead ones included), in ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let f = stat_fields(&format!("/proc/{pid}/stat")).unwrap_or_default();
    let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    n(11) + n(12)
}

/// The threads of `pid` whose name starts with `prefix` (their /proc task directories).
fn threads(pid: u32, prefix: &str) -> Vec<PathBuf> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.starts_with(prefix))
        })
        .map(|t| t.path())
        .collect()
}

/// CPU ticks of the threads of `pid` whose name starts with `prefix`.
fn thread_ticks(pid: u32, prefix: &str) -> u64 {
    threads(pid, prefix)
        .into_iter()
        .map(|t| {
            let f = stat_fields(&t.join("stat").to_string_lossy()).unwrap_or_default();
            let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            n(11) + n(12)
        })
        .sum()
}

/// Whether `pid` has exited (a zombie waiting to be reaped, or gone).
fn exited(pid: u32) -> bool {
    match stat_fields(&format!("/proc/{pid}/stat")) {
        Some(f) => f.first().is_none_or(|s| s == "Z" || s == "X"),
        None => true,
    }
}

/// Polls `done` until it holds; panics with `what` after `bound`.
fn await_condition(what: &str, bound: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < bound, "{what}: not within {bound:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits until the apply workers of `pid` have spent half a second of CPU: the hole
/// is being hashed.
fn await_hashing(pid: u32) {
    await_condition("the target hashing the hole", EXIT_GUARD, || {
        thread_ticks(pid, "ferry-apply") >= 50
    });
}

/// Waits until `pid` exits (hang guard [`EXIT_GUARD`]); returns the CPU it spent from
/// `since` (ticks, as read by [`cpu_ticks`]) on.
fn await_exit(pid: u32, since: u64, what: &str) -> u64 {
    let start = Instant::now();
    let mut last = since;
    loop {
        let done = exited(pid);
        if let Some(ticks) = Some(cpu_ticks(pid)).filter(|t| *t > 0) {
            last = ticks;
        }
        if done {
            break;
        }
        assert!(
            start.elapsed() < EXIT_GUARD,
            "{what}: still running after {EXIT_GUARD:?}, {} ticks (1/100 s) of CPU since",
            last.saturating_sub(since)
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let after = last.saturating_sub(since);
    eprintln!("{what}: {after} ticks (1/100 s) of CPU after the peer left or the signal");
    assert!(
        after <= CPU_AFTER_GUARD_TICKS,
        "{what}: {after} ticks of CPU after the session ended"
    );
    after
}

fn file(name: &[u8], size: u64) -> Entry {
    Entry {
        name: name.to_vec(),
        meta: Meta {
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: Timestamp {
                sec: 1_600_000_000,
                nsec: 0,
            },
            xattrs: Vec::new(),
        },
        content: Content::File {
            size,
            checksum: None,
        },
    }
}

fn listing(entries: Vec<Entry>) -> [Message; 2] {
    let n = entries.len() as u64;
    [
        Message::List {
            dir: Vec::new(),
            first: 0,
            entries,
            dir_done: true,
            dir_complete: true,
        },
        Message::ListEnd {
            entries: n,
            read_errors: 0,
        },
    ]
}

fn hole(index: u64, len: u64) -> Message {
    Message::Hole {
        index,
        offset: 0,
        len,
    }
}

/// A `serve --once` of `vol` and a raw source in session with it, Root sent.
fn serve_with_raw_source(vol: &Path) -> (Certs, Server, RawClient) {
    let certs = Certs::new();
    let server = Server::builder(&certs).volume("v", vol).once().start();
    let mut client = RawClient::connect_as_client(&server.addr, &certs.client_dir());
    client.start_session("v");
    client
        .send(&Message::Root {
            meta: own_meta(vol),
        })
        .expect("send Root");
    (certs, server, client)
}

/// The next Want or FileError from the target (Acks and the like skipped).
fn want_or_file_error(client: &mut RawClient) -> Message {
    loop {
        match client.recv() {
            Recv::Msg(m @ (Message::Want { .. } | Message::FileError { .. })) => return m,
            Recv::Msg(_) => continue,
            other => panic!("the target ended the session instead: {other:?}"),
        }
    }
}

/// A child process with its output drained, killed on drop.
struct Spawned {
    child: Child,
    out: Option<JoinHandle<String>>,
    err: Option<JoinHandle<String>>,
}

impl Spawned {
    fn start(cmd: &mut Command) -> Spawned {
        let mut child = cmd
            .env_remove("FERRY_PROXY")
            .env_remove("HTTPS_PROXY")
            .env_remove("https_proxy")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ferry");
        let drain = |mut r: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut s = String::new();
                let _ = r.read_to_string(&mut s);
                s
            })
        };
        let out = Some(drain(Box::new(child.stdout.take().unwrap())));
        let err = Some(drain(Box::new(child.stderr.take().unwrap())));
        Spawned { child, out, err }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits (hang guard `bound` from now) and returns the exit code (`None`: killed by
    /// a signal) and everything it printed. Says how much CPU it used in all.
    fn finish(mut self, what: &str, bound: Duration) -> (Option<i32>, String) {
        await_condition(what, bound, || exited(self.child.id()));
        let ticks = cpu_ticks(self.child.id());
        eprintln!("{what}: {ticks} ticks (1/100 s) of CPU in all");
        let status = self.child.wait().expect("wait");
        let out = self.out.take().unwrap().join().unwrap_or_default();
        let err = self.err.take().unwrap().join().unwrap_or_default();
        let shown = format!("{status:?}\n--- stdout ---\n{out}\n--- stderr ---\n{err}");
        (status.code(), shown)
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pull_command(certs: &Certs, url: &str, dest: &Path) -> Command {
    let mut cmd = ferry();
    cmd.arg("pull")
        .arg(url)
        .arg(dest)
        .arg("--tls-dir")
        .arg(certs.client_dir());
    cmd
}

/// A hostile server that lists `entries`, then plays `then` and closes, answering each
/// Want with `answer`; and a `ferry pull` of it into `dest`, waited for with the hang
/// guard. Returns the pull's exit code and output.
fn pull_from_hostile(
    dest: &Path,
    entries: Vec<Entry>,
    then: Vec<Message>,
    answer: impl FnMut(u64) -> Vec<Step> + Send + 'static,
) -> (Option<i32>, String) {
    let mut script = vec![Step::Send(Message::Root {
        meta: own_meta(dest),
    })];
    script.extend(listing(entries).into_iter().map(Step::Send));
    script.extend(then.into_iter().map(Step::Send));
    let certs = Certs::new();
    let server = RawServer::start(&certs.server_dir(), script, Box::new(answer));
    let pull = Spawned::start(&mut pull_command(&certs, &server.url(), dest));
    let result = pull.finish("ferry pull against a hostile hole", EXIT_GUARD);
    let _ = server.finish();
    result
}

mod basis;
mod holes;
