//! Holes hash as zeros: both sides feed the same bytes to BLAKE3 without reading them.
//!
//! BLAKE3 of a run of zeros cannot be had in O(1) (each 1 KiB chunk hashes its counter),
//! so a hole costs time in proportion to its length: about 1.5 GB/s here. On the target
//! that length is a peer's number, so the target hashes in bounded steps and stops as
//! soon as its session ends ([`hash_zeros_until`]); what a peer may declare at all is
//! bounded by the target filesystem's size (the planner refuses a larger file).

use crate::cancel::{Cancel, Cancelled};

static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];

/// Zeros hashed between two looks at the session's stop flag: about 10 ms of work.
const STEP: u64 = 16 << 20;

/// Feeds `len` zero bytes to `hasher` (the source, for holes of its own files).
pub fn hash_zeros(hasher: &mut blake3::Hasher, len: u64) {
    feed_zeros(len, |zeros| {
        hasher.update(zeros);
    });
}

/// Hands `len` zero bytes to `feed`, in slices of a static buffer: for a hasher that is
/// not a `blake3::Hasher` (a range's, [`crate::range_hash::RangeHasher`]).
pub fn feed_zeros(mut len: u64, mut feed: impl FnMut(&[u8])) {
    while len > 0 {
        let n = len.min(ZEROS.len() as u64) as usize;
        feed(&ZEROS[..n]);
        len -= n as u64;
    }
}

/// Feeds `len` zero bytes to `hasher` unless `cancel` is set first: it is looked at
/// every [`STEP`] bytes, so a session that ends stops its hashing within milliseconds.
/// On `Err` the hasher has been fed part of the run.
pub fn hash_zeros_until(
    hasher: &mut blake3::Hasher,
    mut len: u64,
    cancel: &Cancel,
) -> Result<(), Cancelled> {
    while len > 0 {
        cancel.check()?;
        let n = len.min(STEP);
        hash_zeros(hasher, n);
        len -= n;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stepped_hashing_is_the_same_hash_and_stops_when_cancelled() {
        let len = 2 * STEP + 12_345;
        let mut whole = blake3::Hasher::new();
        whole.update(&vec![0u8; len as usize]);
        let mut stepped = blake3::Hasher::new();
        hash_zeros_until(&mut stepped, len, &Cancel::new()).expect("not cancelled");
        assert_eq!(stepped.finalize(), whole.finalize());

        let cancel = Cancel::new();
        cancel.cancel();
        let mut hasher = blake3::Hasher::new();
        assert_eq!(
            hash_zeros_until(&mut hasher, 1 << 60, &cancel),
            Err(Cancelled)
        );
        assert_eq!(hasher.count(), 0, "nothing hashed after the stop");
    }
}
