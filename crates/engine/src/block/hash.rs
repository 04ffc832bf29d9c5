//! The block hash both sides compare: BLAKE3 of one block, truncated to
//! [`HASH_LEN`] bytes (see `ferry_proto::session::block`).

use std::sync::OnceLock;

use ferry_proto::session::block::{BLOCK, HASH_LEN};

pub type BlockHash = [u8; HASH_LEN];

/// The hash of `block`.
pub fn block_hash(block: &[u8]) -> BlockHash {
    let full = blake3::hash(block);
    let mut out = [0u8; HASH_LEN];
    out.copy_from_slice(&full.as_bytes()[..HASH_LEN]);
    out
}

/// The hash of a whole block of zeros.
pub fn zero_block_hash() -> &'static BlockHash {
    static ZERO: OnceLock<BlockHash> = OnceLock::new();
    ZERO.get_or_init(|| block_hash(&[0u8; BLOCK as usize]))
}

/// Whether `bytes` are all zeros (an OR over 32-byte chunks, which vectorizes).
pub fn is_zero(bytes: &[u8]) -> bool {
    let mut chunks = bytes.chunks_exact(32);
    chunks.all(|c| c.iter().fold(0u8, |acc, &b| acc | b) == 0)
        && chunks.remainder().iter().all(|&b| b == 0)
}
