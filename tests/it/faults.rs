//! Faults the core must survive without losing anything: a source file that changes
//! while it is read, a source it cannot fully read (so `--delete` must not run), and a
//! target stopped by SIGTERM.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde_json::Value;

use crate::files::{random_bytes, write};
use crate::relay::Relay;
use crate::snapshot::{diff, Snapshot};
use crate::util::{ferry, run_guarded, Fixture};

/// Appends to `path` until the returned guard is dropped.
struct Appender {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Appender {
    fn start(path: &std::path::Path) -> Appender {
        let stop = Arc::new(AtomicBool::new(false));
        let mut file = fs::OpenOptions::new().append(true).open(path).unwrap();
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let block = [b'x'; 4096];
            while !flag.load(Ordering::Relaxed) {
                file.write_all(&block).unwrap();
            }
        });
        Appender {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Appender {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn a_file_growing_while_it_is_read_is_not_committed_and_exits_24() {
    let fx = Fixture::new();
    write(&fx.src.join("steady.txt"), b"steady\n", 0o644);
    write(&fx.src.join("growing.log"), &vec![b'a'; 8 << 20], 0o644);
    write(
        &fx.dst.join("growing.log"),
        b"the target's old version\n",
        0o644,
    );
    let out = {
        let _appender = Appender::start(&fx.src.join("growing.log"));
        fx.push().json().run()
    };
    out.assert_code(24);
    assert!(out.stat("source_vanished") >= 1, "{}", out.stdout());
    assert_eq!(
        fs::read(fx.dst.join("growing.log")).unwrap(),
        b"the target's old version\n",
        "a torn or changed file was committed over the old version"
    );
    assert_eq!(fs::read(fx.dst.join("steady.txt")).unwrap(), b"steady\n");
    let leftovers: Vec<_> = fs::read_dir(&fx.dst)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with(".ferry."))
        .collect();
    assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
}

#[test]
fn deletions_are_skipped_when_the_source_had_read_errors() {
    let fx = Fixture::new();
    // The push runs as `nobody`, so everything it must read is opened up to it.
    fs::set_permissions(fx.tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
    write(&fx.src.join("ok.txt"), b"ok\n", 0o644);
    write(&fx.src.join("secret/inside.txt"), b"hidden\n", 0o600);
    fs::set_permissions(fx.src.join("secret"), fs::Permissions::from_mode(0o000)).unwrap();
    fs::set_permissions(&fx.src, fs::Permissions::from_mode(0o755)).unwrap();
    write(&fx.dst.join("extra.txt"), b"must survive\n", 0o644);
    let tls = fx.tmp.path().join("client-tls");
    fs::create_dir(&tls).unwrap();
    for name in ["tls.crt", "tls.key", "ca.crt"] {
        fs::copy(fx.certs.client_dir().join(name), tls.join(name)).unwrap();
        fs::set_permissions(tls.join(name), fs::Permissions::from_mode(0o644)).unwrap();
    }

    let out = run_guarded(
        std::process::Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(env!("CARGO_BIN_EXE_ferry"))
            .arg("push")
            .arg(&fx.src)
            .arg(fx.server.url("vol"))
            .arg("--tls-dir")
            .arg(&tls)
            .args(["--delete", "--json"]),
        "ferry push as nobody",
    );
    assert_eq!(out.code, Some(23), "{}", out.dump());
    let summary: Value = serde_json::from_str(out.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(summary["delete_skipped"], true, "{}", out.dump());
    assert!(summary["source_read_errors"].as_u64().unwrap() >= 1);
    assert_eq!(
        fs::read(fx.dst.join("extra.txt")).unwrap(),
        b"must survive\n"
    );
    assert_eq!(fs::read(fx.dst.join("ok.txt")).unwrap(), b"ok\n");
}

#[test]
fn serve_stops_on_sigterm_with_exit_20() {
    let fx = Fixture::new();
    let certs = &fx.certs;
    let mut child = ferry()
        .args(["serve", "--listen", "127.0.0.1:0", "--tls-dir"])
        .arg(certs.server_dir())
        .arg("--volume")
        .arg(format!("v={}", fx.dst.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("listening "), "{line:?}");
    let pid = rustix::process::Pid::from_child(&child);
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(20));
}

#[test]
fn a_push_cut_mid_file_retries_and_resumes_from_the_verified_partial() {
    let fx = Fixture::new();
    write(
        &fx.src.join("big.bin"),
        &random_bytes("resume", 24 << 20),
        0o644,
    );
    write(&fx.src.join("small/a.txt"), b"a\n", 0o644);
    let server_addr: std::net::SocketAddr = fx
        .server
        .url("vol")
        .trim_start_matches("ferry://")
        .trim_end_matches("/vol")
        .parse()
        .unwrap();
    let relay = Relay::start(server_addr, 12 << 20);
    let url = format!("ferry://127.0.0.1:{}/vol", relay.addr.port());
    let out = crate::util::push(&fx.certs, &fx.src, &url)
        .arg("--retries")
        .arg("3")
        .json()
        .run();
    out.assert_ok();
    assert!(relay.connections() >= 2, "the relay never cut a connection");
    assert!(out.stat("retries") >= 1, "{}", out.stdout());
    assert!(
        out.stat("bytes_resumed") >= 1 << 20,
        "the cut file was not resumed from its partial: {}",
        out.stdout()
    );
    let problems = diff(&Snapshot::take(&fx.src), &Snapshot::take(&fx.dst));
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn permanent_failures_are_not_retried() {
    let fx = Fixture::new();
    write(&fx.src.join("a.txt"), b"a\n", 0o644);
    let url = fx.server.url("no-such-volume");
    let out = crate::util::push(&fx.certs, &fx.src, &url)
        .arg("--retries")
        .arg("5")
        .json()
        .run();
    out.assert_code(5);
    assert_eq!(out.stat("retries"), 0, "{}", out.stdout());
}

#[test]
fn idle_connections_cannot_exhaust_the_target() {
    let fx = Fixture::new();
    write(&fx.src.join("a.txt"), b"a\n", 0o644);
    let fds = || {
        fs::read_dir(format!("/proc/{}/fd", fx.server.pid()))
            .unwrap()
            .count()
    };
    let before = fds();
    // Far more silent connections than the target admits into its handshake.
    let idle: Vec<_> = (0..300)
        .filter_map(|_| std::net::TcpStream::connect(&fx.server.addr).ok())
        .collect();
    // Let the target accept (and, past its cap, close) them all: wait until the
    // number of descriptors it holds stops changing. This is readiness, not a timing
    // assertion; the bound below is on the count.
    let mut held = fds();
    for _ in 0..50 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        let now = fds();
        if now == held {
            break;
        }
        held = now;
    }
    let held = held.saturating_sub(before);
    assert_eq!(idle.len(), 300, "the kernel refused some test connections");
    assert!(
        held <= 64 + 8,
        "the target holds {held} descriptors for 300 idle peers"
    );
    drop(idle);
    // Once they are gone the target serves pushes as before.
    fx.push().run().assert_ok();
}

#[test]
fn sigkill_of_the_target_mid_file_keeps_the_old_version_and_the_next_run_resumes() {
    let fx = Fixture::new();
    let new = random_bytes("sigkill-new", 16 << 20);
    write(&fx.src.join("big.bin"), &new, 0o644);
    write(&fx.src.join("other.txt"), b"other\n", 0o644);
    let old = random_bytes("sigkill-old", 3 << 20);
    write(&fx.dst.join("big.bin"), &old, 0o644);

    let target = crate::util::Server::builder(&fx.certs)
        .volume("vol", &fx.dst)
        .start();
    let relay = Relay::stalling(target.addr.parse().unwrap(), 6 << 20);
    let url = format!("ferry://127.0.0.1:{}/vol", relay.addr.port());
    let mut push = ferry()
        .arg("push")
        .arg(&fx.src)
        .arg(&url)
        .arg("--tls-dir")
        .arg(fx.certs.client_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait (readiness, bounded) until the target holds a partial of the new file.
    let partial = fx.dst.join(".ferry.big.bin.partial");
    let mut waited = 0;
    while fs::metadata(&partial).map(|m| m.len()).unwrap_or(0) < 1 << 20 {
        assert!(waited < 600, "no partial appeared at the target");
        std::thread::sleep(std::time::Duration::from_millis(100));
        waited += 1;
    }
    let pid = rustix::process::Pid::from_raw(target.pid() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::KILL).unwrap();
    drop(target);
    let _ = push.kill();
    let _ = push.wait();

    assert_eq!(
        fs::read(fx.dst.join("big.bin")).unwrap(),
        old,
        "the old version was touched"
    );

    let again = crate::util::Server::builder(&fx.certs)
        .volume("vol", &fx.dst)
        .start();
    let out = crate::util::push(&fx.certs, &fx.src, &again.url("vol"))
        .json()
        .run();
    out.assert_ok();
    assert!(
        out.stat("bytes_resumed") >= 1 << 20,
        "the partial left by the killed target was not resumed: {}",
        out.stdout()
    );
    assert_eq!(fs::read(fx.dst.join("big.bin")).unwrap(), new);
    assert!(
        !partial.exists(),
        "the partial is still there after the file completed"
    );
}

#[test]
fn a_cutover_with_delete_removes_temp_files_left_by_a_killed_run() {
    let fx = Fixture::new();
    write(&fx.src.join("a.txt"), b"a\n", 0o644);
    write(&fx.src.join("d/b.txt"), b"b\n", 0o644);
    // What a SIGKILL leaves: temp files under Ferry's temp names next to real data.
    write(&fx.dst.join(".ferry.a.txt.0badc0de"), b"torn", 0o600);
    write(&fx.dst.join("d/.ferry.b.txt.deadbeef"), b"torn", 0o600);
    write(&fx.dst.join(".ferry.notes"), b"a user's own file", 0o644);
    fx.push().run().assert_ok();
    assert!(
        fx.dst.join(".ferry.a.txt.0badc0de").exists(),
        "removed without --delete"
    );
    fx.push().delete().run().assert_ok();
    assert!(!fx.dst.join(".ferry.a.txt.0badc0de").exists());
    assert!(!fx.dst.join("d/.ferry.b.txt.deadbeef").exists());
    let problems = diff(&Snapshot::take(&fx.src), &Snapshot::take(&fx.dst));
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn concurrent_pushes_to_different_volumes_are_all_served() {
    let tmp = tempfile::TempDir::new().unwrap();
    let certs = crate::util::Certs::new();
    let mut builder = crate::util::Server::builder(&certs);
    let mut pairs = Vec::new();
    for i in 0..4 {
        let src = tmp.path().join(format!("src{i}"));
        let dst = tmp.path().join(format!("dst{i}"));
        write(
            &src.join("big.bin"),
            &random_bytes(&format!("vol{i}"), 4 << 20),
            0o644,
        );
        for k in 0..50 {
            write(
                &src.join(format!("d{}/f{k}", k % 5)),
                format!("{i}/{k}\n").as_bytes(),
                0o644,
            );
        }
        fs::create_dir(&dst).unwrap();
        builder = builder.volume(&format!("v{i}"), &dst);
        pairs.push((src, dst));
    }
    let server = builder.start();
    std::thread::scope(|scope| {
        let runs: Vec<_> = pairs
            .iter()
            .enumerate()
            .map(|(i, (src, _))| {
                let (certs, url) = (&certs, server.url(&format!("v{i}")));
                scope.spawn(move || crate::util::push(certs, src, &url).run())
            })
            .collect();
        for run in runs {
            run.join().unwrap().assert_ok();
        }
    });
    for (src, dst) in &pairs {
        let problems = diff(&Snapshot::take(src), &Snapshot::take(dst));
        assert!(problems.is_empty(), "{problems:#?}");
    }
}

#[test]
fn a_push_stops_on_sigterm_with_exit_20_even_when_the_network_hangs() {
    let fx = Fixture::new();
    write(
        &fx.src.join("big.bin"),
        &random_bytes("sigterm", 8 << 20),
        0o644,
    );
    let relay = Relay::stalling(fx.server.addr.parse().unwrap(), 2 << 20);
    let url = format!("ferry://127.0.0.1:{}/vol", relay.addr.port());
    let mut push = ferry()
        .arg("push")
        .arg(&fx.src)
        .arg(&url)
        .arg("--tls-dir")
        .arg(fx.certs.client_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Readiness: the relay has taken the connection (and will stall it).
    let mut waited = 0;
    while relay.connections() == 0 {
        assert!(waited < 300, "the push never connected");
        std::thread::sleep(std::time::Duration::from_millis(100));
        waited += 1;
    }
    let pid = rustix::process::Pid::from_child(&push);
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    // A pod being deleted gets a grace period; this guard is far longer than a clean stop.
    let mut status = None;
    for _ in 0..100 {
        if let Some(s) = push.try_wait().unwrap() {
            status = Some(s);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let status = status.unwrap_or_else(|| {
        let _ = push.kill();
        panic!("ferry push did not stop within 10 s of SIGTERM")
    });
    assert_eq!(status.code(), Some(20));
}

#[test]
fn fsync_on_push_and_on_serve_still_lands_the_tree() {
    // Durability itself cannot be observed without pulling the power; this checks that
    // the option reaches the target and that flushing every file keeps the result exact.
    let fx = Fixture::new();
    write(
        &fx.src.join("a.bin"),
        &random_bytes("fsync", 2 << 20),
        0o644,
    );
    write(&fx.src.join("d/b.txt"), b"b\n", 0o600);
    fx.push().arg("--fsync").run().assert_ok();
    let problems = diff(&Snapshot::take(&fx.src), &Snapshot::take(&fx.dst));
    assert!(problems.is_empty(), "{problems:#?}");

    let dst = fx.tmp.path().join("dst-fsync");
    fs::create_dir(&dst).unwrap();
    let server = crate::util::Server::builder(&fx.certs)
        .volume("v", &dst)
        .arg("--fsync")
        .start();
    crate::util::push(&fx.certs, &fx.src, &server.url("v"))
        .run()
        .assert_ok();
    let problems = diff(&Snapshot::take(&fx.src), &Snapshot::take(&dst));
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn a_file_that_vanishes_after_it_was_listed_is_a_warning_with_exit_24() {
    let fx = Fixture::new();
    // Two slow files keep both sender threads busy while `z.txt`, listed with them, waits
    // its turn: together they are larger than the frames the writer may queue (64 x 256
    // KiB), and --bwlimit drains that queue slowly. The test removes `z.txt` once the
    // transfer is visibly under way.
    write(&fx.src.join("a1.bin"), &random_bytes("v1", 12 << 20), 0o644);
    write(&fx.src.join("a2.bin"), &random_bytes("v2", 12 << 20), 0o644);
    write(&fx.src.join("z.txt"), b"gone soon\n", 0o644);
    let push = ferry()
        .arg("push")
        .arg(&fx.src)
        .arg(fx.server.url("vol"))
        .arg("--tls-dir")
        .arg(fx.certs.client_dir())
        .args(["--bwlimit", "4M", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut waited = 0;
    while !fs::read_dir(&fx.dst).unwrap().any(|e| {
        e.unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".partial")
    }) {
        assert!(waited < 300, "the transfer never started");
        std::thread::sleep(std::time::Duration::from_millis(50));
        waited += 1;
    }
    fs::remove_file(fx.src.join("z.txt")).unwrap();
    let out = push.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(24));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(summary["source_vanished"], 1, "{stdout}");
    assert!(!fx.dst.join("z.txt").exists());
    assert_eq!(
        fs::read(fx.dst.join("a1.bin")).unwrap(),
        fs::read(fx.src.join("a1.bin")).unwrap()
    );
}

#[test]
fn a_connection_that_stalls_mid_handshake_is_closed_and_the_target_serves_on() {
    let fx = Fixture::new();
    write(&fx.src.join("a.txt"), b"a\n", 0o644);
    let mut stalled = std::net::TcpStream::connect(&fx.server.addr).unwrap();
    // The first bytes of a TLS record header, then nothing.
    stalled.write_all(&[0x16, 0x03, 0x01]).unwrap();
    // The target closes it at its handshake deadline (15 s); the guard is far longer.
    stalled
        .set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    let mut buf = [0u8; 64];
    let closed = match std::io::Read::read(&mut stalled, &mut buf) {
        Ok(0) => true,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        Ok(_) => false,
    };
    assert!(closed, "the stalled connection was kept open");
    fx.push().run().assert_ok();
}

#[test]
fn a_killed_run_leaves_one_partial_per_file_which_the_next_run_overwrites() {
    let fx = Fixture::new();
    let content = random_bytes("small-partial", 600 << 10);
    write(&fx.src.join("small.bin"), &content, 0o644);
    let target = crate::util::Server::builder(&fx.certs)
        .volume("vol", &fx.dst)
        .start();
    let relay = Relay::stalling(target.addr.parse().unwrap(), 300 << 10);
    let url = format!("ferry://127.0.0.1:{}/vol", relay.addr.port());
    let mut push = ferry()
        .arg("push")
        .arg(&fx.src)
        .arg(&url)
        .arg("--tls-dir")
        .arg(fx.certs.client_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let partial = fx.dst.join(".ferry.small.bin.partial");
    let mut waited = 0;
    while fs::metadata(&partial).map(|m| m.len()).unwrap_or(0) == 0 {
        assert!(waited < 600, "no partial appeared at the target");
        std::thread::sleep(std::time::Duration::from_millis(50));
        waited += 1;
    }
    let pid = rustix::process::Pid::from_raw(target.pid() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::KILL).unwrap();
    drop(target);
    let _ = push.kill();
    let _ = push.wait();
    assert!(
        !fx.dst.join("small.bin").exists(),
        "a half file appeared under its name"
    );

    let again = crate::util::Server::builder(&fx.certs)
        .volume("vol", &fx.dst)
        .start();
    crate::util::push(&fx.certs, &fx.src, &again.url("vol"))
        .run()
        .assert_ok();
    assert_eq!(fs::read(fx.dst.join("small.bin")).unwrap(), content);
    let debris: Vec<_> = fs::read_dir(&fx.dst)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with(".ferry."))
        .collect();
    assert!(debris.is_empty(), "left behind: {debris:?}");
}
