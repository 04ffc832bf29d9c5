//! The file model both sides agree on: what an entry of the tree is, as plain data.
//!
//! Nothing here touches a filesystem; `ferry-tree` reads and writes these values,
//! the codec puts them on the wire.

/// A timestamp with nanoseconds, as `struct timespec` holds it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    pub sec: i64,
    /// Always below 1_000_000_000 (the codec refuses anything else).
    pub nsec: u32,
}

/// One extended attribute, name and value as raw bytes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Xattr {
    pub name: Vec<u8>,
    pub value: Vec<u8>,
}

/// The attributes every kind of entry carries.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Meta {
    /// Permission bits including setuid, setgid and sticky (`mode & 0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: Timestamp,
    /// In the order the source listed them; names are unique.
    pub xattrs: Vec<Xattr>,
}

/// The kinds of special file that are recreated with `mknod`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SpecialKind {
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
}

/// What an entry is, with what only that kind has.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Content {
    /// A regular file of `size` bytes. `checksum` is its BLAKE3 when the source was asked
    /// to compare by content (`--checksum`).
    File {
        size: u64,
        checksum: Option<[u8; 32]>,
    },
    Dir,
    /// The link's target, kept as opaque bytes: never resolved by either side.
    Symlink {
        target: Vec<u8>,
    },
    /// Another name for the regular file that was listed earlier with index `leader`,
    /// at `path` (relative to the root). The target links to that path once the leader
    /// is in place, so it never has to remember where every file went.
    HardLink {
        leader: u64,
        path: Vec<u8>,
    },
    Special {
        kind: SpecialKind,
        rdev: u64,
    },
}

/// The kind of an entry, as reports name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
    HardLink,
    Special(SpecialKind),
}

impl EntryKind {
    pub fn name(self) -> &'static str {
        match self {
            EntryKind::File => "file",
            EntryKind::Dir => "dir",
            EntryKind::Symlink => "symlink",
            EntryKind::HardLink => "hardlink",
            EntryKind::Special(SpecialKind::Fifo) => "fifo",
            EntryKind::Special(SpecialKind::Socket) => "socket",
            EntryKind::Special(SpecialKind::CharDevice) => "chardev",
            EntryKind::Special(SpecialKind::BlockDevice) => "blockdev",
        }
    }
}

impl Content {
    pub fn entry_kind(&self) -> EntryKind {
        match self {
            Content::File { .. } => EntryKind::File,
            Content::Dir => EntryKind::Dir,
            Content::Symlink { .. } => EntryKind::Symlink,
            Content::HardLink { .. } => EntryKind::HardLink,
            Content::Special { kind, .. } => EntryKind::Special(*kind),
        }
    }

    pub fn kind_name(&self) -> &'static str {
        match self {
            Content::File { .. } => "file",
            Content::Dir => "dir",
            Content::Symlink { .. } => "symlink",
            Content::HardLink { .. } => "hardlink",
            Content::Special {
                kind: SpecialKind::Fifo,
                ..
            } => "fifo",
            Content::Special {
                kind: SpecialKind::Socket,
                ..
            } => "socket",
            Content::Special {
                kind: SpecialKind::CharDevice,
                ..
            } => "chardev",
            Content::Special {
                kind: SpecialKind::BlockDevice,
                ..
            } => "blockdev",
        }
    }
}

/// One child of a listed directory.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Entry {
    /// A single path component (see [`crate::path::check_name`]).
    pub name: Vec<u8>,
    pub meta: Meta,
    pub content: Content,
}
