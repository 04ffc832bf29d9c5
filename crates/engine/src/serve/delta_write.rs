//! Writing a delta's output: its pieces (ranges of the mapped basis, literal bytes of the
//! frame) go through one small bounce buffer, and each full buffer is written and hashed.
//!
//! Why a buffer at all: the hash must cover exactly the bytes written, so each byte is
//! read from the basis once (written and hashed from the same copy, even if something on
//! the target changed the basis meanwhile); and a delta of many tiny pieces, honest or
//! hostile (a frame fits a million one-byte copies), costs a write per buffer, not per
//! piece. Why a small one: it stays in the CPU cache, so the write and the hash read it
//! there, where assembling a whole 2 MiB segment did not.

use ferry_tree::{TempFile, TreeError};

/// Bytes written and hashed at a time.
const BOUNCE: usize = 128 * 1024;

/// A reusable bounce buffer, one per receiver thread.
#[derive(Default)]
pub struct Bounce {
    buf: Vec<u8>,
}

impl Bounce {
    /// Writes `pieces` to `file` from `offset` on and feeds them to `hasher`, in order;
    /// returns how many bytes that was.
    pub fn write<'a>(
        &mut self,
        file: &mut TempFile,
        hasher: &mut blake3::Hasher,
        offset: u64,
        pieces: impl Iterator<Item = &'a [u8]>,
    ) -> Result<u64, TreeError> {
        let buf = &mut self.buf;
        buf.clear();
        buf.reserve(BOUNCE);
        let mut at = offset;
        for mut piece in pieces {
            while !piece.is_empty() {
                let (now, rest) = piece.split_at(piece.len().min(BOUNCE - buf.len()));
                buf.extend_from_slice(now);
                piece = rest;
                if buf.len() == BOUNCE {
                    flush(file, hasher, &mut at, buf)?;
                }
            }
        }
        flush(file, hasher, &mut at, buf)?;
        Ok(at - offset)
    }
}

fn flush(
    file: &mut TempFile,
    hasher: &mut blake3::Hasher,
    at: &mut u64,
    buf: &mut Vec<u8>,
) -> Result<(), TreeError> {
    if !buf.is_empty() {
        file.write_at(*at, buf)?;
        hasher.update(buf);
        *at += buf.len() as u64;
        buf.clear();
    }
    Ok(())
}
