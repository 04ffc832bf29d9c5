//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use ferry_proto::{Meta, RelPath, Timestamp, Xattr};

/// Everything observable about every entry under `root` (without following links):
/// a sentinel tree must compare equal before and after.
pub fn snapshot(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let md = std::fs::symlink_metadata(&p).unwrap();
        let mut desc = format!(
            "mode={:o} uid={} gid={} size={} nlink={} mtime={}.{}",
            md.mode(),
            md.uid(),
            md.gid(),
            md.size(),
            md.nlink(),
            md.mtime(),
            md.mtime_nsec()
        );
        if md.file_type().is_symlink() {
            desc += &format!(" -> {:?}", std::fs::read_link(&p).unwrap());
        } else if md.is_file() {
            desc += &format!(
                " hash={}",
                blake3::hash(&std::fs::read(&p).unwrap()).to_hex()
            );
        } else if md.is_dir() {
            for e in std::fs::read_dir(&p).unwrap() {
                stack.push(e.unwrap().path());
            }
        }
        for x in list_xattrs(&p) {
            desc += &format!(" {}={:?}", String::from_utf8_lossy(&x.name), x.value);
        }
        out.insert(p, desc);
    }
    out
}

pub fn list_xattrs(p: &Path) -> Vec<Xattr> {
    let mut buf = vec![0u8; 65536];
    let n = rustix::fs::llistxattr(p, &mut buf[..]).unwrap_or(0);
    let mut out = Vec::new();
    for name in buf[..n].split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let mut value = vec![0u8; 65536];
        let len = rustix::fs::lgetxattr(p, name, &mut value[..]).unwrap();
        value.truncate(len);
        out.push(Xattr {
            name: name.to_vec(),
            value,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

pub fn set_xattr(p: &Path, name: &str, value: &[u8]) {
    rustix::fs::lsetxattr(p, name, value, rustix::fs::XattrFlags::empty()).unwrap();
}

pub fn meta(mode: u32, uid: u32, gid: u32, sec: i64, nsec: u32) -> Meta {
    Meta {
        mode,
        uid,
        gid,
        mtime: Timestamp { sec, nsec },
        xattrs: Vec::new(),
    }
}

pub fn rel(s: &str) -> RelPath {
    RelPath::new(s.as_bytes().to_vec(), &ferry_proto::Limits::default()).unwrap()
}

pub fn lstat(p: &Path) -> std::fs::Metadata {
    std::fs::symlink_metadata(p).unwrap()
}

pub fn path_of(base: &Path, name: &[u8]) -> PathBuf {
    base.join(std::ffi::OsStr::from_bytes(name))
}

pub fn mkfifo(p: &Path) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        p,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
}

/// Runs test `test` of this test binary again in a child process with `env` set to `dir`
/// (the child's cue to do the work instead of spawning), after `adjust` (another uid,
/// say), and asserts the child passed: for what must happen to a whole process.
pub fn rerun_in_child(
    test: &str,
    env: &str,
    dir: &Path,
    adjust: impl FnOnce(&mut std::process::Command),
) {
    let mut child = std::process::Command::new(std::env::current_exe().unwrap());
    child
        .args(["--exact", test, "--test-threads=1"])
        .env(env, dir);
    adjust(&mut child);
    assert!(
        child.status().unwrap().success(),
        "{test} failed in its child"
    );
}
