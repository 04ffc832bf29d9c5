//! An entry point for fuzzing the target's session logic (feature `fuzzing`): the real
//! [`crate::target::run`] in-process, fed a hostile peer's frames. Not an API.
//!
//! Until the protocol has a sans-IO core, the session runs against a real volume in a
//! fresh temporary directory, with a sentinel directory beside it and symlinks in the
//! volume that point into the sentinel. See `fuzz/README.md` (target `session`).

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use ferry_proto::{Filter, Limits, Message, Meta, Rule, RuleKind, SessionOptions, Timestamp};
use ferry_tree::{Privileges, Volume};
use tokio::io::AsyncWriteExt;

use crate::framed::FrameReader;
use crate::target;

/// Longer than any session over a fuzz input can take, short enough that a hang shows
/// before libFuzzer's own timeout.
const SESSION_DEADLINE: Duration = Duration::from_secs(8);

/// How long the target must send nothing before the fuzzed peer's stream ends.
const QUIET: Duration = Duration::from_millis(30);

/// Runs one target session over `data` and panics if it breaks a rule.
///
/// `data[0]` picks the session: bits 0-4 are the options `delete`, `dry_run`, `checksum`,
/// `itemize` and `delete_excluded`; bit 5 adds a filter excluding `*.log`; bit 6 sends a
/// valid `Root` first. The rest is the peer's byte stream, then end of stream.
///
/// Checked: no panic; the session ends (within [`SESSION_DEADLINE`]); nothing changes
/// outside the volume (the sentinel beside it and the directory around both stay as
/// they were); an error renders.
#[doc(hidden)]
pub fn fuzz_target_session(data: &[u8]) {
    let Some((&control, frames)) = data.split_first() else {
        return;
    };
    let case = Case::new();
    let before = snapshot(&case.dir);
    let volume = Arc::new(Volume::open(&case.volume(), Privileges::current()).expect("volume"));
    let options = SessionOptions {
        delete: control & 1 != 0,
        dry_run: control & 2 != 0,
        checksum: control & 4 != 0,
        itemize: control & 8 != 0,
        delete_excluded: control & 16 != 0,
        ..SessionOptions::default()
    };
    let filter = if control & 32 != 0 {
        Filter::new(vec![Rule::new(RuleKind::Exclude, b"*.log").expect("rule")])
    } else {
        Filter::default()
    };
    let mut stream = Vec::new();
    if control & 64 != 0 {
        stream.extend_from_slice(&root_frame(&case.volume()));
    }
    stream.extend_from_slice(frames);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let ended = runtime.block_on(async move {
        let (mut peer, ours) = tokio::io::duplex(64 * 1024);
        let (read, _write) = tokio::io::split(ours);
        let (tx, mut rx) = tokio::sync::mpsc::channel(64);
        let answered = Arc::new(tokio::sync::Notify::new());
        let drain = tokio::spawn({
            let answered = answered.clone();
            async move {
                while rx.recv().await.is_some() {
                    answered.notify_one();
                }
            }
        });
        let feeder = tokio::spawn(async move {
            // The session may stop reading early; what it did not read is dropped.
            let _ = peer.write_all(&stream).await;
            // A source keeps the connection open until the target is done: end the stream
            // only once the target has gone quiet (its files are written by then).
            loop {
                tokio::select! {
                    () = answered.notified() => {}
                    () = tokio::time::sleep(QUIET) => break,
                }
            }
            let _ = peer.shutdown().await;
            // Keep the peer's end open until the session is done with it.
            std::future::pending::<()>().await;
        });
        let mut reader = FrameReader::new(read, Limits::default());
        let result = tokio::time::timeout(
            SESSION_DEADLINE,
            target::run(
                volume,
                options,
                filter,
                Limits::default(),
                &mut reader,
                tx,
                Arc::default(),
                crate::joined::SessionStreams::one(),
            ),
        )
        .await;
        feeder.abort();
        drain.abort();
        match result {
            Ok(Ok(_stats)) => true,
            Ok(Err(error)) => {
                let _ = error.to_string();
                true
            }
            Err(_) => false,
        }
    });
    drop(runtime);
    assert!(ended, "the session did not end within {SESSION_DEADLINE:?}");
    let after = snapshot(&case.dir);
    let outside = |s: &BTreeMap<PathBuf, String>| -> BTreeMap<PathBuf, String> {
        s.iter()
            .filter(|(p, _)| !p.starts_with("vol/") && p.as_path() != Path::new("vol"))
            .map(|(p, d)| (p.clone(), d.clone()))
            .collect()
    };
    assert_eq!(
        outside(&before),
        outside(&after),
        "something changed outside the volume"
    );
}

/// A fresh directory holding `vol/` (a few files, a directory, symlinks inside and out)
/// and `sentinel/` beside it; removed on drop.
struct Case {
    dir: PathBuf,
}

impl Case {
    fn new() -> Case {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ferry-fuzz-session-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let vol = dir.join("vol");
        let sentinel = dir.join("sentinel");
        for d in [&vol.join("predir"), &sentinel.join("sub")] {
            std::fs::create_dir_all(d).expect("create the fuzz case");
        }
        for (path, bytes) in [
            (vol.join("pre.txt"), &b"pre-existing\n"[..]),
            (vol.join("a.log"), b"log\n"),
            (vol.join("predir/inner.txt"), b"inner\n"),
            (sentinel.join("s.txt"), b"sentinel\n"),
            (sentinel.join("sub/t.txt"), b"sentinel t\n"),
        ] {
            std::fs::write(path, bytes).expect("write the fuzz case");
        }
        for (target, link) in [
            ("pre.txt", "prelink"),
            ("../sentinel/s.txt", "out-link"),
            ("../sentinel/sub", "out-dir"),
        ] {
            std::os::unix::fs::symlink(target, vol.join(link)).expect("symlink");
        }
        Case { dir }
    }

    fn volume(&self) -> PathBuf {
        self.dir.join("vol")
    }
}

impl Drop for Case {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Every path under `root` (relative), with its type, mode, owner, size, mtime and its
/// content or link target.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(path) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let kind = meta.file_type();
        let detail = if kind.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&path) {
                stack.extend(entries.flatten().map(|e| e.path()));
            }
            String::from("dir")
        } else if kind.is_symlink() {
            format!("link {:?}", std::fs::read_link(&path).ok())
        } else if kind.is_file() {
            format!("file {:?}", std::fs::read(&path).ok())
        } else {
            String::from("other")
        };
        let rel = path.strip_prefix(root).expect("under root").to_path_buf();
        let times = if kind.is_dir() {
            // A directory's mtime moves with its entries, which the rest compares.
            (0, 0)
        } else {
            (meta.mtime(), meta.mtime_nsec())
        };
        out.insert(
            rel,
            format!(
                "{detail} mode {:o} owner {}:{} size {} mtime {times:?} links {}",
                meta.mode(),
                meta.uid(),
                meta.gid(),
                meta.len(),
                meta.nlink()
            ),
        );
    }
    out
}

/// A `Root` frame with the volume's own attributes (so applying it changes nothing).
fn root_frame(volume: &Path) -> Vec<u8> {
    let m = std::fs::symlink_metadata(volume).expect("stat the volume");
    let meta = Meta {
        mode: m.mode() & 0o7777,
        uid: m.uid(),
        gid: m.gid(),
        mtime: Timestamp {
            sec: m.mtime(),
            nsec: m.mtime_nsec() as u32,
        },
        xattrs: Vec::new(),
    };
    let mut out = BytesMut::new();
    ferry_proto::encode(&Message::Root { meta }, &mut out);
    out.to_vec()
}
