//! How a basis is cut into blocks, and how much new data one delta covers.

use crate::format::{signature_len, BlockPlan, ENTRY_FIXED, HEADER_LEN, MAX_BLOCK, MIN_BLOCK};

/// Smallest basis worth a delta: below it the engine sends files whole, because the
/// signature round trip costs more than the bytes it could save.
pub const MIN_DELTA_BASIS: u64 = 64 * 1024;

/// Bytes of XXH3-128 kept per block in the signatures Ferry makes.
///
/// Why 8: the strong hash only decides which blocks to *trust* as copies, and a false
/// match needs the 32-bit rolling checksum and 64 bits of XXH3 to agree by chance
/// (about 2^-64 per candidate), far below the rate of disk errors. A source that forges
/// a collision only spoils its own file: what catches a wrong copy, accidental or
/// forged, is the engine's BLAKE3 check of every rebuilt file, which re-sends the file
/// whole. Against the full 16 bytes, 8 makes the signature 40% smaller.
pub const STRONG_LEN: u32 = 8;

/// Most bytes of new content one delta may produce: [`segment_len`] never exceeds it,
/// and [`crate::check_segment`] refuses a larger `expected_len` before anything is applied.
/// Matches the protocol's default `delta_segment` limit.
pub const MAX_SEGMENT: usize = 2 * 1024 * 1024;

/// Block sizes are multiples of this, so plans stay page-friendly and easy to read.
const BLOCK_GRAIN: u64 = 1024;

/// Picks the plan for a basis of `len` bytes, or `None` if no delta should be tried:
/// the basis is smaller than [`MIN_DELTA_BASIS`], or its signature would exceed
/// `max_signature` bytes even at [`MAX_BLOCK`].
///
/// The block size is about `sqrt(len) / 2`, rounded up to a multiple of 1 KiB, raised
/// until the signature fits `max_signature`, and kept in
/// [`MIN_BLOCK`]`..=`[`MAX_BLOCK`]. rsync takes `sqrt(len)`, balancing signature size
/// against the literal bytes around each edit; half of that halves the literal bytes
/// (an edit in place dirties one or two blocks) for a signature twice as large, still
/// small (768 KiB for 1 GiB), and the search checks a block in place with one hash
/// however many blocks there are.
pub fn plan(len: u64, max_signature: usize) -> Option<BlockPlan> {
    if len < MIN_DELTA_BASIS {
        return None;
    }
    let entry = u64::from(ENTRY_FIXED + STRONG_LEN);
    let max_blocks = (max_signature as u64).checked_sub(HEADER_LEN as u64)? / entry;
    if max_blocks == 0 {
        return None;
    }
    let by_sqrt = (len.isqrt() / 2)
        .checked_next_multiple_of(BLOCK_GRAIN)?
        .clamp(u64::from(MIN_BLOCK), u64::from(MAX_BLOCK));
    let by_budget = len
        .div_ceil(max_blocks)
        .checked_next_multiple_of(BLOCK_GRAIN)?;
    let block = by_sqrt.max(by_budget);
    if block > u64::from(MAX_BLOCK) {
        return None;
    }
    let plan = BlockPlan {
        block_size: u32::try_from(block).ok()?,
        strong_len: STRONG_LEN,
    };
    (signature_len(len, plan) <= max_signature as u64).then_some(plan)
}

/// Bytes of new content per [`crate::diff_segment`] call under `plan`.
///
/// A whole number of blocks (so an unshifted file keeps its block alignment from one
/// segment to the next), at least 4 blocks, and never more than [`MAX_SEGMENT`]: the
/// largest multiple of the block size that fits 2 MiB. A block size outside
/// [`MIN_BLOCK`]`..=`[`MAX_BLOCK`] is clamped first, so the result is never 0.
pub fn segment_len(plan: BlockPlan) -> usize {
    let block = plan.block_size.clamp(MIN_BLOCK, MAX_BLOCK) as usize;
    MAX_SEGMENT / block * block
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * KIB;
    const GIB: u64 = 1024 * MIB;
    const TIB: u64 = 1024 * GIB;
    const MAX_SIG: usize = 32 * 1024 * 1024;

    fn check(len: u64, max_signature: usize) -> BlockPlan {
        let p = plan(len, max_signature).expect("a plan");
        assert!((MIN_BLOCK..=MAX_BLOCK).contains(&p.block_size), "{p:?}");
        assert_eq!(u64::from(p.block_size) % BLOCK_GRAIN, 0, "{p:?}");
        assert_eq!(p.strong_len, STRONG_LEN);
        assert!(signature_len(len, p) <= max_signature as u64, "{p:?}");
        p
    }

    #[test]
    fn small_bases_get_no_plan() {
        assert_eq!(plan(0, MAX_SIG), None);
        assert_eq!(plan(MIN_DELTA_BASIS - 1, MAX_SIG), None);
    }

    #[test]
    fn block_size_follows_sqrt_within_bounds() {
        assert_eq!(check(MIN_DELTA_BASIS, MAX_SIG).block_size, MIN_BLOCK);
        assert_eq!(check(MIB, MAX_SIG).block_size, MIN_BLOCK);
        assert_eq!(check(4 * MIB, MAX_SIG).block_size, 2 * 1024);
        assert_eq!(check(GIB, MAX_SIG).block_size, 16 * 1024);
        // sqrt(2 GiB) / 2 = 23170 bytes, rounded up to 23 KiB.
        assert_eq!(check(2 * GIB, MAX_SIG).block_size, 23 * 1024);
        assert_eq!(check(TIB, MAX_SIG).block_size, MAX_BLOCK);
    }

    #[test]
    fn signature_budget_raises_block_size_or_gives_up() {
        // 1 TiB at 512 KiB blocks is 2 Mi blocks of 12 bytes: 24 MiB + 12 fits 32 MiB...
        assert_eq!(check(TIB, MAX_SIG).block_size, MAX_BLOCK);
        // ...but not 16 MiB, and 4 TiB needs 96 MiB.
        assert_eq!(plan(TIB, 16 * 1024 * 1024), None);
        assert_eq!(plan(4 * TIB, MAX_SIG), None);
        assert_eq!(plan(u64::MAX, MAX_SIG), None);
        // A tight budget pushes the block size above sqrt(len).
        let p = check(GIB, 64 * 1024);
        assert!(p.block_size > 32 * 1024, "{p:?}");
        // No room for even the header.
        assert_eq!(plan(MIB, 0), None);
        assert_eq!(plan(MIB, 12), None);
    }

    #[test]
    fn every_size_gets_a_fitting_plan() {
        let mut len = MIN_DELTA_BASIS;
        while len < 2 * TIB {
            if let Some(p) = plan(len, MAX_SIG) {
                check(len, MAX_SIG);
                assert!(p.block_size >= plan(len / 2, MAX_SIG).map_or(0, |q| q.block_size));
            } else {
                // Only when even MAX_BLOCK is too fine for the budget.
                let at_max = BlockPlan {
                    block_size: MAX_BLOCK,
                    strong_len: STRONG_LEN,
                };
                assert!(len >= MIN_DELTA_BASIS && signature_len(len, at_max) > MAX_SIG as u64);
            }
            len = len * 3 / 2 + 7;
        }
    }

    #[test]
    fn segments_are_whole_blocks_within_bounds() {
        for block in (MIN_BLOCK..=MAX_BLOCK)
            .step_by(997)
            .chain([MIN_BLOCK, MAX_BLOCK])
        {
            let p = BlockPlan {
                block_size: block,
                strong_len: STRONG_LEN,
            };
            let seg = segment_len(p);
            assert_eq!(seg % block as usize, 0, "{block}");
            assert!(seg >= 4 * block as usize, "{block}");
            assert!(seg <= MAX_SEGMENT, "{block}");
            assert!(seg > MAX_SEGMENT - block as usize, "{block}");
        }
        let odd = |block_size| BlockPlan {
            block_size,
            strong_len: 0,
        };
        assert_eq!(segment_len(odd(0)), MAX_SEGMENT);
        assert_eq!(segment_len(odd(u32::MAX)), MAX_SEGMENT);
    }
}
