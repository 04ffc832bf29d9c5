//! A large file that changes at the source while its ranges are in flight (protocol
//! 6.14), with real processes through the proxy and the router over three streams: the
//! source checks the file's size and mtime against the listing before and after each
//! range it reads and answers `FileFailed{Changed}` instead of `RangeEnd` when they moved;
//! the target fails that file alone (its ranges still coming on the other streams drain)
//! and the session goes on.
//!
//! - rewritten in place (same size, a new mtime) or truncated once the three streams
//!   joined and the target wrote a few MiB of the file: the push exits 24 with the file
//!   counted once as changed (`source_vanished`), no file error, the small files arrive,
//!   the large file is not there under its name, no temp file is left but a partial that
//!   is a prefix of the file's new content, and the target's session ended well (no
//!   protocol error, exit 12: a second `FileFailed` of the file once ended a third
//!   stream's drain, and that stream's frames were then refused);
//! - the next push, with nothing changing under it, makes the tree identical.
//!
//! The large file is [`LARGE_LEN`], nine ranges, of which the target asks at most six at
//! once (16 MiB of credit on each of three streams): the last three are asked only after
//! ranges ended at the target, 8 MiB each at [`BWLIMIT`]. The change is made once the
//! target wrote [`CHANGE_AFTER`] bytes of it, less than a range, so at least those three
//! ranges are read after it: the change cannot miss the file, and the test asserts the
//! push saw it (exit 24, the file counted as changed).

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use super::topology::{Topology, ROUTE_A};
use crate::files::{mtime, random_bytes, set_mtime, write};
use crate::snapshot::assert_trees_equal;
use crate::util::{PushOutcome, Server};

/// The protocol's range, 8 MiB.
const RANGE: u64 = 8 << 20;
/// Eight full ranges and a last one of 4567 bytes.
const LARGE_LEN: u64 = 8 * RANGE + 4567;
const LARGE_NAME: &str = "large.bin";
/// Shared by the three streams: the six ranges asked first (48 MiB) take about 2 s.
const BWLIMIT: &str = "24M";
/// The bytes of the large file the target must have written before the source's copy is
/// changed: the transfer is under way, and no range ended yet.
const CHANGE_AFTER: u64 = 4 << 20;
/// How long the push may take to join its streams and start the large file.
const START_GUARD: Duration = Duration::from_secs(30);

/// The small files, by path, and their content; `a-first` is listed before the large
/// file, the rest after it.
fn small_files() -> Vec<(String, Vec<u8>)> {
    let mut files = vec![(
        "a-first".to_owned(),
        b"listed before the large file".to_vec(),
    )];
    files.push(("z-last".to_owned(), random_bytes("changed z-last", 3000)));
    for i in 0..4 {
        files.push((
            format!("small/{i}"),
            random_bytes(&format!("changed small {i}"), 700 + 91 * i),
        ));
    }
    files
}

fn build(root: &Path) {
    for (path, content) in small_files() {
        write(&root.join(path), &content, 0o644);
    }
    write(
        &root.join(LARGE_NAME),
        &random_bytes("changed large", LARGE_LEN as usize),
        0o644,
    );
}

/// How the source's large file is changed while it is sent.
#[derive(Clone, Copy, Debug)]
enum Change {
    /// 1 MiB of range 4 rewritten in place: same size, a new mtime.
    Rewrite,
    /// Cut to five ranges and a few bytes (past the ranges first asked of stream 0).
    Truncate,
}

impl Change {
    fn apply(self, path: &Path) {
        let listed = mtime(path);
        let file = OpenOptions::new()
            .write(true)
            .open(path)
            .expect("open large");
        match self {
            Change::Rewrite => {
                let new = random_bytes("changed large rewrite", 1 << 20);
                file.write_all_at(&new, 4 * RANGE + 123)
                    .expect("rewrite large");
            }
            Change::Truncate => file.set_len(5 * RANGE + 999).expect("truncate large"),
        }
        drop(file);
        // A new mtime whatever the clock's granularity.
        set_mtime(path, listed.0 + 1, listed.1);
    }
}

/// Bytes the filesystem holds for `path` (what the target wrote of a file it sized at
/// once), 0 if it is not there.
fn allocated(path: &Path) -> u64 {
    fs::metadata(path).map(|m| m.blocks() * 512).unwrap_or(0)
}

/// Every `.ferry.*` entry under `root`, by path.
fn ferry_files(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).expect("read_dir") {
            let entry = entry.expect("dir entry");
            let path = entry.path();
            if entry.file_name().to_string_lossy().starts_with(".ferry.") {
                found.push(path.clone());
            }
            if entry.file_type().expect("file type").is_dir() {
                dirs.push(path);
            }
        }
    }
    found
}

/// Waits until the server logged how its session ended, and returns the log.
fn session_end(server: &Server) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let log = server.log();
        if log.contains("session done") || log.contains("session failed") {
            return log;
        }
        assert!(
            Instant::now() < deadline,
            "the target logged no end of its session:\n{log}"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// Pushes the tree over three streams through the proxy and the router, changes the
/// source's large file as `change` says once the streams joined and the target wrote
/// [`CHANGE_AFTER`] bytes of it, and checks what the push and the target did; then
/// pushes again and checks the tree arrives whole.
fn changed_in_flight(change: Change) {
    let t = Topology::new();
    build(&t.src);
    let large = t.src.join(LARGE_NAME);
    let partial = t.vol_a.join(format!(".ferry.{LARGE_NAME}.partial"));
    let server = t.server_a();

    let push = t
        .push_via_proxy(ROUTE_A)
        .arg("--streams")
        .arg("3")
        .arg("--bwlimit")
        .arg(BWLIMIT)
        .json();
    let started = Instant::now();
    let running = thread::spawn(move || push.run());
    let written = loop {
        assert!(
            !running.is_finished(),
            "the push ended before its large file was seen in flight:\n{}",
            running.join().expect("push thread").output.dump()
        );
        let written = allocated(&partial);
        if server.log().contains("stream 2 joined the session") && written >= CHANGE_AFTER {
            break written;
        }
        assert!(
            started.elapsed() < START_GUARD,
            "after {START_GUARD:?} the streams had not joined or the target had not \
             written {CHANGE_AFTER} bytes of the large file (it wrote {written})\n{}",
            server.log()
        );
        thread::sleep(Duration::from_millis(5));
    };
    change.apply(&large);
    let changed_at = started.elapsed();
    let in_flight = !running.is_finished();
    let pushed: PushOutcome = running.join().expect("push thread");
    assert!(
        in_flight,
        "the push ended before the large file was changed\n{}",
        pushed.output.dump()
    );

    // The target's session ended well: the file failed alone.
    let log = session_end(server);
    assert!(
        log.contains("session done") && !log.contains("session failed"),
        "the target failed the session (the file was changed {changed_at:?} into the push, \
         with {written} bytes of it written):\n{log}\n{}",
        pushed.output.dump()
    );
    pushed.assert_code(24);
    assert_eq!(
        pushed.stat("source_vanished"),
        1,
        "the large file should count once as changed\n{}",
        pushed.output.dump()
    );
    assert_eq!(pushed.stat("file_errors"), 0, "{}", pushed.output.dump());
    assert_eq!(
        pushed.stat("source_read_errors"),
        0,
        "{}",
        pushed.output.dump()
    );
    assert_eq!(pushed.stat("streams"), 3, "{}", pushed.output.dump());
    assert_eq!(
        pushed.stat("files_transferred"),
        small_files().len() as u64,
        "{}",
        pushed.output.dump()
    );
    for (path, content) in small_files() {
        let got = fs::read(t.vol_a.join(&path))
            .unwrap_or_else(|e| panic!("{path} did not arrive: {e}\n{}", pushed.output.dump()));
        assert!(got == content, "{path} arrived with other content");
    }
    let now = fs::read(&large).expect("read large");
    if let Ok(got) = fs::read(t.vol_a.join(LARGE_NAME)) {
        panic!(
            "{LARGE_NAME} was committed ({} bytes, {}) though it changed while it was sent",
            got.len(),
            if got == now {
                "the source's new content"
            } else {
                "not the source's content"
            }
        );
    }
    for leftover in ferry_files(&t.vol_a) {
        assert_eq!(leftover, partial, "a temp file is left");
        let kept = fs::read(&partial).expect("read partial");
        assert!(
            kept.len() <= now.len() && kept[..] == now[..kept.len()],
            "the partial left ({} bytes) is not a prefix of the source's new content",
            kept.len()
        );
    }

    let again = t
        .push_via_proxy(ROUTE_A)
        .arg("--streams")
        .arg("3")
        .json()
        .run();
    again.assert_ok();
    assert_trees_equal(&t.src, &t.vol_a);
    assert_eq!(again.stat("source_vanished"), 0, "{}", again.output.dump());
    assert!(
        ferry_files(&t.vol_a).is_empty(),
        "temp files left after the second push: {:?}",
        ferry_files(&t.vol_a)
    );
    assert_eq!(
        File::open(t.vol_a.join(LARGE_NAME))
            .expect("large arrived")
            .metadata()
            .expect("stat")
            .len(),
        now.len() as u64
    );
}

#[test]
fn a_large_file_rewritten_while_its_ranges_are_in_flight_fails_alone_and_the_next_push_sends_it() {
    changed_in_flight(Change::Rewrite);
}

#[test]
fn a_large_file_truncated_while_its_ranges_are_in_flight_fails_alone_and_the_next_push_sends_it() {
    changed_in_flight(Change::Truncate);
}
