//! A source tree with every kind of entry and attribute Ferry promises to carry.
//!
//! The build is deterministic: two calls produce trees that `snapshot::diff` finds equal,
//! which is what the comparator tests rely on.

use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use rustix::fs::{makedev, mknodat, FileType, Mode, CWD};

use crate::files::{
    acl_blob, at, chmod, chown, mkdir, random_bytes, set_mtime, set_xattr, symlink, write,
};
use crate::snapshot::Snapshot;

/// Size of `sparse.img`: a hole, 4 KiB of data in the middle, a trailing hole.
pub const SPARSE_LEN: u64 = 8 << 20;

/// Builds the tree into the existing, empty directory `root`.
pub fn build_fidelity_tree(root: &Path) {
    let p = |rel: &str| at(root, rel.as_bytes());

    // Regular files with odd owners and every kind of permission bit. chown before chmod:
    // chown clears setuid/setgid.
    write(&p("plain.txt"), b"plain content\n", 0o644);
    chown(&p("plain.txt"), 1234, 5678);
    set_xattr(&p("plain.txt"), "user.comment", b"hello");
    set_xattr(
        &p("plain.txt"),
        "user.binary",
        &(0u8..=255).collect::<Vec<_>>(),
    );
    set_xattr(&p("plain.txt"), "user.empty", b"");
    write(&p("setuid"), b"#!/bin/sh\n", 0o644);
    chown(&p("setuid"), 0, 0);
    chmod(&p("setuid"), 0o4755);
    write(&p("setgid-file"), b"g\n", 0o644);
    chown(&p("setgid-file"), 4321, 8765);
    chmod(&p("setgid-file"), 0o2711);
    write(&p("secret"), b"only the owner\n", 0o600);
    chown(&p("secret"), 1000, 1000);
    write(&p("noperm"), b"nobody may read this\n", 0o000);
    write(&p("empty.txt"), b"", 0o644);
    write(
        &p("big.bin"),
        &random_bytes("fidelity big.bin", (1 << 20) + 123),
        0o640,
    );
    write(&p("ancient"), b"before 1970\n", 0o644);
    write(&p("future"), b"after 2100\n", 0o644);

    // Sparse: the holes must stay holes.
    let mut sparse = fs::File::create(p("sparse.img")).expect("create sparse.img");
    sparse.seek(SeekFrom::Start(4 << 20)).expect("seek");
    sparse.write_all(&[0xab; 4096]).expect("write sparse data");
    sparse.set_len(SPARSE_LEN).expect("set_len");
    drop(sparse);
    chmod(&p("sparse.img"), 0o644);

    // Directories: setgid (children inherit setgid unless told otherwise), sticky, empty,
    // owned by someone else, deep.
    mkdir(&p("setgid-dir"), 0o755);
    chown(&p("setgid-dir"), 0, 5678);
    chmod(&p("setgid-dir"), 0o2775);
    mkdir(&p("setgid-dir/plain-child"), 0o755); // chmod(2) 0755 drops the inherited setgid
    write(&p("setgid-dir/file"), b"in setgid dir\n", 0o664);
    chown(&p("setgid-dir/file"), 1234, 1234);
    mkdir(&p("sticky"), 0o1777);
    mkdir(&p("empty-dir"), 0o700);
    mkdir(&p("owned-dir"), 0o750);
    write(&p("owned-dir/inside"), b"x", 0o640);
    chown(&p("owned-dir/inside"), 4321, 8765);
    chown(&p("owned-dir"), 4321, 8765);
    set_xattr(&p("owned-dir"), "user.dir-attr", b"on a directory");
    let deep = "deep/1/2/3/4/5/6/7/8/9/10";
    fs::create_dir_all(p(deep)).expect("mkdir deep");
    write(&p(&format!("{deep}/leaf.txt")), b"leaf\n", 0o644);
    write(
        &p(&format!("long-names/{}", "n".repeat(255))),
        b"255-byte name\n",
        0o644,
    );

    // Names are bytes: not UTF-8, newline, tab, backslash, leading dash, spaces.
    let b = |rel: &[u8]| at(root, rel);
    write(&b(b"caf\xe9"), b"latin-1 name\n", 0o644);
    write(&b(b"new\nline"), b"newline in name\n", 0o644);
    write(&b(b"tab\tand\\backslash"), b"tab\n", 0o644);
    write(&b(b"-dash"), b"dash\n", 0o644);
    write(&b(b" spaces "), b"spaces\n", 0o644);
    mkdir(&b(b"dir-\xff\xfe"), 0o755);
    write(&b(b"dir-\xff\xfe/inner-\x01"), b"control byte\n", 0o644);

    // Hard links: a group of three names across two directories, and a pair.
    write(&p("links/a"), b"one inode, three names\n", 0o640);
    chown(&p("links/a"), 1234, 5678);
    fs::hard_link(p("links/a"), p("links/b")).expect("link b");
    fs::create_dir(p("other")).expect("mkdir other");
    fs::hard_link(p("links/a"), p("other/c")).expect("link c");
    write(&p("links/x"), b"a pair\n", 0o644);
    fs::hard_link(p("links/x"), p("links/y")).expect("link y");
    write(&p("links/single"), b"one name\n", 0o644);

    // Symlinks: opaque bytes, never followed (not even to set their times or owners).
    symlink(b"../../../etc/passwd", &p("escape-link"));
    symlink(b"/etc/hostname", &p("abs-link"));
    symlink(b"does/not/exist", &p("dangling"));
    symlink(b"caf\xe9/\n\xff", &p("bytes-link"));
    symlink(b"deep", &p("dir-link"));
    symlink(b"self-loop", &p("self-loop"));
    chown(&p("dangling"), 2222, 3333);

    // Special files.
    mkdir(&p("dev"), 0o755);
    special(&p("dev/fifo"), FileType::Fifo, 0);
    chmod(&p("dev/fifo"), 0o640);
    chown(&p("dev/fifo"), 1234, 5678);
    special(&p("dev/null"), FileType::CharacterDevice, makedev(1, 3));
    chmod(&p("dev/null"), 0o666);
    special(&p("dev/loop200"), FileType::BlockDevice, makedev(7, 200));
    chmod(&p("dev/loop200"), 0o660);
    chown(&p("dev/loop200"), 0, 6);

    // POSIX ACLs (as root). The child exists before the default ACL is set, so it has no
    // ACL of its own; a target that sets the default ACL first would give it one.
    write(&p("acl-file"), b"acl\n", 0o640);
    set_xattr(&p("acl-file"), "system.posix_acl_access", &acl_blob(false));
    mkdir(&p("acl-dir"), 0o750);
    write(&p("acl-dir/child"), b"no inherited acl\n", 0o600);
    set_xattr(&p("acl-dir"), "system.posix_acl_default", &acl_blob(true));
    set_xattr(&p("acl-dir"), "system.posix_acl_access", &acl_blob(true));

    // The root itself.
    chown(root, 4242, 4343);
    chmod(root, 0o751);

    set_all_mtimes(root);
    set_mtime(&p("ancient"), -31_536_000, 5);
    set_mtime(&p("future"), 4_102_444_800, 999_999_999);
}

fn special(path: &Path, kind: FileType, dev: u64) {
    mknodat(CWD, path, kind, Mode::from_raw_mode(0o600), dev)
        .unwrap_or_else(|e| panic!("mknod {path:?}: {e}"));
}

/// Gives every entry its own mtime with nanoseconds, derived from its path; children
/// before their directory, the root last (creating a child changes the parent's mtime).
pub fn set_all_mtimes(root: &Path) {
    let snap = Snapshot::take(root);
    let mut paths: Vec<&Vec<u8>> = snap.nodes.keys().collect();
    let depth = |rel: &[u8]| {
        if rel.is_empty() {
            0
        } else {
            1 + rel.iter().filter(|&&b| b == b'/').count()
        }
    };
    paths.sort_by_key(|rel| std::cmp::Reverse(depth(rel)));
    for rel in paths {
        let h = blake3::hash(rel);
        let h = h.as_bytes();
        let sec =
            1_400_000_000 + i64::from(u32::from_le_bytes([h[0], h[1], h[2], h[3]]) % 200_000_000);
        let nsec = u32::from_le_bytes([h[4], h[5], h[6], h[7]]) % 1_000_000_000;
        set_mtime(&at(root, rel), sec, nsec);
    }
}
