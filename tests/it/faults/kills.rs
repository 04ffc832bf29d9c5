//! Processes stopped mid-transfer: SIGKILL of the target (the old version survives, the
//! next run resumes or overwrites the one partial), SIGTERM of either side (exit 20).

use super::*;

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
    let mut push = spawn_push(&fx, &url, &[]);
    // Wait (readiness, bounded) until the target holds a partial of the new file.
    let partial = fx.dst.join(".ferry.big.bin.partial");
    wait_until("a partial of the new file at the target", || {
        fs::metadata(&partial).map(|m| m.len()).unwrap_or(0) >= 1 << 20
    });
    sigkill(target);
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
fn a_file_under_a_mib_killed_mid_write_leaves_nothing_and_the_next_run_completes() {
    let fx = Fixture::new();
    let content = random_bytes("small-partial", 600 << 10);
    write(&fx.src.join("small.bin"), &content, 0o644);
    let target = crate::util::Server::builder(&fx.certs)
        .volume("vol", &fx.dst)
        .start();
    let relay = Relay::stalling(target.addr.parse().unwrap(), 300 << 10);
    let url = format!("ferry://127.0.0.1:{}/vol", relay.addr.port());
    let mut push = spawn_push(&fx, &url, &[]);
    // Too small to resume, so it is written unnamed (O_TMPFILE): the only trace of it is
    // the target's open fd, which /proc shows as "DST/#INODE (deleted)".
    let pid = target.pid();
    wait_until("an unnamed file with data open at the target", || {
        unnamed_bytes_open(pid, &fx.dst) > 0
    });
    sigkill(target);
    let _ = push.kill();
    let _ = push.wait();
    assert_eq!(
        debris(&fx.dst),
        Vec::<String>::new(),
        "a killed run left files"
    );

    let again = crate::util::Server::builder(&fx.certs)
        .volume("vol", &fx.dst)
        .start();
    crate::util::push(&fx.certs, &fx.src, &again.url("vol"))
        .run()
        .assert_ok();
    assert_eq!(fs::read(fx.dst.join("small.bin")).unwrap(), content);
    assert_eq!(debris(&fx.dst), vec!["small.bin".to_string()]);
}

/// Names in `dir`.
fn debris(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Bytes in the unnamed files process `pid` holds open in `dir`.
fn unnamed_bytes_open(pid: u32, dir: &std::path::Path) -> u64 {
    let prefix = format!("{}/#", dir.display());
    let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return 0;
    };
    fds.filter_map(|fd| {
        let fd = fd.ok()?.path();
        let link = fs::read_link(&fd).ok()?;
        let link = link.to_string_lossy();
        (link.starts_with(&prefix) && link.ends_with(" (deleted)"))
            .then(|| fs::metadata(&fd).map(|m| m.len()).unwrap_or(0))
    })
    .sum()
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
fn a_push_stops_on_sigterm_with_exit_20_even_when_the_network_hangs() {
    let fx = Fixture::new();
    write(
        &fx.src.join("big.bin"),
        &random_bytes("sigterm", 8 << 20),
        0o644,
    );
    let relay = Relay::stalling(fx.server.addr.parse().unwrap(), 2 << 20);
    let url = format!("ferry://127.0.0.1:{}/vol", relay.addr.port());
    let mut push = spawn_push(&fx, &url, &[]);
    // Readiness: the relay has taken the connection (and will stall it).
    wait_until("the push to connect", || relay.connections() > 0);
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
