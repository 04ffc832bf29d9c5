//! Frames compressed with zstd where it pays. A compressed frame wraps a whole ordinary
//! frame: `[u32 len][COMPRESSED][u32 raw length][zstd bytes]`; the decoder inflates it
//! into at most `raw length` bytes (never more: a bomb is refused) and decodes the inner
//! frame, which may not be compressed again.
//!
//! Data that does not compress (already compressed or encrypted files, random bytes) is
//! recognised by a cheap entropy probe on a sample and sent as it is, so `--compress`
//! never slows down a push of incompressible data by much.

use bytes::{BufMut, BytesMut};

use super::tags::COMPRESSED;
use super::{encode, HEADER_LEN};
use crate::message::Message;

/// Frames smaller than this are not worth a compression attempt.
const MIN_FRAME: usize = 4096;
/// Bytes sampled for the entropy probe.
const SAMPLE: usize = 4096;
/// Above this many bits of entropy per byte, the sample is taken as incompressible.
const MAX_ENTROPY: f64 = 7.5;

/// What compressing one message did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Compressed {
    /// Bytes of the frame before compression (0 if it was not attempted).
    pub raw: u64,
    /// Bytes of the frame as sent (equal to `raw` if compression did not pay).
    pub sent: u64,
}

/// Appends `message` to `out`, compressed with zstd at `level` when that pays.
pub fn encode_compressed(
    message: &Message,
    level: i32,
    out: &mut BytesMut,
    scratch: &mut BytesMut,
) -> Compressed {
    scratch.clear();
    encode(message, scratch);
    if scratch.len() < MIN_FRAME || entropy(&scratch[..scratch.len().min(SAMPLE)]) > MAX_ENTROPY {
        out.extend_from_slice(scratch);
        return Compressed::default();
    }
    let raw = scratch.len();
    match zstd::bulk::compress(scratch, level) {
        Ok(packed) if packed.len() + HEADER_LEN + 5 < raw - raw / 20 => {
            let start = out.len();
            out.put_u32_le(0);
            out.put_u8(COMPRESSED);
            out.put_u32_le(raw as u32);
            out.put_slice(&packed);
            let body = (out.len() - start - HEADER_LEN) as u32;
            out[start..start + HEADER_LEN].copy_from_slice(&body.to_le_bytes());
            Compressed {
                raw: raw as u64,
                sent: (out.len() - start) as u64,
            }
        }
        _ => {
            out.extend_from_slice(scratch);
            Compressed {
                raw: raw as u64,
                sent: raw as u64,
            }
        }
    }
}

/// Inflates a compressed frame's payload into the inner frame's bytes, at most `raw`.
pub fn inflate(packed: &[u8], raw: usize) -> Option<Vec<u8>> {
    let inner = zstd::bulk::decompress(packed, raw).ok()?;
    (inner.len() == raw).then_some(inner)
}

/// Shannon entropy of `sample` in bits per byte.
fn entropy(sample: &[u8]) -> f64 {
    if sample.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for &b in sample {
        counts[b as usize] += 1;
    }
    let n = sample.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

/// What the whole frame at the front of `buf` will cost and give if it is a compressed
/// one: its bytes as received and the inner frame's bytes (`None` for any other frame,
/// or if the frame is not all there yet). A receiver counts `--compress`'s effect with it.
pub fn peek_compressed(buf: &[u8]) -> Option<Compressed> {
    if buf.len() < HEADER_LEN + 5 {
        return None;
    }
    let body_len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if buf[HEADER_LEN] != COMPRESSED || body_len < 5 || buf.len() < HEADER_LEN + body_len {
        return None;
    }
    let raw = u32::from_le_bytes([buf[5], buf[6], buf[7], buf[8]]);
    Some(Compressed {
        raw: u64::from(raw),
        sent: (HEADER_LEN + body_len) as u64,
    })
}
