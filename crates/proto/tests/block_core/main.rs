//! The block session's cores (`session::block`): played against by hand with hostile
//! frames, and against each other over in-memory devices.

mod pair;
mod source;
mod target;

use bytes::Bytes;
use ferry_proto::session::block::{BlockError, BLOCK, HASH_LEN};
use ferry_proto::SessionError;

/// A stand-in block hash (the cores never look inside one): two multiply-xor lanes over
/// 8-byte words, cheap enough for debug builds.
pub fn hash(block: &[u8]) -> [u8; HASH_LEN] {
    let mut a: u64 = 0xcbf29ce484222325;
    let mut b: u64 = 0x84222325cbf29ce4;
    let mut words = block.chunks_exact(8);
    for word in &mut words {
        let w = u64::from_le_bytes(word.try_into().unwrap());
        a = (a ^ w).wrapping_mul(0x100000001b3).rotate_left(29);
        b = (b ^ w).wrapping_mul(0x9e3779b97f4a7c15).rotate_left(17);
    }
    for &byte in words.remainder() {
        a = (a ^ u64::from(byte)).wrapping_mul(0x100000001b3);
        b = (b ^ u64::from(byte)).wrapping_mul(0x9e3779b97f4a7c15);
    }
    let mut out = [0u8; HASH_LEN];
    out[..8].copy_from_slice(&a.to_le_bytes());
    out[8..].copy_from_slice(&(b ^ block.len() as u64).to_le_bytes());
    out
}

pub fn sums(content: &[u8], offset: u64, len: u64) -> Bytes {
    let range = &content[offset as usize..(offset + len) as usize];
    range
        .chunks(BLOCK as usize)
        .flat_map(hash)
        .collect::<Vec<u8>>()
        .into()
}

pub fn protocol(result: Result<(), BlockError>) -> String {
    match result {
        Err(BlockError::Session(SessionError::Protocol(message))) => message,
        other => panic!("expected a protocol error, got {other:?}"),
    }
}

/// A target of `device` bytes that took `BlockBegin{size}` and sent the first segment's
/// hashes (of zeros).
pub fn target_with_sums(device: u64, size: u64) -> ferry_proto::session::block::BlockTarget {
    let mut target = ferry_proto::session::block::BlockTarget::new(device);
    target
        .handle_message(ferry_proto::Message::BlockBegin { size })
        .unwrap();
    let (offset, len) = target.wants_sums().unwrap();
    target.handle_sums(offset, sums(&vec![0; len as usize], 0, len));
    target
}
