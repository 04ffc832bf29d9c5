//! The comparator must see every difference, or the fidelity tests pass vacuously.
//! Each test builds the fidelity tree twice, changes one thing in the copy (restoring
//! anything else the change disturbed, like the parent's mtime) and expects that one
//! difference to be reported, naming the path and the attribute.

use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use rustix::fs::{makedev, mknodat, FileType, Mode, CWD};
use tempfile::TempDir;

use crate::fidelity::{build_fidelity_tree, SPARSE_LEN};
use crate::files::{at, chmod, mtime, set_mtime, set_xattr, symlink};
use crate::snapshot::{diff, Snapshot};

/// Two identical fidelity trees.
fn twins() -> (TempDir, TempDir) {
    let (a, b) = (TempDir::new().unwrap(), TempDir::new().unwrap());
    build_fidelity_tree(a.path());
    build_fidelity_tree(b.path());
    (a, b)
}

/// Changes `b` with `mutate` (then restores the mtimes of `keep_mtime_of`) and asserts that
/// the diff names `path` with `attr`, and that every line is about `attr` (nothing else
/// changed by accident, so the detection is of this attribute).
#[track_caller]
fn assert_detects(mutate: impl FnOnce(&Path), keep_mtime_of: &[&str], path: &str, attr: &str) {
    let (a, b) = twins();
    let saved: Vec<_> = keep_mtime_of
        .iter()
        .map(|rel| {
            (
                at(b.path(), rel.as_bytes()),
                mtime(&at(b.path(), rel.as_bytes())),
            )
        })
        .collect();
    mutate(b.path());
    for (p, (sec, nsec)) in saved {
        set_mtime(&p, sec, nsec);
    }
    let problems = diff(&Snapshot::take(a.path()), &Snapshot::take(b.path()));
    assert!(
        problems
            .iter()
            .any(|l| l.contains(path) && l.contains(attr))
            && problems.iter().all(|l| l.contains(attr)),
        "expected differences in {attr:?} only, one of them at {path}, got:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn identical_trees_have_no_differences() {
    let (a, b) = twins();
    let problems = diff(&Snapshot::take(a.path()), &Snapshot::take(b.path()));
    assert!(
        problems.is_empty(),
        "two builds differ:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn detects_mode() {
    assert_detects(|b| chmod(&b.join("setuid"), 0o755), &[], "setuid", "mode");
}

#[test]
fn detects_owner() {
    assert_detects(
        |b| crate::files::chown(&b.join("secret"), 1000, 1001),
        &[],
        "secret",
        "gid",
    );
}

#[test]
fn detects_file_mtime_nanoseconds() {
    assert_detects(
        |b| {
            let (sec, nsec) = mtime(&b.join("plain.txt"));
            set_mtime(&b.join("plain.txt"), sec, (nsec + 1) % 1_000_000_000);
        },
        &[],
        "plain.txt",
        "mtime",
    );
}

#[test]
fn detects_dir_mtime() {
    assert_detects(
        |b| set_mtime(&b.join("empty-dir"), 1, 1),
        &[],
        "empty-dir",
        "mtime",
    );
}

#[test]
fn detects_same_size_content_change() {
    assert_detects(
        |b| {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .open(b.join("big.bin"))
                .unwrap();
            f.seek(SeekFrom::Start(500_000)).unwrap();
            f.write_all(b"X").unwrap();
        },
        &["big.bin"],
        "big.bin",
        "content",
    );
}

#[test]
fn detects_xattr_value() {
    assert_detects(
        |b| set_xattr(&b.join("plain.txt"), "user.comment", b"hellO"),
        &[],
        "plain.txt",
        "user.comment",
    );
}

#[test]
fn detects_acl() {
    assert_detects(
        |b| rustix::fs::lremovexattr(b.join("acl-dir"), "system.posix_acl_default").unwrap(),
        &[],
        "acl-dir",
        "system.posix_acl_default",
    );
}

#[test]
fn detects_symlink_target() {
    assert_detects(
        |b| {
            let link = b.join("escape-link");
            let t = mtime(&link);
            fs::remove_file(&link).unwrap();
            symlink(b"../../../etc/shadow", &link);
            set_mtime(&link, t.0, t.1);
        },
        &[""],
        "escape-link",
        "symlink target",
    );
}

#[test]
fn detects_rdev() {
    assert_detects(
        |b| {
            let dev = b.join("dev/null");
            let t = mtime(&dev);
            fs::remove_file(&dev).unwrap();
            mknodat(
                CWD,
                &dev,
                FileType::CharacterDevice,
                Mode::from_raw_mode(0o666),
                makedev(1, 5),
            )
            .unwrap();
            chmod(&dev, 0o666);
            set_mtime(&dev, t.0, t.1);
        },
        &["dev"],
        "dev/null",
        "rdev",
    );
}

#[test]
fn detects_missing_file() {
    assert_detects(
        |b| fs::remove_file(b.join("links/single")).unwrap(),
        &["links"],
        "links/single",
        "missing",
    );
}

#[test]
fn detects_extra_file() {
    assert_detects(
        |b| fs::write(b.join("owned-dir/extra"), b"x").unwrap(),
        &["owned-dir"],
        "owned-dir/extra",
        "extra",
    );
}

#[test]
fn detects_broken_hard_link_group() {
    assert_detects(
        |b| {
            // Same content, mode, owner and mtime, but its own inode.
            let c = b.join("other/c");
            let t = mtime(&c);
            let tmp = b.join("other/c.tmp");
            fs::copy(&c, &tmp).unwrap();
            std::os::unix::fs::lchown(&tmp, Some(1234), Some(5678)).unwrap();
            chmod(&tmp, 0o640);
            fs::rename(&tmp, &c).unwrap();
            set_mtime(&c, t.0, t.1);
        },
        &["other"],
        "other/c",
        "hard-link group",
    );
}

#[test]
fn detects_filled_holes() {
    assert_detects(
        |b| {
            let p = b.join("sparse.img");
            let t = mtime(&p);
            let content = fs::read(&p).unwrap();
            assert_eq!(content.len() as u64, SPARSE_LEN);
            let mut f = fs::OpenOptions::new().write(true).open(&p).unwrap();
            f.write_all(&content).unwrap(); // every block now allocated
            f.sync_all().unwrap();
            set_mtime(&p, t.0, t.1);
        },
        &[],
        "sparse.img",
        "sparseness",
    );
}
