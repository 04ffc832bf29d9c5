//! The numbers of the signature format that every other module reads: how a basis is cut
//! into blocks ([`BlockPlan`], its bounds) and how large a signature of it is. A leaf: it
//! imports nothing of the crate, so `plan`, `signature` and `index` depend on it and not
//! on each other.

/// How a basis is cut into blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockPlan {
    /// Bytes per block; the last block of a basis may be shorter.
    pub block_size: u32,
    /// Bytes of each block's XXH3-128 kept in the signature (4..=16).
    pub strong_len: u32,
}

/// Smallest block size a plan uses or a peer may send.
pub const MIN_BLOCK: u32 = 2 * 1024;

/// Largest block size a plan uses or a peer may send.
pub const MAX_BLOCK: u32 = 512 * 1024;

/// Bytes of a signature's header (`magic | block_size | strong_len | basis_len`).
pub(crate) const HEADER_LEN: usize = 20;

/// Bytes of each entry besides the strong hash: the rolling checksum.
pub(crate) const ENTRY_FIXED: u32 = 4;

/// Serialized size of the signature of a `basis_len`-byte basis under `plan`.
pub(crate) fn signature_len(basis_len: u64, plan: BlockPlan) -> u64 {
    let blocks = basis_len.div_ceil(u64::from(plan.block_size.max(1)));
    let entry = u64::from(ENTRY_FIXED + plan.strong_len);
    blocks
        .saturating_mul(entry)
        .saturating_add(HEADER_LEN as u64)
}
