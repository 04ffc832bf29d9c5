//! The pre-flight space check: a push (or pull) into a volume too small for it stops
//! before writing the bulk of it (exit 11, both numbers in the message), `probe --source`
//! says so first, a `--delete` re-sync that fits only thanks to its deletions succeeds,
//! and `--no-space-check` restores the old behaviour (fill the volume, then exit 11).

use std::path::Path;

use crate::files::{random_bytes, write};
use crate::relay::Relay;
use crate::util::{ferry, pull, push, run_guarded, Certs, Server, Tmpfs};

const MIB: usize = 1 << 20;

/// Bytes the filesystem at `dir` has in use.
fn used(dir: &Path) -> u64 {
    let stat = rustix::fs::statvfs(dir).expect("statvfs");
    (stat.f_blocks - stat.f_bfree) * stat.f_frsize
}

/// Six files of 3 MiB: 18 MiB, for an 8 MiB volume.
fn too_big_tree(src: &Path) {
    for k in 0..6 {
        let name = format!("f{k}.bin");
        write(&src.join(&name), &random_bytes(&name, 3 * MIB), 0o644);
    }
}

#[test]
fn a_push_into_a_volume_too_small_stops_before_writing_with_exit_11_and_both_numbers() {
    let tmp = tempfile::TempDir::new().unwrap();
    let src = tmp.path().join("src");
    too_big_tree(&src);
    let small = Tmpfs::mount(&tmp.path().join("dst"), "8m");
    let certs = Certs::new();
    let server = Server::builder(&certs).volume("vol", &small.dir).start();

    let out = push(&certs, &src, &server.url("vol")).run();
    out.assert_code(11);
    let stderr = out.stderr();
    assert!(
        stderr.contains("not enough space on the target volume")
            && stderr.contains("8388608 bytes")
            && stderr.contains("--no-space-check"),
        "stderr does not give both numbers and what to do:\n{stderr}"
    );
    // The need exceeded the room before the third file was asked for: nothing of the
    // 18 MiB was written.
    assert!(
        used(&small.dir) < MIB as u64,
        "{} bytes were written before the push stopped",
        used(&small.dir)
    );
    drop(server);
}

#[test]
fn without_the_check_the_same_push_fills_the_volume_first() {
    let tmp = tempfile::TempDir::new().unwrap();
    let src = tmp.path().join("src");
    too_big_tree(&src);
    let small = Tmpfs::mount(&tmp.path().join("dst"), "8m");
    let certs = Certs::new();
    let server = Server::builder(&certs).volume("vol", &small.dir).start();

    let out = push(&certs, &src, &server.url("vol"))
        .arg("--no-space-check")
        .run();
    out.assert_code(11);
    // The volume filled up: the write that found it full failed (what it left behind
    // the target may still be cleaning up, so its size is no measure).
    assert!(
        out.stderr().contains("No space left on device")
            && !out
                .stderr()
                .contains("not enough space on the target volume"),
        "{}",
        out.stderr()
    );
    drop(server);
}

#[test]
fn a_dry_run_that_would_not_fit_warns_and_exits_0() {
    let tmp = tempfile::TempDir::new().unwrap();
    let src = tmp.path().join("src");
    too_big_tree(&src);
    let small = Tmpfs::mount(&tmp.path().join("dst"), "8m");
    let certs = Certs::new();
    let server = Server::builder(&certs).volume("vol", &small.dir).start();

    let out = push(&certs, &src, &server.url("vol"))
        .dry_run()
        .json()
        .run();
    out.assert_ok();
    // The target said what it had when it admitted the push.
    let told = out
        .events()
        .iter()
        .find(|e| e["event"] == "target_space")
        .unwrap_or_else(|| panic!("no target_space event:\n{}", out.stdout()));
    let free = told["free_bytes"].as_u64().unwrap();
    assert!(free > 7 * MIB as u64 && free <= 8 * MIB as u64, "{told}");
    let summary = out.summary();
    assert_eq!(summary["space_short"], true, "{summary}");
    assert!(out.stat("space_needed") >= 18 * MIB as u64, "{summary}");
    assert!(out.stat("space_free") <= 8 * MIB as u64, "{summary}");
    assert!(out.stat("inodes_needed") >= 6, "{summary}");
    drop(server);
}

/// `ferry probe URL --source DIR`, its exit code and its `space` line.
fn probe_space(certs: &Certs, url: &str, src: &Path, extra: &[&str]) -> (Option<i32>, String) {
    let mut cmd = ferry();
    cmd.arg("probe")
        .arg(url)
        .arg("--tls-dir")
        .arg(certs.client_dir())
        .arg("--source")
        .arg(src)
        .args(extra);
    crate::util::clear_proxy_env(&mut cmd);
    let out = run_guarded(&mut cmd, "ferry probe --source");
    let line = out
        .stdout
        .lines()
        .find(|line| line.split_whitespace().nth(1) == Some("space"))
        .unwrap_or_else(|| panic!("no space hop:\n{}", out.dump()))
        .to_string();
    (out.code, line)
}

#[test]
fn probe_with_a_source_says_first_whether_the_push_fits() {
    let tmp = tempfile::TempDir::new().unwrap();
    let src = tmp.path().join("src");
    too_big_tree(&src);
    let small_src = tmp.path().join("small");
    write(&small_src.join("a.bin"), &random_bytes("a", MIB), 0o644);
    let small = Tmpfs::mount(&tmp.path().join("dst"), "8m");
    let certs = Certs::new();
    let server = Server::builder(&certs).volume("vol", &small.dir).start();
    let url = server.url("vol");

    let (code, line) = probe_space(&certs, &url, &src, &[]);
    assert_eq!(code, Some(11), "{line}");
    assert!(
        line.starts_with("FAIL") && line.contains("needs") && line.contains("bytes free"),
        "{line}"
    );
    let (code, line) = probe_space(&certs, &url, &small_src, &[]);
    assert_eq!(code, Some(0), "{line}");
    assert!(line.starts_with("ok"), "{line}");
    // Nothing was transferred by either.
    assert_eq!(std::fs::read_dir(&small.dir).unwrap().count(), 0);
    drop(server);
}

/// A target holding two old 5 MiB files on a 16 MiB volume (6 MiB free), a source
/// holding two new ones instead: it fits only if the old ones go first.
fn resync_that_fits_only_with_delete(tmp: &Path) -> (std::path::PathBuf, Tmpfs) {
    let src = tmp.join("src");
    for name in ["new-a.bin", "new-b.bin"] {
        write(&src.join(name), &random_bytes(name, 5 * MIB), 0o644);
    }
    let volume = Tmpfs::mount(&tmp.join("dst"), "16m");
    for name in ["old-a.bin", "old-b.bin"] {
        write(&volume.dir.join(name), &random_bytes(name, 5 * MIB), 0o644);
    }
    (src, volume)
}

#[test]
fn a_delete_resync_that_fits_only_thanks_to_its_deletions_succeeds() {
    let tmp = tempfile::TempDir::new().unwrap();
    let (src, volume) = resync_that_fits_only_with_delete(tmp.path());
    let certs = Certs::new();
    let server = Server::builder(&certs).volume("vol", &volume.dir).start();

    let (code, line) = probe_space(&certs, &server.url("vol"), &src, &["--delete"]);
    assert_eq!(code, Some(0), "{line}");
    let out = push(&certs, &src, &server.url("vol")).delete().json().run();
    out.assert_ok();
    assert_eq!(out.stat("files_deleted"), 2);
    let mut names: Vec<String> = std::fs::read_dir(&volume.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["new-a.bin", "new-b.bin"]);
    assert_eq!(
        std::fs::read(volume.dir.join("new-b.bin")).unwrap(),
        random_bytes("new-b.bin", 5 * MIB)
    );
    drop(server);
}

#[test]
fn the_same_resync_with_deletions_at_the_end_fills_the_volume() {
    let tmp = tempfile::TempDir::new().unwrap();
    let (src, volume) = resync_that_fits_only_with_delete(tmp.path());
    let certs = Certs::new();
    let server = Server::builder(&certs).volume("vol", &volume.dir).start();

    let (code, line) = probe_space(&certs, &server.url("vol"), &src, &[]);
    assert_eq!(code, Some(11), "without --delete it does not fit: {line}");
    let out = push(&certs, &src, &server.url("vol"))
        .delete()
        .arg("--no-space-check")
        .run();
    out.assert_code(11);
    assert!(volume.dir.join("old-a.bin").exists());
    drop(server);
}

#[test]
fn a_pull_into_a_directory_too_small_stops_before_writing() {
    let tmp = tempfile::TempDir::new().unwrap();
    let src = tmp.path().join("src");
    too_big_tree(&src);
    let small = Tmpfs::mount(&tmp.path().join("dst"), "8m");
    let certs = Certs::new();
    let server = Server::builder(&certs).volume("vol", &src).start();

    let out = pull(&certs, &server.url("vol"), &small.dir).run();
    out.assert_code(11);
    assert!(
        out.stderr()
            .contains("not enough space on the target volume"),
        "{}",
        out.stderr()
    );
    assert!(
        used(&small.dir) < MIB as u64,
        "{} bytes written",
        used(&small.dir)
    );
    drop(server);
}

/// A retry after a network cut resumes a 10 MiB file from the partial the cut session
/// left on a 12 MiB volume: the partial's bytes are on the volume already, so only the
/// rest is counted (the whole file would not fit beside it).
#[test]
fn a_resumed_partial_counts_only_what_is_still_to_come() {
    let tmp = tempfile::TempDir::new().unwrap();
    let src = tmp.path().join("src");
    write(&src.join("big.bin"), &random_bytes("big", 10 * MIB), 0o644);
    let volume = Tmpfs::mount(&tmp.path().join("dst"), "12m");
    let certs = Certs::new();
    let server = Server::builder(&certs).volume("vol", &volume.dir).start();
    let relay = Relay::start(server.addr.parse().unwrap(), 6 << 20);
    let url = format!("ferry://127.0.0.1:{}/vol", relay.addr.port());

    let out = push(&certs, &src, &url)
        .arg("--retries")
        .arg("3")
        .json()
        .run();
    out.assert_ok();
    assert!(out.stat("retries") >= 1, "{}", out.summary());
    assert!(
        out.stat("bytes_resumed") >= 2 * MIB as u64,
        "{}",
        out.summary()
    );
    assert_eq!(
        std::fs::read(volume.dir.join("big.bin")).unwrap(),
        random_bytes("big", 10 * MIB)
    );
    drop(server);
}
