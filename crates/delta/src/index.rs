//! A peer's signature indexed by weak checksum, for the rolling search.
//!
//! Two levels, because the search asks at every byte of data that matched nothing: a
//! bitset over a hash of the weak checksum answers "certainly not" in a load and a
//! mask, and only then a binary search of the sorted `(weak, block)` pairs gives the
//! candidate blocks. 8 bytes a block, whatever the peer sends. A hostile signature
//! cannot make a lookup slow: each weak checksum keeps at most [`CANDIDATES`] blocks
//! (blocks sharing a weak checksum are nearly always copies of one another), and the
//! search budgets the strong hashes that fail (see [`crate::diff_segment`]).

use std::fmt;

use crate::format::BlockPlan;
use crate::signature::PeerSignature;

/// Blocks kept per weak checksum.
pub(crate) const CANDIDATES: usize = 4;

/// A peer's signature indexed for delta search; borrows the [`PeerSignature`].
pub struct SignatureIndex<'a> {
    pub(crate) signature: &'a PeerSignature,
    /// One bit per slot of `mix(weak) & mask`.
    filter: Vec<u64>,
    mask: u32,
    /// `(weak, block)` of every full block, sorted, at most [`CANDIDATES`] per weak.
    sorted: Vec<(u32, u32)>,
}

impl<'a> SignatureIndex<'a> {
    pub(crate) fn new(signature: &'a PeerSignature) -> Self {
        let blocks = signature.block_count();
        let full = signature.plan().block_size as usize;
        // The rolling window is one block long, so only full blocks can be found by
        // it; a short last block is found by the aligned check alone.
        let mut sorted: Vec<(u32, u32)> = (0..blocks)
            .filter(|&block| signature.extent(block).1 == full)
            .map(|block| (signature.weak(block), block as u32))
            .collect();
        sorted.sort_unstable();
        // (weak checksum of the current run, blocks of it seen so far)
        let mut run = (0u32, 0usize);
        sorted.retain(|&(weak, _)| {
            run = if run.1 > 0 && run.0 == weak {
                (weak, run.1 + 1)
            } else {
                (weak, 1)
            };
            run.1 <= CANDIDATES
        });
        // About 16 bits per block: a miss is then a false "maybe" 1 time in 16.
        let bits = (sorted.len().max(1) * 16).next_power_of_two().max(1 << 12);
        let mask = (bits - 1) as u32;
        let mut filter = vec![0u64; bits / 64];
        for &(weak, _) in &sorted {
            let slot = mix(weak) & mask;
            filter[(slot / 64) as usize] |= 1 << (slot % 64);
        }
        SignatureIndex {
            signature,
            filter,
            mask,
            sorted,
        }
    }

    /// The plan of the signature this index was built from.
    pub fn plan(&self) -> BlockPlan {
        self.signature.plan()
    }

    /// Blocks whose weak checksum is `weak` (usually none), as `(weak, block)` pairs.
    pub(crate) fn candidates(&self, weak: u32) -> &[(u32, u32)] {
        let slot = mix(weak) & self.mask;
        if self.filter[(slot / 64) as usize] & (1 << (slot % 64)) == 0 {
            return &[];
        }
        let start = self.sorted.partition_point(|&(w, _)| w < weak);
        let end = start + self.sorted[start..].partition_point(|&(w, _)| w == weak);
        &self.sorted[start..end]
    }
}

impl PeerSignature {
    /// Builds the lookup table for [`crate::diff_segment`]. It costs a table entry per
    /// block, so build it once per file and reuse it for every segment.
    pub fn index(&self) -> SignatureIndex<'_> {
        SignatureIndex::new(self)
    }
}

impl fmt::Debug for SignatureIndex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignatureIndex")
            .field("plan", &self.plan())
            .field("block_count", &self.signature.block_count())
            .field("indexed", &self.sorted.len())
            .finish_non_exhaustive()
    }
}

/// Spreads a weak checksum over 32 bits (its halves are sums, poorly mixed).
fn mix(weak: u32) -> u32 {
    weak.wrapping_mul(0x9E37_79B1).rotate_right(15)
}
