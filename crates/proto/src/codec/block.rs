//! The block session's messages on the wire (tags 24-30). Each length is bounded here,
//! before anything is allocated; where an offset may fall is the cores' business
//! ([`crate::session::block`]).

use bytes::{BufMut, BytesMut};

use super::tags::*;
use super::wire::{put_bytes, Reader};
use crate::limits::Limits;
use crate::message::{BlockStats, Message};
use crate::session::block::{HASH_LEN, SEGMENT, SEGMENT_BLOCKS};
use crate::CodecError;

pub fn encode(message: &Message, out: &mut BytesMut) {
    match message {
        Message::BlockBegin { size } => {
            out.put_u8(BLOCK_BEGIN);
            out.put_u64_le(*size);
        }
        Message::BlockSums { offset, hashes } => {
            out.put_u8(BLOCK_SUMS);
            out.put_u64_le(*offset);
            put_bytes(out, hashes);
        }
        Message::BlockData { offset, bytes } => {
            out.put_u8(BLOCK_DATA);
            out.put_u64_le(*offset);
            put_bytes(out, bytes);
        }
        Message::BlockZero { offset, len } => {
            out.put_u8(BLOCK_ZERO);
            out.put_u64_le(*offset);
            out.put_u64_le(*len);
        }
        Message::BlockSegmentEnd { offset } => {
            out.put_u8(BLOCK_SEGMENT_END);
            out.put_u64_le(*offset);
        }
        Message::BlockEnd { size, hash } => {
            out.put_u8(BLOCK_END);
            out.put_u64_le(*size);
            out.put_slice(hash);
        }
        Message::BlockDone { stats } => {
            out.put_u8(BLOCK_DONE);
            out.put_u64_le(stats.device_size);
            out.put_u64_le(stats.bytes_written);
            out.put_u64_le(stats.bytes_zeroed);
            out.put_u64_le(stats.resent_rounds);
        }
        other => unreachable!("{} is not a block message", other.name()),
    }
}

pub fn decode(tag: u8, r: &mut Reader<'_>, limits: &Limits) -> Result<Message, CodecError> {
    Ok(match tag {
        BLOCK_BEGIN => Message::BlockBegin {
            size: r.u64("size")?,
        },
        BLOCK_SUMS => {
            let offset = r.u64("offset")?;
            let hashes = r.bytes("hashes", SEGMENT_BLOCKS * HASH_LEN)?;
            if !hashes.len().is_multiple_of(HASH_LEN) || hashes.is_empty() {
                return Err(r.bad("hashes", hashes.len() as u64));
            }
            Message::BlockSums { offset, hashes }
        }
        BLOCK_DATA => {
            let offset = r.u64("offset")?;
            let bytes = r.bytes("bytes", limits.data_chunk)?;
            if bytes.is_empty() {
                return Err(r.bad("bytes", 0));
            }
            Message::BlockData { offset, bytes }
        }
        BLOCK_ZERO => {
            let offset = r.u64("offset")?;
            let len = r.u64("len")?;
            if len > SEGMENT {
                return Err(r.over("len", len, SEGMENT));
            }
            if len == 0 {
                return Err(r.bad("len", 0));
            }
            Message::BlockZero { offset, len }
        }
        BLOCK_SEGMENT_END => Message::BlockSegmentEnd {
            offset: r.u64("offset")?,
        },
        BLOCK_END => Message::BlockEnd {
            size: r.u64("size")?,
            hash: r.array32("hash")?,
        },
        BLOCK_DONE => Message::BlockDone {
            stats: BlockStats {
                device_size: r.u64("device_size")?,
                bytes_written: r.u64("bytes_written")?,
                bytes_zeroed: r.u64("bytes_zeroed")?,
                resent_rounds: r.u64("resent_rounds")?,
            },
        },
        _ => unreachable!("tag {tag} is not a block message"),
    })
}
