//! The source changing under a push: a file growing while it is read, one removed
//! after it was listed, a directory the push cannot read (so `--delete` must not run).

use super::*;

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
fn a_file_that_vanishes_after_it_was_listed_is_a_warning_with_exit_24() {
    let fx = Fixture::new();
    // Two slow files keep both sender threads busy while `z.txt`, listed with them, waits
    // its turn, and --bwlimit drains the writer's queue (64 x 256 KiB = 16 MiB) slowly.
    // Each file alone must be larger than that queue: a sender whose whole file fits in it
    // finishes reading at once and opens `z.txt` within milliseconds, before the test sees
    // the transfer start (seen in a CI run under load with 12 MiB files). With 20 MiB
    // files a sender finishes only after about 24 MiB went out, 3 s at 8 MB/s. The test
    // removes `z.txt` once the transfer is visibly under way. One stream: over several
    // (`auto` opens a second once 4 MiB are asked), `a2.bin` and `z.txt` go to a joined
    // stream whose own senders read `z.txt` at once (seen in a full run).
    write(&fx.src.join("a1.bin"), &random_bytes("v1", 20 << 20), 0o644);
    write(&fx.src.join("a2.bin"), &random_bytes("v2", 20 << 20), 0o644);
    write(&fx.src.join("z.txt"), b"gone soon\n", 0o644);
    let push = spawn_push_piped(
        &fx,
        &fx.server.url("vol"),
        &["--bwlimit", "8M", "--json", "--streams", "1"],
    );
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
