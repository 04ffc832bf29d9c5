//! Framing: `[u32 LE body length][u8 tag][fields...]`, one message per frame.
//!
//! Decoding follows one idiom: check cheaply that a whole frame is buffered, then parse
//! it from a bounded slice, then advance. "Need more bytes" is `Ok(None)`, not an error.
//! Every count and length inside a frame is checked against [`Limits`] and against the
//! bytes that remain in the frame before anything is allocated.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::limits::Limits;
use crate::message::*;
use crate::path::{check_name, PathError, RelPath};

mod block;
mod compress;
mod handshake;
mod stats;
mod streams;
mod tags;
mod wire;

pub use compress::{encode_compressed, peek_compressed, Compressed};

use stats::*;
use tags::*;
use wire::{put_bytes, put_meta, put_str, Reader};

/// Why a frame could not be decoded. Every variant is a protocol error: the peer is
/// broken or hostile, and the session ends.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    FrameTooLarge { len: usize, max: usize },
    #[error("empty frame")]
    EmptyFrame,
    #[error("unknown message tag {tag}")]
    UnknownTag { tag: u8 },
    #[error("{message} frame ends early while reading {field}")]
    Truncated {
        message: &'static str,
        field: &'static str,
    },
    #[error("{message} frame has {extra} unexpected trailing bytes")]
    TrailingBytes { message: &'static str, extra: usize },
    #[error("{message}.{field} is {value}, over the limit of {max}")]
    OverLimit {
        message: &'static str,
        field: &'static str,
        value: u64,
        max: u64,
    },
    #[error("{message}.{field} has invalid value {value}")]
    BadValue {
        message: &'static str,
        field: &'static str,
        value: u64,
    },
    #[error("{message}.{field}: {source}")]
    BadPath {
        message: &'static str,
        field: &'static str,
        source: PathError,
    },
    #[error("{message}.{field} is not valid UTF-8")]
    BadText {
        message: &'static str,
        field: &'static str,
    },
    /// A Hello asks for options this version does not know: the peer runs another
    /// version of Ferry.
    #[error("the Hello asks for options this version of Ferry does not know (bits {bits:#x})")]
    UnknownOptions { bits: u32 },
}

/// Bytes of the length prefix.
pub const HEADER_LEN: usize = 4;

/// Appends `message` to `out` as one frame.
pub fn encode(message: &Message, out: &mut BytesMut) {
    let start = out.len();
    out.put_u32_le(0);
    encode_body(message, out);
    let body_len = (out.len() - start - HEADER_LEN) as u32;
    out[start..start + HEADER_LEN].copy_from_slice(&body_len.to_le_bytes());
}

/// Appends `message` to `out` as one frame, except the file data of a `Data` message,
/// which it returns instead: the frame is what `out` gained followed by those bytes.
/// A writer can then hand both to a vectored write, and the data (the bulk of a push)
/// is not copied into the batch.
pub fn encode_head(message: &Message, out: &mut BytesMut) -> Option<Bytes> {
    let Message::Data {
        index,
        offset,
        bytes,
    } = message
    else {
        encode(message, out);
        return None;
    };
    let body_len = 1 + 8 + 8 + 4 + bytes.len();
    out.put_u32_le(body_len as u32);
    out.put_u8(DATA);
    out.put_u64_le(*index);
    out.put_u64_le(*offset);
    out.put_u32_le(bytes.len() as u32);
    Some(bytes.clone())
}

/// Whether a whole frame is at the front of `buf` (so [`decode`] returns it without
/// waiting for more bytes).
pub fn whole_frame_buffered(buf: &[u8]) -> bool {
    buf.len() >= HEADER_LEN
        && buf.len() - HEADER_LEN >= u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize
}

/// Takes one frame off the front of `buf` if a whole one is there.
pub fn decode(buf: &mut BytesMut, limits: &Limits) -> Result<Option<Message>, CodecError> {
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    let body_len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if body_len > limits.max_frame {
        return Err(CodecError::FrameTooLarge {
            len: body_len,
            max: limits.max_frame,
        });
    }
    if body_len == 0 {
        return Err(CodecError::EmptyFrame);
    }
    if buf.len() < HEADER_LEN + body_len {
        buf.reserve(HEADER_LEN + body_len - buf.len());
        return Ok(None);
    }
    buf.advance(HEADER_LEN);
    let body = buf.split_to(body_len).freeze();
    if body[0] == COMPRESSED {
        return decode_compressed(body, limits).map(Some);
    }
    decode_body(body, limits).map(Some)
}

/// Inflates a compressed frame (bounded by the frame limit) and decodes the one ordinary
/// frame inside it.
fn decode_compressed(body: Bytes, limits: &Limits) -> Result<Message, CodecError> {
    let bad = |field, value| CodecError::BadValue {
        message: "Compressed",
        field,
        value,
    };
    if body.len() < 5 {
        return Err(CodecError::Truncated {
            message: "Compressed",
            field: "raw_len",
        });
    }
    let raw = u32::from_le_bytes([body[1], body[2], body[3], body[4]]) as usize;
    if raw > HEADER_LEN + limits.max_frame || raw <= HEADER_LEN {
        return Err(CodecError::OverLimit {
            message: "Compressed",
            field: "raw_len",
            value: raw as u64,
            max: (HEADER_LEN + limits.max_frame) as u64,
        });
    }
    let inner = compress::inflate(&body[5..], raw).ok_or_else(|| bad("payload", raw as u64))?;
    let inner_len = u32::from_le_bytes([inner[0], inner[1], inner[2], inner[3]]) as usize;
    if inner_len != raw - HEADER_LEN || inner_len == 0 {
        return Err(bad("inner length", inner_len as u64));
    }
    if inner[HEADER_LEN] == COMPRESSED {
        return Err(bad("nested", u64::from(COMPRESSED)));
    }
    decode_body(Bytes::from(inner).slice(HEADER_LEN..), limits)
}

fn encode_body(message: &Message, out: &mut BytesMut) {
    match message {
        Message::Hello { .. } | Message::Welcome { .. } => handshake::encode(message, out),
        Message::Refused { reason, message } => {
            out.put_u8(REFUSED);
            out.put_u8(refuse_code(*reason));
            put_str(out, message);
        }
        Message::Root { meta } => {
            out.put_u8(ROOT);
            put_meta(out, meta);
        }
        Message::List {
            dir,
            first,
            entries,
            dir_done,
            dir_complete,
        } => {
            out.put_u8(LIST);
            put_bytes(out, dir);
            out.put_u64_le(*first);
            out.put_u8(u8::from(*dir_done) | (u8::from(*dir_complete) << 1));
            out.put_u32_le(entries.len() as u32);
            for entry in entries {
                wire::put_entry(out, entry);
            }
        }
        Message::ListEnd {
            entries,
            read_errors,
        } => {
            out.put_u8(LIST_END);
            out.put_u64_le(*entries);
            out.put_u64_le(*read_errors);
        }
        Message::Ack { through } => {
            out.put_u8(ACK);
            out.put_u64_le(*through);
        }
        Message::Resume {
            index,
            offset,
            hash,
        } => {
            out.put_u8(RESUME);
            out.put_u64_le(*index);
            out.put_u64_le(*offset);
            out.put_slice(hash);
        }
        Message::Want { index, delta } => {
            out.put_u8(WANT);
            out.put_u64_le(*index);
            out.put_u8(u8::from(*delta));
        }
        Message::Signature { index, bytes, last } => {
            out.put_u8(SIGNATURE);
            out.put_u64_le(*index);
            out.put_u8(u8::from(*last));
            put_bytes(out, bytes);
        }
        Message::Data {
            index,
            offset,
            bytes,
        } => {
            out.put_u8(DATA);
            out.put_u64_le(*index);
            out.put_u64_le(*offset);
            put_bytes(out, bytes);
        }
        Message::Hole { index, offset, len } => {
            out.put_u8(HOLE);
            out.put_u64_le(*index);
            out.put_u64_le(*offset);
            out.put_u64_le(*len);
        }
        Message::Delta {
            index,
            offset,
            len,
            bytes,
        } => {
            out.put_u8(DELTA);
            out.put_u64_le(*index);
            out.put_u64_le(*offset);
            out.put_u64_le(*len);
            put_bytes(out, bytes);
        }
        Message::FileEnd { index, size, hash } => {
            out.put_u8(FILE_END);
            out.put_u64_le(*index);
            out.put_u64_le(*size);
            out.put_slice(hash);
        }
        Message::FileFailed {
            index,
            reason,
            message,
        } => {
            out.put_u8(FILE_FAILED);
            out.put_u64_le(*index);
            out.put_u8(failure_code(*reason));
            put_str(out, message);
        }
        Message::Change { path, kind, entry } => {
            out.put_u8(CHANGE);
            put_bytes(out, path);
            out.put_u8(change_code(*kind));
            out.put_u8(entry_code(*entry));
        }
        Message::NotApplied {
            path,
            owner,
            xattrs,
            special,
        } => {
            out.put_u8(NOT_APPLIED);
            put_bytes(out, path);
            out.put_u8(u8::from(*owner));
            out.put_u32_le(*xattrs);
            out.put_u8(u8::from(*special));
        }
        Message::FileError { path, message } => {
            out.put_u8(FILE_ERROR);
            put_bytes(out, path);
            put_str(out, message);
        }
        Message::Done { stats } => {
            out.put_u8(DONE);
            for value in stats_fields(stats) {
                out.put_u64_le(value);
            }
        }
        Message::SourceDone { stats } => {
            out.put_u8(SOURCE_DONE);
            for value in source_stats_fields(stats) {
                out.put_u64_le(value);
            }
        }
        Message::Error { class, message } => {
            out.put_u8(ERROR);
            out.put_u8(class_code(*class));
            put_str(out, message);
        }
        Message::Heartbeat => out.put_u8(HEARTBEAT),
        Message::Join { .. }
        | Message::Joined { .. }
        | Message::WantRange { .. }
        | Message::RangeEnd { .. }
        | Message::Wants { .. }
        | Message::Files { .. }
        | Message::StreamGone { .. } => streams::encode(message, out),
        block => block::encode(block, out),
    }
}

fn decode_body(body: Bytes, limits: &Limits) -> Result<Message, CodecError> {
    let tag = body[0];
    let name = tag_name(tag).ok_or(CodecError::UnknownTag { tag })?;
    let mut r = Reader::new(body.slice(1..), name, limits);
    let message = match tag {
        HELLO | WELCOME => handshake::decode(tag, &mut r, limits)?,
        REFUSED => {
            let code = r.u8("reason")?;
            Message::Refused {
                reason: refuse_from(code).ok_or_else(|| r.bad("reason", code.into()))?,
                message: r.text("message")?,
            }
        }
        ROOT => Message::Root {
            meta: r.meta("meta")?,
        },
        LIST => {
            let dir = r.bytes("dir", limits.max_path)?.to_vec();
            RelPath::new(dir.clone(), limits).map_err(|source| CodecError::BadPath {
                message: name,
                field: "dir",
                source,
            })?;
            let first = r.u64("first")?;
            let flags = r.u8("flags")?;
            if flags > 3 {
                return Err(r.bad("flags", flags.into()));
            }
            let count = r.count("entries", limits.max_entries_per_frame, 16)?;
            let mut entries = Vec::with_capacity(count);
            for _ in 0..count {
                entries.push(r.entry()?);
            }
            Message::List {
                dir,
                first,
                entries,
                dir_done: flags & 1 != 0,
                dir_complete: flags & 2 != 0,
            }
        }
        LIST_END => Message::ListEnd {
            entries: r.u64("entries")?,
            read_errors: r.u64("read_errors")?,
        },
        ACK => Message::Ack {
            through: r.u64("through")?,
        },
        RESUME => Message::Resume {
            index: r.u64("index")?,
            offset: r.u64("offset")?,
            hash: r.array32("hash")?,
        },
        WANT => Message::Want {
            index: r.u64("index")?,
            delta: r.flag("delta")?,
        },
        SIGNATURE => Message::Signature {
            index: r.u64("index")?,
            last: r.flag("last")?,
            bytes: r.bytes("bytes", limits.data_chunk)?,
        },
        DATA => Message::Data {
            index: r.u64("index")?,
            offset: r.u64("offset")?,
            bytes: r.bytes("bytes", limits.data_chunk)?,
        },
        HOLE => Message::Hole {
            index: r.u64("index")?,
            offset: r.u64("offset")?,
            len: r.u64("len")?,
        },
        DELTA => {
            let index = r.u64("index")?;
            let offset = r.u64("offset")?;
            let len = r.u64("len")?;
            if len > limits.delta_segment as u64 {
                return Err(r.over("len", len, limits.delta_segment as u64));
            }
            Message::Delta {
                index,
                offset,
                len,
                bytes: r.bytes("bytes", limits.max_frame)?,
            }
        }
        FILE_END => Message::FileEnd {
            index: r.u64("index")?,
            size: r.u64("size")?,
            hash: r.array32("hash")?,
        },
        FILE_FAILED => {
            let index = r.u64("index")?;
            let code = r.u8("reason")?;
            Message::FileFailed {
                index,
                reason: failure_from(code).ok_or_else(|| r.bad("reason", code.into()))?,
                message: r.text("message")?,
            }
        }
        CHANGE => {
            let path = r.bytes("path", limits.max_path)?.to_vec();
            let code = r.u8("kind")?;
            Message::Change {
                path,
                kind: change_from(code).ok_or_else(|| r.bad("kind", code.into()))?,
                entry: {
                    let code = r.u8("entry")?;
                    entry_from(code).ok_or_else(|| r.bad("entry", code.into()))?
                },
            }
        }
        NOT_APPLIED => Message::NotApplied {
            path: r.bytes("path", limits.max_path)?.to_vec(),
            owner: r.flag("owner")?,
            xattrs: r.u32("xattrs")?,
            special: r.flag("special")?,
        },
        FILE_ERROR => Message::FileError {
            path: r.bytes("path", limits.max_path)?.to_vec(),
            message: r.text("message")?,
        },
        DONE => {
            let mut fields = [0u64; STATS_FIELDS];
            for field in fields.iter_mut() {
                *field = r.u64("stats")?;
            }
            Message::Done {
                stats: stats_from(fields).ok_or_else(|| r.bad("delete_skipped", fields[5]))?,
            }
        }
        SOURCE_DONE => {
            let mut fields = [0u64; SOURCE_STATS_FIELDS];
            for field in fields.iter_mut() {
                *field = r.u64("source stats")?;
            }
            Message::SourceDone {
                stats: source_stats_from(fields),
            }
        }
        ERROR => {
            let code = r.u8("class")?;
            Message::Error {
                class: class_from(code).ok_or_else(|| r.bad("class", code.into()))?,
                message: r.text("message")?,
            }
        }
        HEARTBEAT => Message::Heartbeat,
        JOIN..=STREAM_GONE => streams::decode(tag, &mut r, limits)?,
        COMPRESSED => return Err(r.bad("nested", u64::from(COMPRESSED))),
        BLOCK_BEGIN..=BLOCK_DONE => block::decode(tag, &mut r, limits)?,
        _ => unreachable!("tag_name accepted tag {tag}"),
    };
    r.finish()?;
    Ok(message)
}

/// Checks one entry name from a `List` frame (used by the wire reader).
fn entry_name(name: &[u8], limits: &Limits) -> Result<(), CodecError> {
    check_name(name, limits).map_err(|source| CodecError::BadPath {
        message: "List",
        field: "entry.name",
        source,
    })
}

#[cfg(test)]
mod tests;
