//! A small file asked whole, read for a `Files` frame: opened, checked against its
//! listing, read in one piece and hashed in one call, checked again. A file that is not
//! what a `Files` entry may carry (it has holes: less allocated than its size) is left to
//! [`super::send::send_file`], which sends its holes as holes.
//!
//! Runs on a sender thread. Must not import the driver or the connection.

use ferry_proto::FileFailure;
use ferry_tree::SourceRoot;

use super::send::{read_chunk, still_as_listed, FileInfo};

/// What reading one small file gave.
pub enum Small {
    /// Its content and BLAKE3, read as listed.
    Read { hash: [u8; 32], bytes: bytes::Bytes },
    /// It vanished, changed or could not be read: the target is told with `FileFailed`.
    Failed(FileFailure, String),
    /// Not for a `Files` entry (less allocated than its size): send it as usual.
    HasHoles,
}

/// Reads `info`'s file whole, for a `Files` entry.
pub fn read_small(root: &SourceRoot, info: &FileInfo) -> Small {
    let opened = match root.open_file(&info.path) {
        Ok(opened) => opened,
        Err(e) if e.is_not_found() => {
            return Small::Failed(FileFailure::Vanished, "vanished".into())
        }
        Err(e) => return Small::Failed(FileFailure::ReadError, e.to_string()),
    };
    if (opened.size, opened.mtime) != (info.size, info.mtime) {
        return Small::Failed(
            FileFailure::Changed,
            "changed since it was listed; the next pass sends it".into(),
        );
    }
    if opened.allocated < info.size {
        return Small::HasHoles;
    }
    let bytes = match read_chunk(&opened.file, 0, info.size as usize) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            return Small::Failed(FileFailure::Changed, "shrank while it was read".into())
        }
        Err(e) => return Small::Failed(FileFailure::ReadError, e.to_string()),
    };
    if !still_as_listed(&opened.file, info) {
        return Small::Failed(
            FileFailure::Changed,
            "changed while it was read; the next pass sends it".into(),
        );
    }
    Small::Read {
        hash: *blake3::hash(&bytes).as_bytes(),
        bytes,
    }
}
