//! Signatures: making one from a basis, and validating one from the peer.
//!
//! fast_rsync's format, all integers big-endian:
//! `magic u32 | block_size u32 | strong_len u32 | (crc u32 | md4[..strong_len])*`,
//! one entry per block of the basis, the last block possibly short.

use std::fmt;
use std::ops::RangeInclusive;

use fast_rsync::{IndexedSignature, Signature, SignatureOptions};

use crate::error::DeltaError;
use crate::plan::{BlockPlan, MAX_BLOCK, MIN_BLOCK};

/// fast_rsync's magic for MD4 signatures (its BLAKE2 ones cannot be diffed against).
const MD4_MAGIC: u32 = 0x7273_0136;
pub(crate) const HEADER_LEN: usize = 12;
/// Bytes of each entry besides the strong hash: the rolling checksum.
pub(crate) const ENTRY_FIXED: u32 = 4;
const MD4_LEN: u32 = 16;
/// Strong hashes shorter than 4 bytes make false matches common; longer than 16 does
/// not exist.
const STRONG_LENS: RangeInclusive<u32> = 4..=MD4_LEN;

/// Serialized size of the signature of a `basis_len`-byte basis under `plan`.
pub(crate) fn signature_len(basis_len: u64, plan: BlockPlan) -> u64 {
    let blocks = basis_len.div_ceil(u64::from(plan.block_size.max(1)));
    let entry = u64::from(ENTRY_FIXED + plan.strong_len);
    blocks
        .saturating_mul(entry)
        .saturating_add(HEADER_LEN as u64)
}

/// Serialized signature of `basis` in fast_rsync's format.
///
/// Never panics. A plan from [`crate::plan`] is always valid; a hand-made plan with a
/// zero block size or a strong length above 16 is nudged into what fast_rsync accepts
/// (1 and 16), which yields a signature the peer will refuse rather than a panic here.
pub fn signature(basis: &[u8], plan: BlockPlan) -> Vec<u8> {
    let options = SignatureOptions {
        block_size: plan.block_size.max(1),
        crypto_hash_size: plan.strong_len.min(MD4_LEN),
    };
    Signature::calculate(basis, options).into_serialized()
}

/// A signature received from the peer, validated.
///
/// Parsing checks everything fast_rsync would trip over, so [`PeerSignature::index`]
/// and [`crate::diff_segment`] cannot panic, loop forever or allocate more than about
/// `max_signature` worth of index.
pub struct PeerSignature {
    signature: Signature,
    plan: BlockPlan,
    block_count: usize,
}

impl PeerSignature {
    /// Validates a serialized signature from the peer: the MD4 magic, a block size in
    /// [`MIN_BLOCK`]`..=`[`MAX_BLOCK`], a strong length in `4..=16`, a body of whole
    /// entries, and at most `max_signature` bytes in all.
    pub fn parse(bytes: Vec<u8>, max_signature: usize) -> Result<PeerSignature, DeltaError> {
        if bytes.len() > max_signature {
            return Err(DeltaError::signature(format!(
                "{} bytes, more than the limit of {max_signature}",
                bytes.len()
            )));
        }
        let Some((header, body)) = bytes.split_first_chunk::<HEADER_LEN>() else {
            return Err(DeltaError::signature(format!(
                "{} bytes, shorter than the {HEADER_LEN}-byte header",
                bytes.len()
            )));
        };
        let word =
            |i: usize| u32::from_be_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]);
        let (magic, block_size, strong_len) = (word(0), word(4), word(8));
        if magic != MD4_MAGIC {
            return Err(DeltaError::signature(format!(
                "magic {magic:#010x}, expected fast_rsync's MD4 magic {MD4_MAGIC:#010x}"
            )));
        }
        if !(MIN_BLOCK..=MAX_BLOCK).contains(&block_size) {
            return Err(DeltaError::signature(format!(
                "block size {block_size} outside {MIN_BLOCK}..={MAX_BLOCK}"
            )));
        }
        if !STRONG_LENS.contains(&strong_len) {
            return Err(DeltaError::signature(format!(
                "strong hash length {strong_len} outside {}..={}",
                STRONG_LENS.start(),
                STRONG_LENS.end()
            )));
        }
        let entry = (ENTRY_FIXED + strong_len) as usize;
        if body.len() % entry != 0 {
            return Err(DeltaError::signature(format!(
                "body of {} bytes is not a whole number of {entry}-byte entries",
                body.len()
            )));
        }
        let block_count = body.len() / entry;
        // fast_rsync numbers blocks with u32.
        if u32::try_from(block_count).is_err() {
            return Err(DeltaError::signature(format!(
                "{block_count} blocks, more than 2^32"
            )));
        }
        let signature = Signature::deserialize(bytes)
            .map_err(|e| DeltaError::signature(format!("fast_rsync refused it: {e}")))?;
        Ok(PeerSignature {
            signature,
            plan: BlockPlan {
                block_size,
                strong_len,
            },
            block_count,
        })
    }

    /// The block size and strong length the peer used.
    pub fn plan(&self) -> BlockPlan {
        self.plan
    }

    /// Number of blocks. The basis is between `(block_count - 1) * block_size + 1` and
    /// `block_count * block_size` bytes long (the last block may be short); its exact
    /// length is not in the signature.
    pub fn block_count(&self) -> usize {
        self.block_count
    }

    /// Builds the lookup table for [`crate::diff_segment`]. It costs a hash map entry
    /// per block, so build it once per file and reuse it for every segment.
    pub fn index(&self) -> SignatureIndex<'_> {
        SignatureIndex {
            inner: self.signature.index(),
            plan: self.plan,
            block_count: self.block_count,
        }
    }
}

impl fmt::Debug for PeerSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerSignature")
            .field("plan", &self.plan)
            .field("block_count", &self.block_count)
            .finish_non_exhaustive()
    }
}

/// A peer's signature indexed for delta search; borrows the [`PeerSignature`].
pub struct SignatureIndex<'a> {
    pub(crate) inner: IndexedSignature<'a>,
    plan: BlockPlan,
    block_count: usize,
}

impl SignatureIndex<'_> {
    /// The plan of the signature this index was built from.
    pub fn plan(&self) -> BlockPlan {
        self.plan
    }
}

impl fmt::Debug for SignatureIndex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignatureIndex")
            .field("plan", &self.plan)
            .field("block_count", &self.block_count)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predicted_length_matches_fast_rsync() {
        let basis: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        for (block_size, strong_len) in [(2048, 8), (4096, 16), (3000, 4), (100_000, 8)] {
            let plan = BlockPlan {
                block_size,
                strong_len,
            };
            for len in [0, 1, 2047, 2048, 2049, basis.len()] {
                let sig = signature(&basis[..len], plan);
                assert_eq!(
                    sig.len() as u64,
                    signature_len(len as u64, plan),
                    "{plan:?} {len}"
                );
                let peer = PeerSignature::parse(sig, usize::MAX).expect("own signature parses");
                assert_eq!(peer.plan(), plan);
                assert_eq!(peer.block_count(), len.div_ceil(block_size as usize));
            }
        }
    }

    #[test]
    fn odd_hand_made_plans_do_not_panic() {
        let zero = BlockPlan {
            block_size: 0,
            strong_len: 99,
        };
        let sig = signature(b"abc", zero);
        assert!(PeerSignature::parse(sig, usize::MAX).is_err());
    }
}
