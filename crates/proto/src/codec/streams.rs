//! The messages of a session's several streams on the wire (tags 31-37, protocol 6):
//! joining a connection to a session, and the frames that spread its work over streams.
//! Counts and lengths are bounded here, before anything is allocated; whether a stream
//! number, an index or an offset is one the session takes is the cores' business
//! ([`crate::session::join`], the target and source cores).

use bytes::{BufMut, BytesMut};

use super::tags::*;
use super::wire::{put_bytes, Reader};
use crate::limits::Limits;
use crate::message::{Message, SmallFile};
use crate::session::stream::{SessionKey, RANGE};
use crate::CodecError;

/// Bytes a `Files` entry takes at least: index, hash and the length of its bytes.
const MIN_FILE_ENTRY: usize = 8 + 32 + 4;

pub fn encode(message: &Message, out: &mut BytesMut) {
    match message {
        Message::Join {
            version,
            key,
            stream,
        } => {
            out.put_u8(JOIN);
            out.put_u32_le(*version);
            out.put_slice(key.as_bytes());
            out.put_u16_le(*stream);
        }
        Message::Joined { stream } => {
            out.put_u8(JOINED);
            out.put_u16_le(*stream);
        }
        Message::WantRange {
            index,
            offset,
            len,
            have,
            cv,
        } => put_range(out, WANT_RANGE, [*index, *offset, *len], *have, cv),
        Message::RangeEnd {
            index,
            offset,
            len,
            same,
            cv,
        } => put_range(out, RANGE_END, [*index, *offset, *len], *same, cv),
        Message::Wants { indices } => {
            out.put_u8(WANTS);
            out.put_u32_le(indices.len() as u32);
            for index in indices {
                out.put_u64_le(*index);
            }
        }
        Message::Files { files } => {
            out.put_u8(FILES);
            out.put_u32_le(files.len() as u32);
            for file in files {
                out.put_u64_le(file.index);
                out.put_slice(&file.hash);
                put_bytes(out, &file.bytes);
            }
        }
        Message::StreamGone { stream } => {
            out.put_u8(STREAM_GONE);
            out.put_u16_le(*stream);
        }
        other => unreachable!("{} is not a stream message", other.name()),
    }
}

fn put_range(out: &mut BytesMut, tag: u8, fields: [u64; 3], flag: bool, cv: &[u8; 32]) {
    out.put_u8(tag);
    for field in fields {
        out.put_u64_le(field);
    }
    out.put_u8(u8::from(flag));
    out.put_slice(cv);
}

/// A range's `index`, `offset` and `len`: `len` is 1 to [`RANGE`] bytes (where the range
/// may start and how long it must be are the cores' checks, against the listed size).
fn range(r: &mut Reader<'_>) -> Result<(u64, u64, u64), CodecError> {
    let index = r.u64("index")?;
    let offset = r.u64("offset")?;
    let len = r.u64("len")?;
    if len > RANGE {
        return Err(r.over("len", len, RANGE));
    }
    if len == 0 {
        return Err(r.bad("len", 0));
    }
    Ok((index, offset, len))
}

pub fn decode(tag: u8, r: &mut Reader<'_>, limits: &Limits) -> Result<Message, CodecError> {
    Ok(match tag {
        JOIN => Message::Join {
            version: r.u32("version")?,
            key: SessionKey::new(r.array32("key")?),
            stream: r.u16("stream")?,
        },
        JOINED => Message::Joined {
            stream: r.u16("stream")?,
        },
        WANT_RANGE => {
            let (index, offset, len) = range(r)?;
            Message::WantRange {
                index,
                offset,
                len,
                have: r.flag("have")?,
                cv: r.array32("cv")?,
            }
        }
        RANGE_END => {
            let (index, offset, len) = range(r)?;
            Message::RangeEnd {
                index,
                offset,
                len,
                same: r.flag("same")?,
                cv: r.array32("cv")?,
            }
        }
        WANTS => {
            let count = r.count("count", limits.max_wants_per_frame, 8)?;
            if count == 0 {
                return Err(r.bad("count", 0));
            }
            let mut indices = Vec::with_capacity(count);
            for _ in 0..count {
                indices.push(r.u64("index")?);
            }
            Message::Wants { indices }
        }
        FILES => {
            let count = r.count("count", limits.max_files_per_frame, MIN_FILE_ENTRY)?;
            if count == 0 {
                return Err(r.bad("count", 0));
            }
            let mut files = Vec::with_capacity(count);
            for _ in 0..count {
                files.push(SmallFile {
                    index: r.u64("index")?,
                    hash: r.array32("hash")?,
                    bytes: r.bytes("bytes", limits.data_chunk)?,
                });
            }
            Message::Files { files }
        }
        STREAM_GONE => Message::StreamGone {
            stream: r.u16("stream")?,
        },
        _ => unreachable!("tag {tag} is not a stream message"),
    })
}

#[cfg(test)]
#[path = "streams_tests.rs"]
mod tests;
