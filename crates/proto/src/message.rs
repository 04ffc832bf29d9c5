//! The messages of a session, as plain data.
//!
//! A session is one TLS connection. The source speaks first:
//!
//! ```text
//! source                                   target
//!   Hello{version, volume, options}  ──▶
//!                                    ◀──  Welcome{version} | Refused{reason}
//!   Root{meta}                       ──▶
//!   List{dir, first, entries..}      ──▶  plans each entry against its tree
//!                                    ◀──  Want{index, delta} [+ Signature pieces]
//!                                    ◀──  Resume{index, offset, hash}  (a partial to finish)
//!                                    ◀──  Ack{through}     (every entry < through is resolved)
//!   Data/Hole/Delta.. FileEnd{hash}  ──▶  writes a temp file, verifies, renames
//!   ListEnd{entries, read_errors}    ──▶
//!                                    ◀──  Done{stats}     (after deletions and dir times)
//! ```
//!
//! Entries are numbered in listing order: the entries of a `List` frame have indices
//! `first, first + 1, ...`, and every later message names a file by that index.
//!
//! The client that connects is the source of a push. In a pull (`SessionOptions::pull`)
//! it is the target instead: after `Welcome` the server speaks the source's part above,
//! the client the target's, and after `Done` the server adds `SourceDone` (the counts
//! only a source knows, for the puller's report).

use bytes::Bytes;

use crate::model::{Entry, EntryKind, Meta};
use crate::session::stream::SessionKey;

/// The wire format's version. A peer that speaks another is refused in the handshake
/// with [`RefuseReason::VersionMismatch`].
///
/// * 1: the first format; block signatures in fast_rsync's MD4 format.
/// * 2: block signatures in Ferry's own format (rolling checksum and BLAKE3 per block,
///   with the basis length), see `ferry_delta::signature`.
/// * 3: pull (the client asks the server to be the source) and `SourceDone`.
/// * 4: block signatures hash blocks with XXH3-128 instead of BLAKE3 (files are still
///   verified with BLAKE3).
/// * 5: block sessions (`SessionOptions::block`, the `Block*` messages): a disk image or
///   device synced block by block onto a block volume, or pulled from one; and the
///   pre-flight space check: the `no_space_check` option, `Welcome` carries the target
///   volume's free space, and `Done` what the session needed of it.
/// * 6: several streams per session: the `streams` option, `Welcome` carries the server's
///   cores, the streams the session may have and the key to join it; `Join`/`Joined` and
///   their refusals, with which another connection becomes a stream of the session
///   ([`crate::session::join`]); and the frames that spread a session's work over them
///   (`Wants`, `Files`, `WantRange`, `RangeEnd`, `StreamGone`), taken only in a session
///   with the `streams` option.
pub const PROTOCOL_VERSION: u32 = 6;

/// What the source asks of this session.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionOptions {
    /// Remove target entries that the source does not have.
    pub delete: bool,
    /// Plan and report, change nothing.
    pub dry_run: bool,
    /// Compare files by BLAKE3 of their content instead of size and mtime.
    pub checksum: bool,
    /// Flush every file to stable storage (`fsync`) before renaming it into place.
    pub fsync: bool,
    /// With `delete`, also delete target entries that the filter excludes (otherwise
    /// excluded entries are protected from deletion).
    pub delete_excluded: bool,
    /// The source sends compressible frames zstd-compressed (either side may then).
    pub compress: bool,
    /// Only check that the volume is there and writable (`ferry probe`): the target
    /// answers `Welcome` or `Refused` and ends the session; nothing is listed.
    pub probe: bool,
    /// Report every change in a real run too (`Change` for created, updated and
    /// attribute-only entries), not only deletions (`push --itemize-changes`).
    pub itemize: bool,
    /// `ferry pull`: the server is the source and the client the target.
    pub pull: bool,
    /// A block session: the content is one device or disk image, synced block by block
    /// (the `Block*` messages, see [`crate::session::block`]) instead of a listed tree.
    /// The volume must be a block volume.
    pub block: bool,
    /// `--no-space-check`: the target does not stop a session whose writes exceed its
    /// volume's free space before they fill it, nor deletes early to make room.
    pub no_space_check: bool,
    /// The target writes a changed file's new content into the existing file instead
    /// of a temp copy (`--inplace`).
    pub inplace: bool,
    /// The client may open more connections and join them to this session (`--streams`);
    /// the server's `Welcome` says how many it may have and with which key.
    pub streams: bool,
}

/// Why the target would not start a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefuseReason {
    VersionMismatch,
    UnknownVolume,
    VolumeBusy,
    VolumeUnavailable,
    ReadOnly,
    /// The answer to a `Join` only, as are the three below: no session has that key (or
    /// the joining client is not the session's).
    UnknownSession,
    /// The session is finishing: it takes no more streams.
    JoinClosed,
    /// That stream number is stream 0 or joined before.
    StreamTaken,
    /// That stream number is not below the session's `streams_max`, or the server holds
    /// all the joined streams it takes.
    TooManyStreams,
}

/// Why the source could not deliver a file it had listed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileFailure {
    /// It no longer exists.
    Vanished,
    /// It changed while it was read; it will be sent by the next pass.
    Changed,
    /// Reading it failed.
    ReadError,
}

/// How bad a fatal `Error` is, so the other side can pick its exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// The peer broke the protocol.
    Protocol,
    /// The target's filesystem failed (no space, read-only, I/O error).
    FileIo,
    /// The side that sends it is stopping on a signal.
    Interrupted,
}

/// What kind of change a [`Message::Change`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    Created,
    Updated,
    MetaUpdated,
    Deleted,
}

/// A target volume's free space, as its `Welcome` tells the client (`statvfs`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VolumeSpace {
    /// Bytes any writer may still use (`f_bavail × f_frsize`).
    pub free_bytes: u64,
    /// Bytes the filesystem reserves for root besides (`(f_bfree − f_bavail) × f_frsize`).
    pub reserved_bytes: u64,
    /// Inodes any writer may still use (`f_favail`); 0 when the filesystem does not count
    /// them.
    pub free_inodes: u64,
    /// The fundamental block size (`f_frsize`).
    pub block_size: u64,
}

/// The target's account of a session, sent in `Done`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TargetStats {
    /// Regular files whose content was written (new or changed).
    pub files_transferred: u64,
    /// Bytes of the files written (full size, also when they came as a delta).
    pub bytes_written: u64,
    /// Directories, symlinks, hard links and special files created or replaced.
    pub entries_created: u64,
    /// Entries whose content matched but whose attributes were updated.
    pub meta_updated: u64,
    /// Entries removed by `--delete` (a removed directory counts its contents too).
    pub deleted: u64,
    /// `--delete` was asked for but not done because the source had read errors.
    pub delete_skipped: bool,
    /// Files that were re-sent whole because their delta did not verify.
    pub resent: u64,
    /// Per-file errors at the target (each also sent as a `FileError`).
    pub file_errors: u64,
    /// Entries whose ownership could not be applied (target not root).
    pub not_applied_owner: u64,
    /// Extended attributes that could not be applied.
    pub not_applied_xattrs: u64,
    /// Device nodes, FIFOs and sockets that could not be created (target not root).
    pub not_applied_special: u64,
    /// The target volume's free bytes when the session started (what unprivileged
    /// writers may use), 0 if the target could not read them.
    pub space_free: u64,
    /// Bytes more the filesystem reserves for root, not counted as free.
    pub space_reserved: u64,
    /// The target volume's free inodes, 0 if unknown (some filesystems do not count them).
    pub inodes_free: u64,
    /// The most the session's writes needed of the free bytes at any point (each file
    /// rounded up to whole blocks, counting what replaced files and `--delete` free).
    /// In a dry run, what the real run would need.
    pub space_needed: u64,
    /// The same for inodes.
    pub inodes_needed: u64,
    /// Files whose new content was written into the existing file (`--inplace`, or no
    /// room on the target for a second copy of it).
    pub files_inplace: u64,
}

/// The source's account of a pulled session, sent in `SourceDone`: what only the
/// source knows, so the puller's summary says what a pusher's would.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceStats {
    /// Regular files listed (hard links included).
    pub files_total: u64,
    /// Bytes of the regular files listed.
    pub bytes_total: u64,
    /// Entries listed of every kind.
    pub entries_total: u64,
    /// Files the target already had.
    pub files_unchanged: u64,
    /// Files sent as a delta.
    pub files_delta: u64,
    /// File content sent as literal bytes.
    pub bytes_literal: u64,
    /// File content the target copied from its basis (delta matches).
    pub bytes_matched: u64,
    /// File content not sent because the target's partial held it.
    pub bytes_resumed: u64,
    /// Files that vanished or changed while they were read.
    pub vanished: u64,
    /// Entries or files the source could not read.
    pub read_errors: u64,
}

/// One frame's worth of protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    Hello {
        version: u32,
        volume: Vec<u8>,
        options: SessionOptions,
        /// The source's include/exclude rules: the target protects what they exclude.
        filter: crate::filter::Filter,
    },
    Welcome {
        version: u32,
        /// The free space of the volume a push (or probe) will write to, as the target
        /// read it at admission (`None` when the server is the source of a pull, or could
        /// not read it).
        space: Option<VolumeSpace>,
        /// The CPUs the server may use (`available_parallelism`, so a cgroup's limit).
        cores: u32,
        /// How many streams this session may have, stream 0 included: 1 unless the
        /// client asked for `streams`. A client refuses 0 or more than
        /// [`crate::Limits::max_streams`].
        streams_max: u16,
        /// The key a joining connection presents; present exactly when `streams_max > 1`.
        key: Option<SessionKey>,
    },
    /// Instead of `Hello`, the first frame of a connection that joins a running session
    /// as stream `stream` (`1..streams_max`). `version` comes first in every version, so
    /// a server of another version can still refuse it as such.
    Join {
        version: u32,
        key: SessionKey,
        stream: u16,
    },
    /// The answer to a good `Join`: this connection is now stream `stream` of the session.
    Joined { stream: u16 },
    /// Target → source: send bytes `offset..offset + len` of file `index`, a range of a
    /// large file ([`crate::session::stream::RANGE`] bytes, the file's last range fewer).
    /// With `have`, the target already holds those bytes and `cv` is their BLAKE3
    /// chaining value: the source sends them only if its own differ.
    WantRange {
        index: u64,
        offset: u64,
        len: u64,
        have: bool,
        cv: [u8; 32],
    },
    /// Source → target: the range `offset..offset + len` of file `index` is complete on
    /// this stream. `same`: the target's bytes (`WantRange.have`) are the source's, and no
    /// data came; otherwise `Data`/`Hole` frames covered the range first, and `cv` is the
    /// BLAKE3 chaining value of the source's bytes.
    RangeEnd {
        index: u64,
        offset: u64,
        len: u64,
        same: bool,
        cv: [u8; 32],
    },
    /// Target → source: send these files whole, as that many `Want{index, delta: false}`
    /// in this order (1 to [`crate::Limits::max_wants_per_frame`]).
    Wants { indices: Vec<u64> },
    /// Source → target: whole small files, each as its `Data` from offset 0 and its
    /// `FileEnd` would say (1 to [`crate::Limits::max_files_per_frame`]).
    Files { files: Vec<SmallFile> },
    /// Either side, on stream 0 only: this side lost stream `stream` (its connection
    /// ended before the session did) and stopped using it.
    StreamGone { stream: u16 },
    Refused {
        reason: RefuseReason,
        message: String,
    },
    /// The attributes of the source directory itself (applied to the volume root).
    Root { meta: Meta },
    /// Children of directory `dir` (a relative path, empty for the root), indices from
    /// `first`. A directory's children may span several frames; `dir_done` marks the last.
    /// `dir_complete` is false if the source could not read all of the directory.
    List {
        dir: Vec<u8>,
        first: u64,
        entries: Vec<Entry>,
        dir_done: bool,
        dir_complete: bool,
    },
    /// No more listing: `entries` were listed in all; `read_errors` entries or
    /// directories could not be read at the source.
    ListEnd { entries: u64, read_errors: u64 },
    /// Every entry with an index below `through` is resolved (in place, unchanged or
    /// failed).
    Ack { through: u64 },
    /// Send file `index`. With `delta`, `Signature` frames for the target's basis follow
    /// and the source may answer with `Delta` frames.
    Want { index: u64, delta: bool },
    /// Send file `index` from `offset` on: the target holds its first `offset` bytes
    /// (a partial from an interrupted session) whose BLAKE3 is `hash`. The source checks
    /// its own prefix and sends from `offset` if it matches, else from 0.
    Resume {
        index: u64,
        offset: u64,
        hash: [u8; 32],
    },
    /// A piece of the serialized signature of file `index`'s basis; `last` ends it.
    Signature {
        index: u64,
        bytes: Bytes,
        last: bool,
    },
    /// Literal content of file `index` at `offset`.
    Data {
        index: u64,
        offset: u64,
        bytes: Bytes,
    },
    /// `len` bytes of zeros at `offset` that the source stores as a hole.
    Hole { index: u64, offset: u64, len: u64 },
    /// A delta against the basis that produces `len` bytes of content at `offset`.
    Delta {
        index: u64,
        offset: u64,
        len: u64,
        bytes: Bytes,
    },
    /// File `index` is complete: `size` bytes whose BLAKE3 is `hash`.
    FileEnd {
        index: u64,
        size: u64,
        hash: [u8; 32],
    },
    /// The source cannot send file `index`.
    FileFailed {
        index: u64,
        reason: FileFailure,
        message: String,
    },
    /// A change the target made (or, in a dry run, would make). Sent in dry runs, for
    /// deletions, and for every change when the session asked to itemize.
    Change {
        path: Vec<u8>,
        kind: ChangeKind,
        entry: EntryKind,
    },
    /// Attributes of `path` the target could not apply (it runs without the privilege):
    /// ownership, `xattrs` extended attributes, or the special file itself. Sent for the
    /// first few such entries as examples; the counts are in `Done`.
    NotApplied {
        path: Vec<u8>,
        owner: bool,
        xattrs: u32,
        special: bool,
    },
    /// A per-file error at the target; the session goes on.
    FileError { path: Vec<u8>, message: String },
    /// The target has finished everything.
    Done { stats: TargetStats },
    /// Pull only: the source's counts, its last message after the target's `Done`.
    SourceDone { stats: SourceStats },
    /// A fatal error; the sender closes the session after it.
    Error { class: ErrorClass, message: String },
    /// Keeps an idle connection alive through routers and load balancers.
    Heartbeat,
    /// Block session, source → target, first: the source's content is `size` bytes.
    BlockBegin { size: u64 },
    /// Block session, target → source: the hashes of the target's current blocks of the
    /// segment at `offset`, [`crate::session::block::HASH_LEN`] bytes per block.
    BlockSums { offset: u64, hashes: Bytes },
    /// Block session, source → target: content for `offset..offset + len(bytes)`.
    BlockData { offset: u64, bytes: Bytes },
    /// Block session, source → target: `len` bytes of zeros at `offset`.
    BlockZero { offset: u64, len: u64 },
    /// Block session, source → target: everything the segment at `offset` needs was sent.
    BlockSegmentEnd { offset: u64 },
    /// Block session, source → target: every segment of this round was sent; the
    /// source's whole content is `size` bytes whose BLAKE3 is `hash`.
    BlockEnd { size: u64, hash: [u8; 32] },
    /// Block session, target → source: the content verified; the session is over.
    BlockDone { stats: BlockStats },
}

/// One whole file in a `Files` frame: its content and the BLAKE3 of it; its size is the
/// length of `bytes`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmallFile {
    pub index: u64,
    pub hash: [u8; 32],
    pub bytes: Bytes,
}

/// The target's account of a block session, sent in `BlockDone`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlockStats {
    /// The target's size: bytes past the source's size are its tail, left as they were.
    pub device_size: u64,
    /// Bytes of content written.
    pub bytes_written: u64,
    /// Bytes zeroed (holes punched or zeros written) where the target did not read zeros.
    pub bytes_zeroed: u64,
    /// Rounds after the first: sent again because the content did not verify.
    pub resent_rounds: u64,
}

impl Message {
    /// A short name for logs and errors.
    pub fn name(&self) -> &'static str {
        match self {
            Message::Hello { .. } => "Hello",
            Message::Welcome { .. } => "Welcome",
            Message::Refused { .. } => "Refused",
            Message::Join { .. } => "Join",
            Message::Joined { .. } => "Joined",
            Message::WantRange { .. } => "WantRange",
            Message::RangeEnd { .. } => "RangeEnd",
            Message::Wants { .. } => "Wants",
            Message::Files { .. } => "Files",
            Message::StreamGone { .. } => "StreamGone",
            Message::Root { .. } => "Root",
            Message::List { .. } => "List",
            Message::ListEnd { .. } => "ListEnd",
            Message::Ack { .. } => "Ack",
            Message::Want { .. } => "Want",
            Message::Resume { .. } => "Resume",
            Message::Signature { .. } => "Signature",
            Message::Data { .. } => "Data",
            Message::Hole { .. } => "Hole",
            Message::Delta { .. } => "Delta",
            Message::FileEnd { .. } => "FileEnd",
            Message::FileFailed { .. } => "FileFailed",
            Message::Change { .. } => "Change",
            Message::NotApplied { .. } => "NotApplied",
            Message::FileError { .. } => "FileError",
            Message::Done { .. } => "Done",
            Message::SourceDone { .. } => "SourceDone",
            Message::Error { .. } => "Error",
            Message::Heartbeat => "Heartbeat",
            Message::BlockBegin { .. } => "BlockBegin",
            Message::BlockSums { .. } => "BlockSums",
            Message::BlockData { .. } => "BlockData",
            Message::BlockZero { .. } => "BlockZero",
            Message::BlockSegmentEnd { .. } => "BlockSegmentEnd",
            Message::BlockEnd { .. } => "BlockEnd",
            Message::BlockDone { .. } => "BlockDone",
        }
    }
}
