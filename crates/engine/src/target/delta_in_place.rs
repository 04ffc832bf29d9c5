//! Writing a delta's output into the file it was computed against (an in-place update,
//! see `in_place`). The output goes forward from `offset`; each COPY reads the old
//! content it names before anything overwrites it:
//!
//! - a COPY from exactly the write position is already there: it is only read, to hash;
//! - a COPY from ahead is read before the write reaches it, in runs going forward;
//! - a COPY from behind is served if none of its range was overwritten with other
//!   bytes ([`Overwritten`]); overlapping its own destination, it is moved backward (as
//!   `memmove` does) and then read back to hash in order;
//! - a COPY from a range already overwritten cannot be served: [`InPlaceError::Overwritten`],
//!   and the engine asks for the file again whole, still in place.
//!
//! Literal bytes are written and hashed. Runs of [`RUN`] bytes through one buffer, as in
//! `delta_write`; the session's stop flag is looked at between runs.

use ferry_delta::{BasisRead, CheckedDelta, Piece};
use ferry_tree::{Basis, TempFile, TreeError};

use super::in_place::Overwritten;
use crate::cancel::Cancel;

/// Bytes moved and hashed at a time.
const RUN: usize = 128 * 1024;

/// Why a delta's output was not all written in place.
pub enum InPlaceError {
    /// A COPY names a range already overwritten (`offset`, `len`, the write position).
    Overwritten { offset: u64, len: u64, at: u64 },
    /// The file could not be read where the delta copies from.
    Basis(std::io::Error),
    /// Writing the file failed.
    Write(TreeError),
    /// The session ended.
    Cancelled,
}

/// Writes `delta`'s output over `file` from `offset` on, feeding it to `hasher`; `basis`
/// reads the same inode; `overwritten` carries what earlier pieces changed.
#[allow(clippy::too_many_arguments)]
pub fn write_delta_in_place(
    file: &mut TempFile,
    basis: &Basis,
    hasher: &mut blake3::Hasher,
    offset: u64,
    delta: &CheckedDelta<'_, Basis>,
    overwritten: &mut Overwritten,
    buf: &mut Vec<u8>,
    cancel: &Cancel,
) -> Result<(), InPlaceError> {
    if buf.len() != RUN {
        buf.clear();
        buf.resize(RUN, 0);
    }
    let mut at = offset;
    for piece in delta.commands() {
        cancel.check().map_err(|_| InPlaceError::Cancelled)?;
        match piece {
            Piece::Literal(bytes) => {
                file.write_at(at, bytes).map_err(InPlaceError::Write)?;
                hasher.update(bytes);
                overwritten.add(at, at + bytes.len() as u64);
            }
            Piece::Copy { offset: from, len } => {
                let end = from.saturating_add(len);
                if from < at && overwritten.touches(from, end) {
                    return Err(InPlaceError::Overwritten {
                        offset: from,
                        len,
                        at,
                    });
                }
                match from.cmp(&at) {
                    std::cmp::Ordering::Equal => hash_range(basis, hasher, at, len, buf, cancel)?,
                    std::cmp::Ordering::Less if end > at => {
                        move_backward(file, basis, from, at, len, buf, cancel)?;
                        hash_range(basis, hasher, at, len, buf, cancel)?;
                        overwritten.add(at, at + len);
                    }
                    _ => {
                        move_forward(file, basis, hasher, from, at, len, buf, cancel)?;
                        overwritten.add(at, at + len);
                    }
                }
            }
        }
        at += match piece {
            Piece::Literal(bytes) => bytes.len() as u64,
            Piece::Copy { len, .. } => len,
        };
    }
    Ok(())
}

fn read(basis: &Basis, at: u64, buf: &mut [u8], cancel: &Cancel) -> Result<(), InPlaceError> {
    basis
        .read_exact_at(at, buf)
        .map_err(|e| match cancel.is_cancelled() {
            true => InPlaceError::Cancelled,
            false => InPlaceError::Basis(e),
        })
}

/// Hashes `len` bytes of the file from `at` (already its new content).
fn hash_range(
    basis: &Basis,
    hasher: &mut blake3::Hasher,
    at: u64,
    len: u64,
    buf: &mut [u8],
    cancel: &Cancel,
) -> Result<(), InPlaceError> {
    let mut done = 0;
    while done < len {
        cancel.check().map_err(|_| InPlaceError::Cancelled)?;
        let n = (len - done).min(buf.len() as u64) as usize;
        read(basis, at + done, &mut buf[..n], cancel)?;
        hasher.update(&buf[..n]);
        done += n as u64;
    }
    Ok(())
}

/// Copies `len` bytes from `from` to `to`, first run first: right when the ranges do
/// not overlap or `from` is ahead (each run is read before any write reaches it).
#[allow(clippy::too_many_arguments)]
fn move_forward(
    file: &mut TempFile,
    basis: &Basis,
    hasher: &mut blake3::Hasher,
    from: u64,
    to: u64,
    len: u64,
    buf: &mut [u8],
    cancel: &Cancel,
) -> Result<(), InPlaceError> {
    let mut done = 0;
    while done < len {
        cancel.check().map_err(|_| InPlaceError::Cancelled)?;
        let n = (len - done).min(buf.len() as u64) as usize;
        read(basis, from + done, &mut buf[..n], cancel)?;
        file.write_at(to + done, &buf[..n])
            .map_err(InPlaceError::Write)?;
        hasher.update(&buf[..n]);
        done += n as u64;
    }
    Ok(())
}

/// Copies `len` bytes from `from` to `to` (`from` behind `to`, the ranges overlapping),
/// last run first, so no run is read after a write reached it.
fn move_backward(
    file: &mut TempFile,
    basis: &Basis,
    from: u64,
    to: u64,
    len: u64,
    buf: &mut [u8],
    cancel: &Cancel,
) -> Result<(), InPlaceError> {
    let mut left = len;
    while left > 0 {
        cancel.check().map_err(|_| InPlaceError::Cancelled)?;
        let n = left.min(buf.len() as u64);
        left -= n;
        let n = n as usize;
        read(basis, from + left, &mut buf[..n], cancel)?;
        file.write_at(to + left, &buf[..n])
            .map_err(InPlaceError::Write)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
