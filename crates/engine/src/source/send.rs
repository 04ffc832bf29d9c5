//! Serving one `Want`: read a source file and send it whole (data and holes), as a
//! delta against the target's signature, or one range of it (`WantRange`: data and
//! holes of `[offset, offset + len)` and its chaining value, or `same` when the target's
//! bytes are ours), with its BLAKE3, refusing to send a file that changes under us.
//!
//! Runs on a sender thread: blocking reads, hashing and delta search stay off the reactor.

use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};

use bytes::Bytes;
use ferry_delta::{diff_segment, literal_fraction, segment_len, DeltaStats, PeerSignature};
use ferry_proto::session::source::Ask;
use ferry_proto::{FileFailure, Limits, Message, RelPath, Timestamp};
use ferry_tree::{regions_allocated, regions_within, Region, SourceRoot};

use crate::error::EngineError;
use crate::framed::FrameSender;
use crate::range_hash::RangeHasher;
use crate::report::progress::Progress;
use crate::zeros::{feed_zeros, hash_zeros};

/// What a sender needs of a listed regular file to read it, and the driver to count it
/// once the target resolves it (the source core keeps it per unresolved file).
#[derive(Clone, Debug)]
pub struct FileInfo {
    pub path: RelPath,
    pub size: u64,
    pub mtime: Timestamp,
}

/// How one file went.
#[derive(Debug, Default)]
pub struct Sent {
    pub stats: DeltaStats,
    pub as_delta: bool,
    /// Bytes not sent because the target's partial prefix (or its range, `same`) matched
    /// ours.
    pub resumed: u64,
    pub failure: Option<FileFailure>,
}

/// Segments whose delta is at least this literal are not worth searching.
const HOPELESS: f64 = 0.9;
/// After this many hopeless segments in a row, the rest of the file goes literal:
/// the delta search goes through unrelated data at a seventh of its speed on similar data.
const HOPELESS_RUN: u32 = 2;

/// Sends file `index`. A file that vanished or changed is reported to the target with
/// `FileFailed`; only a dead connection is an error.
pub fn send_file(
    root: &SourceRoot,
    index: u64,
    info: &FileInfo,
    ask: Ask,
    limits: &Limits,
    tx: &FrameSender,
    progress: &Progress,
) -> Result<Sent, EngineError> {
    let send = |m: Message| {
        match &m {
            Message::Data { bytes, .. } => progress.sent(bytes.len() as u64),
            Message::Hole { len, .. } | Message::Delta { len, .. } => progress.sent(*len),
            _ => {}
        }
        tx.blocking_send(m)
            .map_err(|_| EngineError::socket("the connection closed while sending a file"))
    };
    let fail = |reason: FileFailure, message: String| -> Result<Sent, EngineError> {
        send(Message::FileFailed {
            index,
            reason,
            message,
        })?;
        Ok(Sent {
            failure: Some(reason),
            ..Sent::default()
        })
    };

    let opened = match root.open_file(&info.path) {
        Ok(opened) => opened,
        Err(e) if e.is_not_found() => return fail(FileFailure::Vanished, "vanished".into()),
        Err(e) => return fail(FileFailure::ReadError, e.to_string()),
    };
    if (opened.size, opened.mtime) != (info.size, info.mtime) {
        return fail(
            FileFailure::Changed,
            "changed since it was listed; the next pass sends it".into(),
        );
    }
    let (file, allocated) = (opened.file, opened.allocated);
    let mut hasher = blake3::Hasher::new();
    let mut resumed = 0;
    let result = match ask {
        Ask::Range { offset, len, have } => {
            let range = Range { offset, len, have };
            return send_range(&file, index, info, range, limits, &send, &fail, progress);
        }
        Ask::Delta(bytes) => {
            let signature = PeerSignature::parse(bytes, limits.max_signature).map_err(|e| {
                EngineError::protocol(format!("bad signature from the target: {e}"))
            })?;
            send_delta(
                &file,
                index,
                info.size,
                &signature,
                limits,
                &mut hasher,
                &send,
            )
        }
        Ask::Whole | Ask::Resume { .. } => {
            if let Ask::Resume { offset, hash } = ask {
                match prefix_matches(&file, offset.min(info.size), &hash, &mut hasher) {
                    Ok(true) => {
                        resumed = offset.min(info.size);
                        progress.sent(resumed);
                    }
                    Ok(false) => hasher = blake3::Hasher::new(),
                    Err(e) => return fail(FileFailure::ReadError, e.to_string()),
                }
            }
            match regions_allocated(&file, info.size, allocated) {
                Ok(map) => {
                    let (start, end) = (resumed, info.size);
                    send_regions(&file, index, map, start, end, limits, &mut hasher, &send)
                        .map(|literal| (DeltaStats { literal, copied: 0 }, false))
                }
                Err(e) => return fail(FileFailure::ReadError, e.to_string()),
            }
        }
    };
    let (stats, as_delta) = match result {
        Ok(done) => done,
        Err(e) => {
            let (reason, message) = read_failure(e)?;
            return fail(reason, message);
        }
    };
    if !still_as_listed(&file, info) {
        return fail(FileFailure::Changed, CHANGED_WHILE_READ.into());
    }
    send(Message::FileEnd {
        index,
        size: info.size,
        hash: *hasher.finalize().as_bytes(),
    })?;
    Ok(Sent {
        stats,
        as_delta,
        resumed,
        failure: None,
    })
}

/// Hashes our first `len` bytes into `hasher` and compares with the target's `hash`.
fn prefix_matches(
    file: &File,
    len: u64,
    hash: &[u8; 32],
    hasher: &mut blake3::Hasher,
) -> std::io::Result<bool> {
    let mut buf = vec![0u8; 1 << 20];
    let mut offset = 0u64;
    while offset < len {
        let n = (len - offset).min(buf.len() as u64) as usize;
        file.read_exact_at(&mut buf[..n], offset)?;
        hasher.update(&buf[..n]);
        offset += n as u64;
    }
    Ok(hasher.finalize().as_bytes() == hash)
}

/// What a sender must send of one range ([`Ask::Range`], checked by the source core
/// against the listed size).
struct Range {
    offset: u64,
    len: u64,
    have: Option<[u8; 32]>,
}

/// Sends one range of file `index`, opened and found as listed: `RangeEnd{same}` alone
/// when the target's chaining value is ours, else the range's data and holes and its
/// `RangeEnd` with our chaining value. A file that changed while the range was read (its
/// size or mtime no longer the listed ones) gets `FileFailed{Changed}` instead of the
/// `RangeEnd`, after the data already sent.
#[allow(clippy::too_many_arguments)]
fn send_range(
    file: &File,
    index: u64,
    info: &FileInfo,
    range: Range,
    limits: &Limits,
    send: &impl Fn(Message) -> Result<(), EngineError>,
    fail: &impl Fn(FileFailure, String) -> Result<Sent, EngineError>,
    progress: &Progress,
) -> Result<Sent, EngineError> {
    let Range { offset, len, have } = range;
    let end = offset + len;
    let map = match regions_within(file, offset, end) {
        Ok(map) => map,
        Err(e) => return fail(FileFailure::ReadError, e.to_string()),
    };
    let range_end = |same, cv| Message::RangeEnd {
        index,
        offset,
        len,
        same,
        cv,
    };
    if let Some(cv) = have {
        let mut hasher = RangeHasher::new(info.size, offset);
        if let Err(e) = hash_regions(file, &map, &mut hasher) {
            let (reason, message) = read_failure(ReadFailure::Io(e))?;
            return fail(reason, message);
        }
        if hasher.value() == cv {
            if !still_as_listed(file, info) {
                return fail(FileFailure::Changed, CHANGED_WHILE_READ.into());
            }
            progress.sent(len);
            send(range_end(true, cv))?;
            return Ok(Sent {
                resumed: len,
                ..Sent::default()
            });
        }
    }
    let mut hasher = RangeHasher::new(info.size, offset);
    let literal = match send_regions(file, index, map, offset, end, limits, &mut hasher, send) {
        Ok(literal) => literal,
        Err(e) => {
            let (reason, message) = read_failure(e)?;
            return fail(reason, message);
        }
    };
    if !still_as_listed(file, info) {
        return fail(FileFailure::Changed, CHANGED_WHILE_READ.into());
    }
    send(range_end(false, hasher.value()))?;
    Ok(Sent {
        stats: DeltaStats { literal, copied: 0 },
        ..Sent::default()
    })
}

/// Hashes what `map` covers into `hasher`: data read, holes as zeros.
fn hash_regions(file: &File, map: &[Region], hasher: &mut impl Digest) -> std::io::Result<()> {
    let mut buf = vec![0u8; 1 << 20];
    for region in map {
        if region.hole {
            hasher.zeros(region.len);
            continue;
        }
        let (mut at, end) = (region.offset, region.offset + region.len);
        while at < end {
            let n = (end - at).min(buf.len() as u64) as usize;
            file.read_exact_at(&mut buf[..n], at)?;
            hasher.bytes(&buf[..n]);
            at += n as u64;
        }
    }
    Ok(())
}

/// What the bytes a sender reads are hashed into: the whole file's BLAKE3, or one
/// range's chaining value.
trait Digest {
    fn bytes(&mut self, bytes: &[u8]);
    /// `len` zero bytes (a hole), not read.
    fn zeros(&mut self, len: u64);
}

impl Digest for blake3::Hasher {
    fn bytes(&mut self, bytes: &[u8]) {
        self.update(bytes);
    }

    fn zeros(&mut self, len: u64) {
        hash_zeros(self, len);
    }
}

impl Digest for RangeHasher {
    fn bytes(&mut self, bytes: &[u8]) {
        self.update(bytes);
    }

    fn zeros(&mut self, len: u64) {
        feed_zeros(len, |zeros| {
            self.update(zeros);
        });
    }
}

/// The target is told a file changed while it was read: its size or mtime are no longer
/// the listed ones.
const CHANGED_WHILE_READ: &str = "changed while it was read; the next pass sends it";

/// What a failed read tells the target (`FileFailed` reason and words), or the error that
/// ends the session (the connection closed).
fn read_failure(e: ReadFailure) -> Result<(FileFailure, String), EngineError> {
    match e {
        ReadFailure::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            Ok((FileFailure::Changed, "shrank while it was read".into()))
        }
        ReadFailure::Io(e) => Ok((FileFailure::ReadError, e.to_string())),
        ReadFailure::Closed(e) => Err(e),
    }
}

enum ReadFailure {
    Io(std::io::Error),
    Closed(EngineError),
}

impl From<std::io::Error> for ReadFailure {
    fn from(e: std::io::Error) -> Self {
        ReadFailure::Io(e)
    }
}

impl From<EngineError> for ReadFailure {
    fn from(e: EngineError) -> Self {
        ReadFailure::Closed(e)
    }
}

/// Whether the file's size and mtime are still as listed (after it was read).
pub(super) fn still_as_listed(file: &File, info: &FileInfo) -> bool {
    let Ok(m) = file.metadata() else {
        return false;
    };
    m.len() == info.size
        && m.mtime() == info.mtime.sec
        && m.mtime_nsec() == i64::from(info.mtime.nsec)
}

/// Reads `len` bytes at `offset` into a fresh buffer that becomes the Data frame's
/// payload as it is (the writer sends it by reference). The buffer is not zeroed first:
/// `pread` fills its spare capacity.
pub(super) fn read_chunk(file: &File, offset: u64, len: usize) -> Result<Bytes, std::io::Error> {
    let mut buf = Vec::with_capacity(len);
    while buf.len() < len {
        let at = offset + buf.len() as u64;
        if rustix::io::pread(file, rustix::buffer::spare_capacity(&mut buf), at)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
    }
    // The capacity may exceed `len`: what was read past it is not this chunk's.
    buf.truncate(len);
    Ok(Bytes::from(buf))
}

/// Sends `[offset, end)` as literal data frames.
fn send_literal(
    file: &File,
    index: u64,
    mut offset: u64,
    end: u64,
    limits: &Limits,
    hasher: &mut impl Digest,
    send: &impl Fn(Message) -> Result<(), EngineError>,
) -> Result<u64, ReadFailure> {
    let start = offset;
    while offset < end {
        let len = (end - offset).min(limits.data_chunk as u64) as usize;
        let bytes = read_chunk(file, offset, len)?;
        hasher.bytes(&bytes);
        send(Message::Data {
            index,
            offset,
            bytes,
        })?;
        offset += len as u64;
    }
    Ok(offset - start)
}

/// Sends what `map` covers within `[start, end)` as data and holes, in order; returns
/// the literal bytes. `hasher` holds what comes before `start` of what it hashes (a whole
/// file's prefix, or nothing for a range).
#[allow(clippy::too_many_arguments)]
fn send_regions(
    file: &File,
    index: u64,
    map: Vec<Region>,
    start: u64,
    end: u64,
    limits: &Limits,
    hasher: &mut impl Digest,
    send: &impl Fn(Message) -> Result<(), EngineError>,
) -> Result<u64, ReadFailure> {
    let mut literal = 0;
    for region in map {
        let (from, to) = (
            region.offset.max(start),
            (region.offset + region.len).min(end),
        );
        if to <= from {
            continue;
        }
        if region.hole {
            hasher.zeros(to - from);
            send(Message::Hole {
                index,
                offset: from,
                len: to - from,
            })?;
        } else {
            literal += send_literal(file, index, from, to, limits, hasher, send)?;
        }
    }
    Ok(literal)
}

fn send_delta(
    file: &File,
    index: u64,
    size: u64,
    signature: &PeerSignature,
    limits: &Limits,
    hasher: &mut blake3::Hasher,
    send: &impl Fn(Message) -> Result<(), EngineError>,
) -> Result<(DeltaStats, bool), ReadFailure> {
    let sig_index = signature.index();
    let segment = segment_len(signature.plan()).min(limits.delta_segment);
    let mut stats = DeltaStats::default();
    let mut hopeless_run = 0;
    let mut buf = vec![0u8; segment];
    let mut offset = 0u64;
    while offset < size {
        if hopeless_run >= HOPELESS_RUN {
            stats.literal += send_literal(file, index, offset, size, limits, hasher, send)?;
            break;
        }
        let len = (size - offset).min(segment as u64) as usize;
        let data = &mut buf[..len];
        file.read_exact_at(data, offset)?;
        hasher.update(data);
        let mut delta = Vec::with_capacity(len / 8 + 64);
        let segment_stats = diff_segment(&sig_index, data, &mut delta).map_err(|e| {
            ReadFailure::Closed(EngineError::protocol(format!("delta search failed: {e}")))
        })?;
        if literal_fraction(segment_stats) >= HOPELESS {
            hopeless_run += 1;
        } else {
            hopeless_run = 0;
        }
        stats += segment_stats;
        send(Message::Delta {
            index,
            offset,
            len: len as u64,
            bytes: Bytes::from(delta),
        })?;
        offset += len as u64;
    }
    Ok((stats, true))
}

#[cfg(test)]
#[path = "send_tests.rs"]
mod tests;
