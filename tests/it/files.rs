//! Small helpers to make files with exact attributes. Paths are bytes, as in the product.

use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, Timespec, Timestamps, CWD, UTIME_OMIT};

/// `root/rel`, with `rel` as raw bytes.
pub fn at(root: &Path, rel: &[u8]) -> PathBuf {
    root.join(OsStr::from_bytes(rel))
}

/// Deterministic pseudo-random bytes: the BLAKE3 XOF of `seed`.
pub fn random_bytes(seed: &str, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    let mut hasher = blake3::Hasher::new();
    hasher.update(seed.as_bytes());
    hasher.finalize_xof().fill(&mut out);
    out
}

/// Writes `content` to `path` (creating parents) and sets its mode.
pub fn write(path: &Path, content: &[u8], mode: u32) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap_or_else(|e| panic!("mkdir -p {parent:?}: {e}"));
    }
    let mut f = fs::File::create(path).unwrap_or_else(|e| panic!("create {path:?}: {e}"));
    f.write_all(content)
        .unwrap_or_else(|e| panic!("write {path:?}: {e}"));
    chmod(path, mode);
}

pub fn mkdir(path: &Path, mode: u32) {
    fs::create_dir(path).unwrap_or_else(|e| panic!("mkdir {path:?}: {e}"));
    chmod(path, mode);
}

pub fn symlink(target: &[u8], path: &Path) {
    std::os::unix::fs::symlink(OsStr::from_bytes(target), path)
        .unwrap_or_else(|e| panic!("symlink {path:?}: {e}"));
}

/// `chmod(2)`, so it clears setuid/setgid that are not in `mode`.
pub fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {path:?} {mode:o}: {e}"));
}

/// `lchown`: never follows a symlink.
pub fn chown(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))
        .unwrap_or_else(|e| panic!("lchown {path:?} {uid}:{gid}: {e}"));
}

/// Sets the mtime (with ns) without following a symlink; leaves atime alone.
pub fn set_mtime(path: &Path, sec: i64, nsec: u32) {
    let times = Timestamps {
        last_access: Timespec {
            tv_sec: 0,
            tv_nsec: UTIME_OMIT,
        },
        last_modification: Timespec {
            tv_sec: sec,
            tv_nsec: nsec.into(),
        },
    };
    rustix::fs::utimensat(CWD, path, &times, AtFlags::SYMLINK_NOFOLLOW)
        .unwrap_or_else(|e| panic!("utimensat {path:?}: {e}"));
}

/// The mtime of `path` (not following symlinks) as (sec, nsec).
pub fn mtime(path: &Path) -> (i64, u32) {
    use std::os::unix::fs::MetadataExt;
    let m = fs::symlink_metadata(path).unwrap_or_else(|e| panic!("lstat {path:?}: {e}"));
    (m.mtime(), m.mtime_nsec() as u32)
}

pub fn set_xattr(path: &Path, name: &str, value: &[u8]) {
    rustix::fs::lsetxattr(path, name, value, rustix::fs::XattrFlags::empty())
        .unwrap_or_else(|e| panic!("setxattr {path:?} {name}: {e}"));
}

pub fn read(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap_or_else(|e| panic!("read {path:?}: {e}"))
}

/// A POSIX access/default ACL as the kernel stores it in `system.posix_acl_*`:
/// user::rw-, user:1234:r--, group::r--, group:5678:r--, mask::r--, other::--- (with
/// `dir`, every `r` becomes `r-x` and the owner gets `rwx`).
pub fn acl_blob(dir: bool) -> Vec<u8> {
    const UNDEFINED: u32 = u32::MAX;
    let (x, ox) = if dir { (1, 1) } else { (0, 0) };
    let entries: [(u16, u16, u32); 6] = [
        (0x01, 6 | ox, UNDEFINED), // ACL_USER_OBJ
        (0x02, 4 | x, 1234),       // ACL_USER
        (0x04, 4 | x, UNDEFINED),  // ACL_GROUP_OBJ
        (0x08, 4 | x, 5678),       // ACL_GROUP
        (0x10, 4 | x, UNDEFINED),  // ACL_MASK
        (0x20, 0, UNDEFINED),      // ACL_OTHER
    ];
    let mut blob = 2u32.to_le_bytes().to_vec();
    for (tag, perm, id) in entries {
        blob.extend_from_slice(&tag.to_le_bytes());
        blob.extend_from_slice(&perm.to_le_bytes());
        blob.extend_from_slice(&id.to_le_bytes());
    }
    blob
}

/// `path`'s own attributes as the protocol carries them (no xattrs): a volume root's, sent
/// as `Root` so that applying them changes nothing.
pub fn own_meta(path: &Path) -> ferry_proto::Meta {
    use std::os::unix::fs::MetadataExt;
    let m = fs::symlink_metadata(path).unwrap();
    ferry_proto::Meta {
        mode: m.mode() & 0o7777,
        uid: m.uid(),
        gid: m.gid(),
        mtime: ferry_proto::Timestamp {
            sec: m.mtime(),
            nsec: m.mtime_nsec() as u32,
        },
        xattrs: Vec::new(),
    }
}
