//! What is already at a name on the target, as plain data the engine compares
//! against the source's entry.

use ferry_proto::{SpecialKind, Timestamp};
use rustix::fs::{FileType, Stat};

/// What is at a name, from `fstatat(AT_SYMLINK_NOFOLLOW)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Existing {
    pub kind: ExistingKind,
    pub size: u64,
    /// Permission bits including setuid, setgid and sticky (`& 0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: Timestamp,
    pub dev: u64,
    pub ino: u64,
    pub nlink: u64,
    pub rdev: u64,
    /// Bytes allocated to it (`st_blocks × 512`): what removing or replacing it frees.
    pub allocated: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExistingKind {
    File,
    Dir,
    Symlink,
    Special(SpecialKind),
}

/// What could not be applied: counted and reported by the engine, never fatal.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NotApplied {
    /// Ownership differs from what was asked (not root, or the kernel refused).
    pub owner: bool,
    /// Attributes the filesystem or the kernel refused.
    pub xattrs: u32,
    /// A device node that was not created (not root, or no `CAP_MKNOD`).
    pub special: bool,
}

impl NotApplied {
    pub(crate) fn special() -> NotApplied {
        NotApplied {
            special: true,
            ..NotApplied::default()
        }
    }
}

impl Existing {
    // Field widths of `struct stat` differ between architectures (`st_nlink` is 32-bit
    // on aarch64), hence the casts.
    #[allow(clippy::unnecessary_cast)]
    pub(crate) fn from_stat(st: &Stat) -> Existing {
        Existing {
            kind: kind_of(st.st_mode),
            size: u64::try_from(st.st_size).unwrap_or(0),
            mode: st.st_mode & 0o7777,
            uid: st.st_uid,
            gid: st.st_gid,
            mtime: mtime_of(st),
            dev: st.st_dev,
            ino: st.st_ino,
            nlink: st.st_nlink as u64,
            rdev: st.st_rdev,
            allocated: (st.st_blocks as u64).saturating_mul(512),
        }
    }
}

/// The kind from `st_mode`. An unknown type (none exists on Linux today) is reported
/// as a socket: something that is neither file, dir nor link and holds no data.
pub(crate) fn kind_of(st_mode: u32) -> ExistingKind {
    match FileType::from_raw_mode(st_mode) {
        FileType::RegularFile => ExistingKind::File,
        FileType::Directory => ExistingKind::Dir,
        FileType::Symlink => ExistingKind::Symlink,
        FileType::Fifo => ExistingKind::Special(SpecialKind::Fifo),
        FileType::CharacterDevice => ExistingKind::Special(SpecialKind::CharDevice),
        FileType::BlockDevice => ExistingKind::Special(SpecialKind::BlockDevice),
        FileType::Socket | FileType::Unknown => ExistingKind::Special(SpecialKind::Socket),
    }
}

/// `st_mtime` with nanoseconds.
#[allow(clippy::unnecessary_cast)]
pub(crate) fn mtime_of(st: &Stat) -> Timestamp {
    Timestamp {
        sec: st.st_mtime as i64,
        nsec: st.st_mtime_nsec as u32,
    }
}

/// The file type `mknod` needs for a special kind.
pub(crate) fn file_type_of(kind: SpecialKind) -> FileType {
    match kind {
        SpecialKind::Fifo => FileType::Fifo,
        SpecialKind::Socket => FileType::Socket,
        SpecialKind::CharDevice => FileType::CharacterDevice,
        SpecialKind::BlockDevice => FileType::BlockDevice,
    }
}
