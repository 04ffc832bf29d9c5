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
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ferry_proto::{Content, Entry, Message, Meta, Timestamp};
use tempfile::TempDir;

use crate::files::{random_bytes, read, set_mtime, write};
use crate::raw::{RawClient, Recv};
use crate::raw_server::{RawServer, Step};
use crate::util::{ferry, push, Certs, Server};

/// How long a process may take to exit once its session ended or it was signalled.
const EXIT_GUARD: Duration = Duration::from_secs(20);

/// The most CPU a target may spend after its peer left (or the signal came): a hang
/// guard for the hashing that does not stop, which runs at a full core.
const CPU_AFTER_GUARD_TICKS: u64 = 300;

/// A tmpfs mounted for the test, unmounted on drop.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mount tmpfs on {dir:?} failed (needs root)"
        );
        Tmpfs {
            dir: dir.to_path_buf(),
        }
    }

    /// The filesystem's size, as the target reads it (`f_blocks * f_frsize`).
    fn capacity(&self) -> u64 {
        let stat = rustix::fs::statvfs(&self.dir).expect("statvfs");
        stat.f_blocks * stat.f_frsize
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

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

/// Waits until the receiver threads of `pid` have spent half a second of CPU: the hole
/// is being hashed.
fn await_hashing(pid: u32) {
    await_condition("the target hashing the hole", EXIT_GUARD, || {
        thread_ticks(pid, "ferry-recv") >= 50
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

/// The volume root's own attributes, so that applying them changes nothing.
fn root_meta(path: &Path) -> Meta {
    let m = std::fs::symlink_metadata(path).unwrap();
    Meta {
        mode: m.mode() & 0o7777,
        uid: m.uid(),
        gid: m.gid(),
        mtime: Timestamp {
            sec: m.mtime(),
            nsec: m.mtime_nsec() as u32,
        },
        xattrs: Vec::new(),
    }
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
            meta: root_meta(vol),
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

#[test]
fn serve_refuses_a_file_larger_than_its_filesystem_and_its_hole_costs_nothing() {
    let tmp = TempDir::new().unwrap();
    let vol = tmp.path().join("vol");
    std::fs::create_dir(&vol).unwrap();
    let (_certs, server, mut client) = serve_with_raw_source(&vol);
    let pid = server.pid();
    let [list, end] = listing(vec![file(b"huge.img", 1 << 60)]);
    client.send(&list).expect("send the listing");
    let answer = want_or_file_error(&mut client);
    // The hole goes out whatever the answer (a target that asked for the file hashes
    // it), before the listing's end (so the session is still reading).
    let _ = client.send(&hole(0, 1 << 60));
    let _ = client.send(&end);
    drop(client);
    let since = cpu_ticks(pid);
    await_exit(pid, since, "serve after a 2^60-byte hole");
    let out = server.finish();
    match &answer {
        Message::FileError { path, message } => {
            assert_eq!(path, b"huge.img");
            assert!(
                message.contains(&(1u64 << 60).to_string()) && message.contains("filesystem"),
                "the error names both sizes: {message}"
            );
        }
        other => panic!("the target asked for a 2^60-byte file: {other:?}"),
    }
    // The hole was for a file nobody asked for.
    assert_eq!(out.code, Some(12), "{}", out.dump());
}

#[test]
fn serve_stops_hashing_a_hole_when_the_source_leaves() {
    let tmp = TempDir::new().unwrap();
    let big = Tmpfs::mount(&tmp.path().join("vol"), "1t");
    let size = big.capacity();
    let (_certs, server, mut client) = serve_with_raw_source(&big.dir);
    let pid = server.pid();
    for m in listing(vec![file(b"disk.img", size)]) {
        client.send(&m).expect("send the listing");
    }
    let want = want_or_file_error(&mut client);
    assert!(matches!(want, Message::Want { index: 0, .. }), "{want:?}");
    client.send(&hole(0, size)).expect("send the hole");
    await_hashing(pid);
    let since = cpu_ticks(pid);
    drop(client);
    await_exit(pid, since, "serve after the source left mid-hole");
    let out = server.finish();
    assert_eq!(out.code, Some(10), "{}", out.dump());
    drop(big);
}

/// A `serve` (not `--once`) hashing a hole as large as its filesystem allows; then,
/// if `source_leaves`, the source leaves and the receiver threads stop (serve itself
/// goes on serving); then SIGTERM: serve exits 20, promptly.
fn sigterm_while_hashing(source_leaves: bool) {
    let tmp = TempDir::new().unwrap();
    let big = Tmpfs::mount(&tmp.path().join("vol"), "1t");
    let size = big.capacity();
    let certs = Certs::new();
    let server = Server::builder(&certs).volume("v", &big.dir).start();
    let pid = server.pid();
    let mut client = RawClient::connect_as_client(&server.addr, &certs.client_dir());
    client.start_session("v");
    let root = Message::Root {
        meta: root_meta(&big.dir),
    };
    for m in [root]
        .into_iter()
        .chain(listing(vec![file(b"disk.img", size)]))
    {
        client.send(&m).expect("send the listing");
    }
    let want = want_or_file_error(&mut client);
    assert!(matches!(want, Message::Want { index: 0, .. }), "{want:?}");
    client.send(&hole(0, size)).expect("send the hole");
    await_hashing(pid);
    let since = cpu_ticks(pid);
    if source_leaves {
        drop(client);
        await_condition("the receivers stopping", EXIT_GUARD, || {
            threads(pid, "ferry-recv").is_empty()
        });
    }
    let target = rustix::process::Pid::from_raw(pid as i32).expect("pid");
    rustix::process::kill_process(target, rustix::process::Signal::TERM).expect("SIGTERM");
    await_exit(pid, since, "serve after SIGTERM mid-hole");
    let out = server.finish();
    assert_eq!(out.code, Some(20), "{}", out.dump());
    drop(big);
}

#[test]
fn serve_exits_20_promptly_on_sigterm_while_hashing_a_hole() {
    sigterm_while_hashing(false);
}

/// The case that hung: the session was over (the source left) but its receiver went on
/// hashing, and a signalled process waited for it.
#[test]
fn serve_stops_hashing_when_the_source_leaves_and_exits_20_on_sigterm() {
    sigterm_while_hashing(true);
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
        meta: root_meta(dest),
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

#[test]
fn pull_refuses_a_file_larger_than_its_destination_and_exits() {
    let tmp = TempDir::new().unwrap();
    let dest = tmp.path().join("dest");
    std::fs::create_dir(&dest).unwrap();
    let (code, out) = pull_from_hostile(
        &dest,
        vec![file(b"huge.img", 1 << 60)],
        vec![hole(0, 1 << 60)],
        |_| Vec::new(),
    );
    assert!(
        out.contains("huge.img") && out.contains(&(1u64 << 60).to_string()),
        "the pull names the refused file and its size:\n{out}"
    );
    // The hole was for a file the puller never asked for.
    assert_eq!(code, Some(12), "{out}");
}

#[test]
fn pull_stops_hashing_a_hole_when_the_server_leaves() {
    let tmp = TempDir::new().unwrap();
    let big = Tmpfs::mount(&tmp.path().join("dest"), "1t");
    let size = big.capacity();
    let (code, out) = pull_from_hostile(&big.dir, vec![file(b"disk.img", size)], vec![], {
        move |index| vec![Step::Send(hole(index, size)), Step::CloseWrite]
    });
    assert_eq!(code, Some(10), "{out}");
    drop(big);
}

#[test]
fn a_file_larger_than_the_target_filesystem_fails_alone_with_exit_23() {
    let tmp = TempDir::new().unwrap();
    let src = tmp.path().join("src");
    write(&src.join("a.txt"), b"first\n", 0o644);
    write(&src.join("z/b.txt"), b"second\n", 0o644);
    // Sparse: 64 MiB long, nothing allocated.
    let huge = std::fs::File::create(src.join("huge.img")).unwrap();
    huge.set_len(64 << 20).unwrap();
    drop(huge);
    let small = Tmpfs::mount(&tmp.path().join("dst"), "4m");
    let capacity = small.capacity();
    let certs = Certs::new();
    let server = Server::builder(&certs).volume("vol", &small.dir).start();
    let out = push(&certs, &src, &server.url("vol")).run();
    out.assert_code(23);
    let err = out.stderr();
    assert!(
        err.contains("huge.img")
            && err.contains(&(64u64 << 20).to_string())
            && err.contains(&capacity.to_string()),
        "the error names the file and both sizes:\n{err}"
    );
    assert_eq!(read(&small.dir.join("a.txt")), b"first\n");
    assert_eq!(read(&small.dir.join("z/b.txt")), b"second\n");
    let left: Vec<_> = std::fs::read_dir(&small.dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(
        !left.iter().any(|n| n.to_string_lossy().contains("huge")),
        "nothing of the refused file was written: {left:?}"
    );
    drop(server);
    drop(small);
}

/// The basis of the delta tests: `SIZE` random bytes; the new version changes every
/// other MiB, so half of it travels as literals (slowed by `--bwlimit`) between copies.
const SIZE: usize = 24 << 20;
const BWLIMIT: &str = "4M";
/// Hang guard of a whole delta test: about 3 s of literals, then 6 s of the resend.
const TRANSFER_GUARD: Duration = Duration::from_secs(120);

fn basis_and_new() -> (Vec<u8>, Vec<u8>) {
    let old = random_bytes("truncated basis: old", SIZE);
    let mut new = old.clone();
    for (i, chunk) in new
        .chunks_mut(1 << 20)
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
    {
        chunk.copy_from_slice(&random_bytes(&format!("truncated basis: {i}"), chunk.len()));
    }
    (old, new)
}

/// Waits until process `pid` holds a file open in `dir` other than `basis` (and other
/// than `dir` itself): the temp file the delta is written to, whatever its name.
fn await_temp_file(pid: u32, dir: &Path, basis: &Path) {
    let dir = dir.canonicalize().unwrap();
    let basis = dir.join(basis.file_name().unwrap());
    await_condition("the target writing the delta", EXIT_GUARD, || {
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            return false;
        };
        fds.flatten().any(|fd| {
            std::fs::read_link(fd.path())
                .is_ok_and(|p| p.starts_with(&dir) && p != dir && p != basis)
        })
    });
}

/// Summary field `field` of a `--summary-file`.
fn summary_stat(path: &Path, field: &str) -> u64 {
    let text = std::fs::read_to_string(path).expect("summary file");
    let json: serde_json::Value = serde_json::from_str(&text).expect("summary JSON");
    json[field]
        .as_u64()
        .unwrap_or_else(|| panic!("summary field {field} in {text}"))
}

#[test]
fn a_basis_truncated_during_a_pushed_delta_costs_a_resend_not_the_server() {
    let tmp = TempDir::new().unwrap();
    let (src, dst) = (tmp.path().join("src"), tmp.path().join("dst"));
    let (old, new) = basis_and_new();
    write(&dst.join("big.img"), &old, 0o644);
    set_mtime(&dst.join("big.img"), 1_700_000_000, 0);
    write(&src.join("big.img"), &new, 0o644);
    set_mtime(&src.join("big.img"), 1_700_000_100, 0);
    let certs = Certs::new();
    let server = Server::builder(&certs).volume("vol", &dst).once().start();
    let summary = tmp.path().join("summary.json");
    let mut cmd = ferry();
    cmd.arg("push")
        .arg(&src)
        .arg(server.url("vol"))
        .arg("--tls-dir")
        .arg(certs.client_dir())
        .args(["--bwlimit", BWLIMIT, "--summary-file"])
        .arg(&summary);
    let pusher = Spawned::start(&mut cmd);
    await_temp_file(server.pid(), &dst, &dst.join("big.img"));
    std::fs::File::options()
        .write(true)
        .open(dst.join("big.img"))
        .unwrap()
        .set_len(0)
        .unwrap();
    let (code, out) = pusher.finish("ferry push", TRANSFER_GUARD);
    let served = server.finish();
    assert_eq!(
        served.code,
        Some(0),
        "serve survives and succeeds\n{}",
        served.dump()
    );
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(summary_stat(&summary, "files_resent"), 1, "{out}");
    assert!(
        read(&dst.join("big.img")) == new,
        "the file ends as the source's"
    );
}

#[test]
fn a_basis_truncated_during_a_pulled_delta_costs_a_resend_not_the_puller() {
    let tmp = TempDir::new().unwrap();
    let (src, dest) = (tmp.path().join("src"), tmp.path().join("dest"));
    let (old, new) = basis_and_new();
    write(&dest.join("big.img"), &old, 0o644);
    set_mtime(&dest.join("big.img"), 1_700_000_000, 0);
    write(&src.join("big.img"), &new, 0o644);
    set_mtime(&src.join("big.img"), 1_700_000_100, 0);
    let certs = Certs::new();
    let server = Server::builder(&certs)
        .read_only_volume("vol", &src)
        .once()
        .start();
    let summary = tmp.path().join("summary.json");
    let mut cmd = pull_command(&certs, &server.url("vol"), &dest);
    cmd.args(["--bwlimit", BWLIMIT, "--summary-file"])
        .arg(&summary);
    let puller = Spawned::start(&mut cmd);
    await_temp_file(puller.pid(), &dest, &dest.join("big.img"));
    std::fs::File::options()
        .write(true)
        .open(dest.join("big.img"))
        .unwrap()
        .set_len(0)
        .unwrap();
    let (code, out) = puller.finish("ferry pull", TRANSFER_GUARD);
    assert_eq!(code, Some(0), "the puller survives and succeeds\n{out}");
    assert_eq!(summary_stat(&summary, "files_resent"), 1, "{out}");
    assert!(
        read(&dest.join("big.img")) == new,
        "the file ends as the source's"
    );
    let served = server.finish();
    assert_eq!(served.code, Some(0), "{}", served.dump());
}

/// The server does not leave: it answers the Want with one 37-byte Hole frame as large as
/// the destination filesystem (a tmpfs of 1 TiB here; a network filesystem such as EFS
/// reports exabytes), then its FileEnd, and stays. The capacity bound lets the hole
/// through, and the puller hashes 1 TiB of zeros (minutes of a core; years for an
/// exabyte) before it reads the FileEnd: a peer's number still buys work without bound
/// while the peer stays. The pull must get through the file (a mismatch, asked again,
/// then the server closes) within the hang guard.
#[test]
#[ignore = "known limit (issue #14, item 2): hashing a hole costs its length; bounding it \
            for a peer that stays needs a file hash that takes holes by length"]
fn a_hole_as_large_as_the_destination_from_a_staying_server_costs_the_puller_bounded_work() {
    let tmp = TempDir::new().unwrap();
    let big = Tmpfs::mount(&tmp.path().join("dest"), "1t");
    let size = big.capacity();
    let mut asked = 0;
    let (code, out) = pull_from_hostile(&big.dir, vec![file(b"disk.img", size)], vec![], {
        move |index| {
            asked += 1;
            match asked {
                1 => vec![
                    Step::Send(hole(index, size)),
                    Step::Send(Message::FileEnd {
                        index,
                        size,
                        hash: [7; 32],
                    }),
                ],
                _ => vec![Step::CloseWrite],
            }
        }
    });
    assert!(code.is_some_and(|c| c != 0), "{out}");
    drop(big);
}
