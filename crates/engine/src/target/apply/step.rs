//! One frame of a file, applied: data written and hashed, a hole made, a delta rebuilt
//! from its basis, and at the file's end the hash checked, attributes set on the fd and
//! the file put in place.

use ferry_delta::check_segment;
use ferry_proto::Message;
use ferry_tree::{Privileges, TempFile};

use super::assembly::Assembly;
use super::outcome::{Failure, Finished};
use crate::cancel::Cancel;
use crate::target::delta_in_place::{write_delta_in_place, InPlaceError};
use crate::target::delta_write::{write_delta, DeltaWriteError};
use crate::zeros::hash_zeros_until;

/// Applies `message` to `a`; `Some` when it was the file's last frame.
pub(super) fn step(
    a: &mut Assembly,
    message: Message,
    privileges: Privileges,
    fsync: bool,
    bounce: &mut Vec<u8>,
    cancel: &Cancel,
) -> Result<Option<Finished>, Failure> {
    match message {
        Message::Data { offset, bytes, .. } => {
            a.settle_resume(offset)?;
            let len = bytes.len() as u64;
            debug_assert!(a.continues(offset, len), "the core checks pieces");
            let written = match a.spoiled {
                true => Ok(()),
                false => a.temp().and_then(|file| Ok(file.write_at(offset, &bytes)?)),
            };
            if !a.no_room_for_a_copy(written)? && !a.spoiled {
                a.overwritten.add(offset, offset + len);
                a.hash_piece(offset, &bytes);
            }
            a.pos += len;
        }
        Message::Hole { offset, len, .. } => {
            a.settle_resume(offset)?;
            debug_assert!(a.continues(offset, len), "the core checks pieces");
            let made = match a.spoiled {
                true => Ok(()),
                false => a.temp().and_then(|file| match file.is_in_place() {
                    // The old content is there: the range must be made zeros.
                    true => Ok(file.zero_range(offset, len)?),
                    false => Ok(()),
                }),
            };
            if !a.no_room_for_a_copy(made)? && !a.spoiled {
                a.overwritten.add(offset, offset + len);
                hash_zeros_until(a.hasher(), len, cancel).map_err(|_| Failure::Cancelled)?;
            }
            a.pos += len;
        }
        Message::Delta {
            offset, len, bytes, ..
        } => {
            debug_assert!(a.continues(offset, len), "the core checks pieces");
            delta(a, offset, len, &bytes, bounce, cancel)?;
            a.pos += len;
        }
        Message::FileEnd { size, hash, .. } => return end(a, size, hash, privileges, fsync),
        other => {
            return Err(Failure::Protocol(format!(
                "unexpected {} in file data",
                other.name()
            )))
        }
    }
    Ok(None)
}

/// A delta segment: checked against the basis, then rebuilt into the temp copy, or
/// into the file itself when it is updated in place.
fn delta(
    a: &mut Assembly,
    offset: u64,
    len: u64,
    bytes: &[u8],
    bounce: &mut Vec<u8>,
    cancel: &Cancel,
) -> Result<(), Failure> {
    let basis = a.basis.clone().ok_or_else(|| {
        Failure::Protocol(format!(
            "Delta for {}, which was asked for whole",
            a.pending.path
        ))
    })?;
    let checked = check_segment(&*basis, bytes, len as usize)
        .map_err(|e| Failure::Protocol(format!("bad delta for {}: {e}", a.pending.path)))?;
    let made = match a.spoiled {
        true => Ok(()),
        false => a.temp().map(|_| ()),
    };
    let spoiled_now = a.no_room_for_a_copy(made)?;
    if !a.spoiled && a.temp.as_ref().is_some_and(TempFile::is_in_place) {
        let file = a.temp.as_mut().expect("in place");
        let hasher = a.hasher.get_or_insert_with(Box::default);
        let written = write_delta_in_place(
            file,
            &basis,
            hasher,
            offset,
            &checked,
            &mut a.overwritten,
            bounce,
            cancel,
        );
        match written {
            Ok(()) => {}
            Err(InPlaceError::Write(e)) => return Err(e.into()),
            Err(InPlaceError::Cancelled) => return Err(Failure::Cancelled),
            Err(InPlaceError::Basis(e)) => {
                tracing::warn!(
                    "{}: reading it failed ({e}); it will be asked for whole",
                    a.pending.path
                );
                a.spoiled = true;
            }
            Err(InPlaceError::Overwritten { offset, len, at }) => {
                tracing::info!(
                    "{}: its delta copies {len} bytes from byte {offset}, already \
                     overwritten in place (at byte {at}); it will be asked for whole",
                    a.pending.path
                );
                a.spoiled = true;
            }
        }
    } else if !a.spoiled && !spoiled_now {
        let (file, hasher) = a.sinks()?;
        // Exactly `len` bytes: check_segment counted them. (Were it ever fewer, the gap
        // would read as zeros and fail the whole-file hash.)
        let written = write_delta(file, hasher, offset, &checked, bounce, cancel);
        match written {
            Ok(()) => {}
            Err(DeltaWriteError::Write(e)) => {
                a.no_room_for_a_copy(Err(e.into()))?;
            }
            Err(DeltaWriteError::Cancelled) => return Err(Failure::Cancelled),
            Err(DeltaWriteError::Basis(e)) => {
                tracing::warn!(
                    "{}: reading its basis failed ({e}); it will be asked for whole",
                    a.pending.path
                );
                a.spoiled = true;
            }
        }
    }
    Ok(())
}

/// The file's end: its hash checked, attributes set on the fd, then put in place.
fn end(
    a: &mut Assembly,
    size: u64,
    hash: [u8; 32],
    privileges: Privileges,
    fsync: bool,
) -> Result<Option<Finished>, Failure> {
    if a.resume_at.is_some() && size == 0 {
        a.settle_resume(0)?;
    }
    a.resume_at = None;
    // The core checked that the content reached its declared size.
    debug_assert!(size == a.pending.size && a.pos == size);
    if a.spoiled || *a.content_hash().as_bytes() != hash {
        return Ok(Some(Finished::Mismatch));
    }
    commit(a, size, privileges, fsync).map(Some)
}

/// The file's content is all there and verified: it is cut to `size`, its attributes
/// set on the fd, flushed if asked, and put in place.
pub(super) fn commit(
    a: &mut Assembly,
    size: u64,
    privileges: Privileges,
    fsync: bool,
) -> Result<Finished, Failure> {
    a.temp()?; // an empty file has had no data to make it
    let mut file = a.temp.take().expect("temp() just made it");
    let finish = (|| {
        file.set_len(size)?;
        let not_applied = file.apply_meta(&a.pending.meta, privileges)?;
        if fsync {
            file.sync()?;
        }
        Ok::<_, ferry_tree::TreeError>(not_applied)
    })();
    match finish {
        Ok(not_applied) => {
            file.commit(&a.pending.dir, &a.pending.name)?;
            Ok(Finished::Committed(not_applied))
        }
        Err(e) => {
            file.discard(&a.pending.dir);
            Err(e.into())
        }
    }
}
