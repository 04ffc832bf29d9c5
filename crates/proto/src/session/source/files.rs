//! A `Files` frame as a source's sender puts it together: whole small files, each with
//! its BLAKE3, within the frame bounds a target checks ([`Limits::max_files_per_frame`],
//! [`Limits::data_chunk`] per file, [`Limits::max_frame`] in all) and closed at
//! [`FILES_FRAME_BYTES`] so one frame never holds a stream's queue for long. Which work
//! may go in one (asked whole, small, without holes) is the sender's call; this type
//! only keeps the frame within bounds.
//!
//! Must not import: anything that does I/O (see [`crate::session`]).

use bytes::Bytes;

use crate::limits::Limits;
use crate::message::{Message, SmallFile};

/// The largest file a `Files` entry carries (at most [`Limits::data_chunk`] too): larger
/// ones go as `Data` frames, where their reads and writes overlap.
pub const SMALL_FILE: u64 = 256 * 1024;

/// A `Files` frame closes once its entries take this many bytes on the wire.
pub const FILES_FRAME_BYTES: usize = 1024 * 1024;

/// Bytes an entry takes on the wire besides its content: index, hash, length.
const ENTRY_OVERHEAD: usize = 8 + 32 + 4;

/// Bytes of a `Files` frame besides its entries: tag and count.
const FRAME_OVERHEAD: usize = 1 + 4;

/// A `Files` frame being filled.
#[derive(Debug)]
pub struct FilesFrame {
    files: Vec<SmallFile>,
    /// Bytes the entries take on the wire.
    bytes: usize,
    max_files: usize,
    max_bytes: usize,
    max_file: u64,
}

impl FilesFrame {
    pub fn new(limits: &Limits) -> FilesFrame {
        FilesFrame {
            files: Vec::new(),
            bytes: 0,
            max_files: limits.max_files_per_frame.max(1),
            max_bytes: FILES_FRAME_BYTES.min(limits.max_frame.saturating_sub(FRAME_OVERHEAD)),
            max_file: SMALL_FILE.min(limits.data_chunk as u64),
        }
    }

    /// Whether a whole file of `size` bytes may be an entry at all.
    pub fn takes(&self, size: u64) -> bool {
        size <= self.max_file && size as usize + ENTRY_OVERHEAD <= self.max_bytes
    }

    /// Adds file `index`, whole, whose BLAKE3 is `hash`; gives it back when it does not
    /// fit ([`FilesFrame::takes`] says no, or the frame is full: take it first).
    pub fn push(&mut self, index: u64, hash: [u8; 32], bytes: Bytes) -> Result<(), SmallFile> {
        let file = SmallFile { index, hash, bytes };
        let size = file.bytes.len();
        if !self.takes(size as u64)
            || self.files.len() >= self.max_files
            || self.bytes + size + ENTRY_OVERHEAD > self.max_bytes
        {
            return Err(file);
        }
        self.bytes += size + ENTRY_OVERHEAD;
        self.files.push(file);
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Whether no more entries fit (by count, or by bytes for any but an empty file).
    pub fn is_full(&self) -> bool {
        self.files.len() >= self.max_files || self.bytes + ENTRY_OVERHEAD >= self.max_bytes
    }

    /// The frame of the entries so far (`None` without any), leaving this one empty.
    #[must_use]
    pub fn take(&mut self) -> Option<Message> {
        if self.files.is_empty() {
            return None;
        }
        self.bytes = 0;
        Some(Message::Files {
            files: std::mem::take(&mut self.files),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{decode, encode};

    #[test]
    fn a_frame_closes_within_every_bound_and_decodes() {
        let limits = Limits::default();
        let mut frame = FilesFrame::new(&limits);
        assert!(!frame.takes(SMALL_FILE + 1));
        let big = Bytes::from(vec![7u8; SMALL_FILE as usize]);
        assert!(frame
            .push(0, [0; 32], Bytes::from(vec![1u8; SMALL_FILE as usize + 1]))
            .is_err());
        let mut index = 0;
        while frame.push(index, [1; 32], big.clone()).is_ok() {
            index += 1;
        }
        assert_eq!(
            index, 3,
            "three 256 KiB files and their overhead fill 1 MiB"
        );
        let message = frame.take().expect("three entries");
        assert!(frame.is_empty() && frame.take().is_none());
        let mut wire = bytes::BytesMut::new();
        encode(&message, &mut wire);
        assert!(wire.len() <= FILES_FRAME_BYTES + 4 + FRAME_OVERHEAD);
        assert_eq!(decode(&mut wire, &limits).unwrap(), Some(message));
    }

    #[test]
    fn a_frame_holds_at_most_the_files_per_frame_limit() {
        let limits = Limits {
            max_files_per_frame: 3,
            ..Limits::default()
        };
        let mut frame = FilesFrame::new(&limits);
        for index in 0..3 {
            frame.push(index, [0; 32], Bytes::new()).unwrap();
        }
        assert!(frame.is_full());
        assert!(frame.push(3, [0; 32], Bytes::new()).is_err());
        assert_eq!(frame.len(), 3);
    }
}
