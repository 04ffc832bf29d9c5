//! Field-level encoding shared by all messages, and the bounded [`Reader`] that parses
//! one frame body.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::tags::*;
use super::{entry_name, CodecError};
use crate::limits::Limits;
use crate::model::*;

pub fn put_bytes(out: &mut BytesMut, bytes: &[u8]) {
    out.put_u32_le(bytes.len() as u32);
    out.put_slice(bytes);
}

/// Human text (errors, refusals) goes out cut to what a receiver takes
/// ([`Limits::max_message`]), at a character boundary and marked with `…`: a per-file
/// error naming a long path must not end the session at the peer's decoder.
pub fn put_str(out: &mut BytesMut, text: &str) {
    let max = Limits::default().max_message;
    if text.len() <= max {
        return put_bytes(out, text.as_bytes());
    }
    const MARK: &str = "…";
    let mut end = max - MARK.len();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    out.put_u32_le((end + MARK.len()) as u32);
    out.put_slice(&text.as_bytes()[..end]);
    out.put_slice(MARK.as_bytes());
}

pub fn put_meta(out: &mut BytesMut, meta: &Meta) {
    out.put_u32_le(meta.mode);
    out.put_u32_le(meta.uid);
    out.put_u32_le(meta.gid);
    out.put_i64_le(meta.mtime.sec);
    out.put_u32_le(meta.mtime.nsec);
    out.put_u32_le(meta.xattrs.len() as u32);
    for xattr in &meta.xattrs {
        put_bytes(out, &xattr.name);
        put_bytes(out, &xattr.value);
    }
}

pub fn put_entry(out: &mut BytesMut, entry: &Entry) {
    put_bytes(out, &entry.name);
    put_meta(out, &entry.meta);
    match &entry.content {
        Content::File {
            size,
            checksum: None,
        } => {
            out.put_u8(CONTENT_FILE);
            out.put_u64_le(*size);
        }
        Content::File {
            size,
            checksum: Some(sum),
        } => {
            out.put_u8(CONTENT_FILE_SUM);
            out.put_u64_le(*size);
            out.put_slice(sum);
        }
        Content::Dir => out.put_u8(CONTENT_DIR),
        Content::Symlink { target } => {
            out.put_u8(CONTENT_SYMLINK);
            put_bytes(out, target);
        }
        Content::HardLink { leader, path } => {
            out.put_u8(CONTENT_HARDLINK);
            out.put_u64_le(*leader);
            put_bytes(out, path);
        }
        Content::Special { kind, rdev } => {
            out.put_u8(CONTENT_SPECIAL);
            out.put_u8(special_code(*kind));
            out.put_u64_le(*rdev);
        }
    }
}

/// Parses one frame body. Every read checks the bytes remaining first; every length
/// and count is checked against its limit before anything is allocated.
pub struct Reader<'a> {
    buf: Bytes,
    message: &'static str,
    limits: &'a Limits,
}

impl<'a> Reader<'a> {
    pub fn new(buf: Bytes, message: &'static str, limits: &'a Limits) -> Self {
        Reader {
            buf,
            message,
            limits,
        }
    }

    fn need(&self, n: usize, field: &'static str) -> Result<(), CodecError> {
        if self.buf.remaining() < n {
            return Err(CodecError::Truncated {
                message: self.message,
                field,
            });
        }
        Ok(())
    }

    pub fn bad(&self, field: &'static str, value: u64) -> CodecError {
        CodecError::BadValue {
            message: self.message,
            field,
            value,
        }
    }

    pub fn over(&self, field: &'static str, value: u64, max: u64) -> CodecError {
        CodecError::OverLimit {
            message: self.message,
            field,
            value,
            max,
        }
    }

    pub fn u8(&mut self, field: &'static str) -> Result<u8, CodecError> {
        self.need(1, field)?;
        Ok(self.buf.get_u8())
    }

    pub fn flag(&mut self, field: &'static str) -> Result<bool, CodecError> {
        match self.u8(field)? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(self.bad(field, other.into())),
        }
    }

    pub fn u16(&mut self, field: &'static str) -> Result<u16, CodecError> {
        self.need(2, field)?;
        Ok(self.buf.get_u16_le())
    }

    pub fn u32(&mut self, field: &'static str) -> Result<u32, CodecError> {
        self.need(4, field)?;
        Ok(self.buf.get_u32_le())
    }

    pub fn u64(&mut self, field: &'static str) -> Result<u64, CodecError> {
        self.need(8, field)?;
        Ok(self.buf.get_u64_le())
    }

    pub fn i64(&mut self, field: &'static str) -> Result<i64, CodecError> {
        self.need(8, field)?;
        Ok(self.buf.get_i64_le())
    }

    pub fn array32(&mut self, field: &'static str) -> Result<[u8; 32], CodecError> {
        self.need(32, field)?;
        let mut out = [0u8; 32];
        self.buf.copy_to_slice(&mut out);
        Ok(out)
    }

    /// A length-prefixed byte string of at most `max` bytes (zero-copy).
    pub fn bytes(&mut self, field: &'static str, max: usize) -> Result<Bytes, CodecError> {
        let len = self.u32(field)? as usize;
        if len > max {
            return Err(self.over(field, len as u64, max as u64));
        }
        self.need(len, field)?;
        Ok(self.buf.split_to(len))
    }

    /// A human-readable message, bounded and UTF-8.
    pub fn text(&mut self, field: &'static str) -> Result<String, CodecError> {
        let bytes = self.bytes(field, self.limits.max_message)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| CodecError::BadText {
            message: self.message,
            field,
        })
    }

    /// A count of items that each take at least `min_item` bytes: bounded by `max` and by
    /// what the rest of the frame could possibly hold.
    pub fn count(
        &mut self,
        field: &'static str,
        max: usize,
        min_item: usize,
    ) -> Result<usize, CodecError> {
        let count = self.u32(field)? as usize;
        if count > max {
            return Err(self.over(field, count as u64, max as u64));
        }
        if count.saturating_mul(min_item) > self.buf.remaining() {
            return Err(CodecError::Truncated {
                message: self.message,
                field,
            });
        }
        Ok(count)
    }

    pub fn meta(&mut self, _field: &'static str) -> Result<Meta, CodecError> {
        let mode = self.u32("mode")?;
        if mode > 0o7777 {
            return Err(self.bad("mode", mode.into()));
        }
        let uid = self.u32("uid")?;
        let gid = self.u32("gid")?;
        let sec = self.i64("mtime.sec")?;
        let nsec = self.u32("mtime.nsec")?;
        if nsec >= 1_000_000_000 {
            return Err(self.bad("mtime.nsec", nsec.into()));
        }
        let count = self.count("xattrs", self.limits.max_xattrs, 8)?;
        let mut xattrs: Vec<Xattr> = Vec::with_capacity(count);
        for _ in 0..count {
            let name = self.bytes("xattr.name", self.limits.max_name)?.to_vec();
            if name.is_empty() || name.contains(&0) {
                return Err(self.bad("xattr.name", name.len() as u64));
            }
            if xattrs.iter().any(|x| x.name == name) {
                return Err(self.bad("xattr.name (duplicate)", name.len() as u64));
            }
            let value = self
                .bytes("xattr.value", self.limits.max_xattr_value)?
                .to_vec();
            xattrs.push(Xattr { name, value });
        }
        Ok(Meta {
            mode,
            uid,
            gid,
            mtime: Timestamp { sec, nsec },
            xattrs,
        })
    }

    pub fn entry(&mut self) -> Result<Entry, CodecError> {
        let name = self.bytes("entry.name", self.limits.max_name)?.to_vec();
        entry_name(&name, self.limits)?;
        let meta = self.meta("entry.meta")?;
        let content = match self.u8("entry.kind")? {
            CONTENT_FILE => Content::File {
                size: self.u64("entry.size")?,
                checksum: None,
            },
            CONTENT_FILE_SUM => Content::File {
                size: self.u64("entry.size")?,
                checksum: Some(self.array32("entry.checksum")?),
            },
            CONTENT_DIR => Content::Dir,
            CONTENT_SYMLINK => {
                let target = self.bytes("entry.target", self.limits.max_link_target)?;
                if target.is_empty() || target.contains(&0) {
                    return Err(self.bad("entry.target", target.len() as u64));
                }
                Content::Symlink {
                    target: target.to_vec(),
                }
            }
            CONTENT_HARDLINK => {
                let leader = self.u64("entry.leader")?;
                let path = self
                    .bytes("entry.leader_path", self.limits.max_path)?
                    .to_vec();
                if path.is_empty() {
                    return Err(self.bad("entry.leader_path", 0));
                }
                crate::path::RelPath::new(path.clone(), self.limits).map_err(|source| {
                    CodecError::BadPath {
                        message: self.message,
                        field: "entry.leader_path",
                        source,
                    }
                })?;
                Content::HardLink { leader, path }
            }
            CONTENT_SPECIAL => {
                let code = self.u8("entry.special")?;
                Content::Special {
                    kind: special_from(code)
                        .ok_or_else(|| self.bad("entry.special", code.into()))?,
                    rdev: self.u64("entry.rdev")?,
                }
            }
            other => return Err(self.bad("entry.kind", other.into())),
        };
        Ok(Entry {
            name,
            meta,
            content,
        })
    }

    /// Drops the rest of the body unread: only for the fields of another protocol
    /// version, whose layout this one does not know (a `Welcome` of another version).
    pub fn skip_rest(&mut self) {
        self.buf.advance(self.buf.remaining());
    }

    /// The frame must be consumed exactly.
    pub fn finish(self) -> Result<(), CodecError> {
        if self.buf.has_remaining() {
            return Err(CodecError::TrailingBytes {
                message: self.message,
                extra: self.buf.remaining(),
            });
        }
        Ok(())
    }
}
