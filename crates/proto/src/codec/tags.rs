//! The numbers on the wire: message tags and enum codes. Changing any of them is a new
//! protocol version.

use crate::message::{ChangeKind, ErrorClass, FileFailure, RefuseReason};
use crate::model::{EntryKind, SpecialKind};

pub const HELLO: u8 = 1;
pub const WELCOME: u8 = 2;
pub const REFUSED: u8 = 3;
pub const ROOT: u8 = 4;
pub const LIST: u8 = 5;
pub const LIST_END: u8 = 6;
pub const ACK: u8 = 7;
pub const WANT: u8 = 8;
pub const SIGNATURE: u8 = 9;
pub const DATA: u8 = 10;
pub const HOLE: u8 = 11;
pub const DELTA: u8 = 12;
pub const FILE_END: u8 = 13;
pub const FILE_FAILED: u8 = 14;
pub const CHANGE: u8 = 15;
pub const FILE_ERROR: u8 = 16;
pub const DONE: u8 = 17;
pub const ERROR: u8 = 18;
pub const HEARTBEAT: u8 = 19;
pub const RESUME: u8 = 20;
pub const NOT_APPLIED: u8 = 21;
pub const COMPRESSED: u8 = 22;
pub const SOURCE_DONE: u8 = 23;
pub const BLOCK_BEGIN: u8 = 24;
pub const BLOCK_SUMS: u8 = 25;
pub const BLOCK_DATA: u8 = 26;
pub const BLOCK_ZERO: u8 = 27;
pub const BLOCK_SEGMENT_END: u8 = 28;
pub const BLOCK_END: u8 = 29;
pub const BLOCK_DONE: u8 = 30;
pub const JOIN: u8 = 31;
pub const JOINED: u8 = 32;
pub const WANT_RANGE: u8 = 33;
pub const RANGE_END: u8 = 34;
pub const WANTS: u8 = 35;
pub const FILES: u8 = 36;
pub const STREAM_GONE: u8 = 37;

pub const OPT_DELETE: u32 = 1;
pub const OPT_DRY_RUN: u32 = 2;
pub const OPT_CHECKSUM: u32 = 4;
pub const OPT_PROBE: u32 = 8;
pub const OPT_FSYNC: u32 = 16;
pub const OPT_ITEMIZE: u32 = 32;
pub const OPT_DELETE_EXCLUDED: u32 = 64;
pub const OPT_COMPRESS: u32 = 128;
pub const OPT_PULL: u32 = 256;
pub const OPT_BLOCK: u32 = 512;
pub const OPT_NO_SPACE_CHECK: u32 = 1024;
pub const OPT_INPLACE: u32 = 2048;
pub const OPT_STREAMS: u32 = 4096;

pub const CONTENT_FILE: u8 = 1;
pub const CONTENT_FILE_SUM: u8 = 2;
pub const CONTENT_DIR: u8 = 3;
pub const CONTENT_SYMLINK: u8 = 4;
pub const CONTENT_HARDLINK: u8 = 5;
pub const CONTENT_SPECIAL: u8 = 6;

pub fn tag_name(tag: u8) -> Option<&'static str> {
    Some(match tag {
        HELLO => "Hello",
        WELCOME => "Welcome",
        REFUSED => "Refused",
        ROOT => "Root",
        LIST => "List",
        LIST_END => "ListEnd",
        ACK => "Ack",
        WANT => "Want",
        SIGNATURE => "Signature",
        DATA => "Data",
        HOLE => "Hole",
        DELTA => "Delta",
        FILE_END => "FileEnd",
        FILE_FAILED => "FileFailed",
        CHANGE => "Change",
        FILE_ERROR => "FileError",
        DONE => "Done",
        ERROR => "Error",
        HEARTBEAT => "Heartbeat",
        RESUME => "Resume",
        NOT_APPLIED => "NotApplied",
        COMPRESSED => "Compressed",
        SOURCE_DONE => "SourceDone",
        BLOCK_BEGIN => "BlockBegin",
        BLOCK_SUMS => "BlockSums",
        BLOCK_DATA => "BlockData",
        BLOCK_ZERO => "BlockZero",
        BLOCK_SEGMENT_END => "BlockSegmentEnd",
        BLOCK_END => "BlockEnd",
        BLOCK_DONE => "BlockDone",
        JOIN => "Join",
        JOINED => "Joined",
        WANT_RANGE => "WantRange",
        RANGE_END => "RangeEnd",
        WANTS => "Wants",
        FILES => "Files",
        STREAM_GONE => "StreamGone",
        _ => return None,
    })
}

/// Declares a two-way mapping between an enum and its wire code.
macro_rules! codes {
    ($to:ident, $from:ident, $ty:ty { $($variant:ident = $code:literal),+ $(,)? }) => {
        pub fn $to(value: $ty) -> u8 {
            match value { $(<$ty>::$variant => $code),+ }
        }
        pub fn $from(code: u8) -> Option<$ty> {
            match code { $($code => Some(<$ty>::$variant),)+ _ => None }
        }
    };
}

codes!(refuse_code, refuse_from, RefuseReason {
    VersionMismatch = 1,
    UnknownVolume = 2,
    VolumeBusy = 3,
    VolumeUnavailable = 4,
    ReadOnly = 5,
    UnknownSession = 6,
    JoinClosed = 7,
    StreamTaken = 8,
    TooManyStreams = 9,
});
codes!(failure_code, failure_from, FileFailure {
    Vanished = 1,
    Changed = 2,
    ReadError = 3,
});
codes!(class_code, class_from, ErrorClass {
    Protocol = 1,
    FileIo = 2,
    Interrupted = 3,
});
codes!(change_code, change_from, ChangeKind {
    Created = 1,
    Updated = 2,
    MetaUpdated = 3,
    Deleted = 4,
});
codes!(special_code, special_from, SpecialKind {
    Fifo = 1,
    Socket = 2,
    CharDevice = 3,
    BlockDevice = 4,
});

pub fn entry_code(kind: EntryKind) -> u8 {
    match kind {
        EntryKind::File => 1,
        EntryKind::Dir => 2,
        EntryKind::Symlink => 3,
        EntryKind::HardLink => 4,
        EntryKind::Special(special) => 4 + special_code(special),
    }
}

pub fn entry_from(code: u8) -> Option<EntryKind> {
    Some(match code {
        1 => EntryKind::File,
        2 => EntryKind::Dir,
        3 => EntryKind::Symlink,
        4 => EntryKind::HardLink,
        _ => EntryKind::Special(special_from(code.checked_sub(4)?)?),
    })
}
