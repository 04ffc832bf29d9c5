//! Sending ranges of real files in a temp dir: the frames cover exactly the range, in
//! order, holes as `Hole`s; the chaining value is `RangeHasher`'s over the same bytes; a
//! target that has the bytes gets `same` and no data; a file changed before or while the
//! range is read gets `FileFailed{Changed}`. And the whole-file path the range shares its
//! region logic with still covers the file and hashes it as `blake3::hash`.

use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use ferry_proto::{RelPath, RANGE};
use tokio::sync::mpsc;

use super::*;

/// Four ranges and 5000 bytes: mostly a hole, with data across the first range's end
/// and filling the last range.
const SIZE: u64 = 4 * RANGE + 5000;
const MIB: u64 = 1024 * 1024;

/// Pseudo-random bytes (xorshift), different for each `seed`.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

struct Fixture {
    dir: tempfile::TempDir,
    root: SourceRoot,
    info: FileInfo,
}

impl Fixture {
    fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("big")
    }

    /// The file's bytes `[offset, offset + len)`, holes read as zeros.
    fn bytes(&self, offset: u64, len: u64) -> Vec<u8> {
        let mut buf = vec![0u8; len as usize];
        std::fs::File::open(self.path())
            .unwrap()
            .read_exact_at(&mut buf, offset)
            .unwrap();
        buf
    }

    /// `RangeEnd.cv` of range `offset` as the target would compute it.
    fn cv(&self, offset: u64) -> [u8; 32] {
        let len = crate::range_hash::range_len(SIZE, offset);
        RangeHasher::new(SIZE, offset)
            .update(&self.bytes(offset, len))
            .value()
    }
}

fn sparse_file() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big");
    let file = std::fs::File::create(&path).unwrap();
    file.write_all_at(&noise(73_000, 1), RANGE - 3000).unwrap();
    file.write_all_at(&noise(5000, 2), 4 * RANGE).unwrap();
    file.set_len(SIZE).unwrap();
    drop(file);
    let root = SourceRoot::open(dir.path()).unwrap();
    let rel = RelPath::new(b"big".to_vec(), &Limits::default()).unwrap();
    let (size, mtime) = root.stat(&rel).unwrap();
    assert_eq!(size, SIZE);
    Fixture {
        dir,
        root,
        info: FileInfo {
            path: rel,
            size,
            mtime,
        },
    }
}

fn range(offset: u64, have: Option<[u8; 32]>) -> Ask {
    let len = crate::range_hash::range_len(SIZE, offset);
    Ask::Range { offset, len, have }
}

/// Sends `ask` of the fixture's file (entry 7), returning what was sent and the frames.
fn send(fx: &Fixture, ask: Ask, limits: &Limits) -> (Sent, Vec<Message>) {
    let (tx, mut rx) = mpsc::channel(4096);
    let progress = Progress::default();
    let sent = send_file(&fx.root, 7, &fx.info, ask, limits, &tx, &progress).unwrap();
    drop(tx);
    let frames = std::iter::from_fn(|| rx.blocking_recv()).collect();
    (sent, frames)
}

/// Checks that the `Data`/`Hole` frames (all but the last) cover `[offset, offset + len)`
/// contiguously and in order, each `Data` within `data_chunk`, and returns the bytes they
/// carry (holes as zeros) and how many of each there were.
#[track_caller]
fn covered(
    frames: &[Message],
    offset: u64,
    len: u64,
    data_chunk: usize,
) -> (Vec<u8>, usize, usize) {
    let (mut at, mut bytes, mut data, mut holes) = (offset, Vec::new(), 0, 0);
    for frame in frames {
        match frame {
            Message::Data {
                index: 7,
                offset,
                bytes: b,
            } => {
                assert_eq!(*offset, at, "a Data frame out of place");
                assert!(!b.is_empty() && b.len() <= data_chunk, "{} bytes", b.len());
                bytes.extend_from_slice(b);
                at += b.len() as u64;
                data += 1;
            }
            Message::Hole {
                index: 7,
                offset,
                len,
            } => {
                assert_eq!(*offset, at, "a Hole frame out of place");
                assert!(*len > 0);
                bytes.resize(bytes.len() + *len as usize, 0);
                at += len;
                holes += 1;
            }
            other => panic!("{other:?} among the range's frames"),
        }
    }
    assert_eq!(at, offset + len, "the frames end at {at}");
    (bytes, data, holes)
}

#[test]
fn a_range_of_a_sparse_file_is_its_data_and_holes_and_its_chaining_value() {
    let fx = sparse_file();
    let limits = Limits::default();
    // Range 1 starts with data (written across its start) and ends in a hole; range 0
    // starts with a hole; range 4, the last, is 5000 bytes of data.
    for offset in [RANGE, 0, 4 * RANGE] {
        let len = crate::range_hash::range_len(SIZE, offset);
        let (sent, frames) = send(&fx, range(offset, None), &limits);
        let (last, body) = frames.split_last().unwrap();
        assert_eq!(
            *last,
            Message::RangeEnd {
                index: 7,
                offset,
                len,
                same: false,
                cv: fx.cv(offset),
            }
        );
        let (bytes, data, _) = covered(body, offset, len, limits.data_chunk);
        assert!(
            bytes == fx.bytes(offset, len),
            "range {offset}: other bytes"
        );
        assert!(data > 0, "range {offset} has data");
        let literal: u64 = body
            .iter()
            .map(|f| match f {
                Message::Data { bytes, .. } => bytes.len() as u64,
                _ => 0,
            })
            .sum();
        assert_eq!((sent.stats.literal, sent.resumed), (literal, 0));
        assert!(sent.failure.is_none() && !sent.as_delta);
    }
    // The holes are not read as data: range 1 is mostly a hole.
    let (_, frames) = send(&fx, range(RANGE, None), &limits);
    let (_, _, holes) = covered(&frames[..frames.len() - 1], RANGE, RANGE, limits.data_chunk);
    assert!(holes >= 1, "no Hole frame in a range that is mostly a hole");
}

#[test]
fn a_target_that_has_the_range_gets_same_and_no_data() {
    let fx = sparse_file();
    let cv = fx.cv(RANGE);
    let (sent, frames) = send(&fx, range(RANGE, Some(cv)), &Limits::default());
    assert_eq!(
        frames,
        [Message::RangeEnd {
            index: 7,
            offset: RANGE,
            len: RANGE,
            same: true,
            cv,
        }]
    );
    assert_eq!((sent.resumed, sent.stats.literal), (RANGE, 0));
    assert!(sent.failure.is_none());
}

#[test]
fn a_target_whose_range_differs_gets_the_data_and_the_source_s_value() {
    let fx = sparse_file();
    let mut wrong = fx.cv(4 * RANGE);
    wrong[0] ^= 1;
    let (sent, frames) = send(&fx, range(4 * RANGE, Some(wrong)), &Limits::default());
    let (last, body) = frames.split_last().unwrap();
    assert_eq!(
        *last,
        Message::RangeEnd {
            index: 7,
            offset: 4 * RANGE,
            len: 5000,
            same: false,
            cv: fx.cv(4 * RANGE),
        }
    );
    let (bytes, _, _) = covered(body, 4 * RANGE, 5000, Limits::default().data_chunk);
    assert!(bytes == fx.bytes(4 * RANGE, 5000));
    assert_eq!((sent.resumed, sent.stats.literal), (0, 5000));
}

#[track_caller]
fn failed_changed(frames: &[Message]) {
    match frames.last() {
        Some(Message::FileFailed {
            index: 7,
            reason: FileFailure::Changed,
            ..
        }) => {}
        other => panic!("expected FileFailed Changed last, got {other:?}"),
    }
    assert!(
        !frames.iter().any(|f| matches!(f, Message::RangeEnd { .. })),
        "a RangeEnd for a changed file"
    );
}

#[test]
fn a_file_changed_since_it_was_listed_fails_its_range_before_any_data() {
    let fx = sparse_file();
    let mut fx = fx;
    fx.info.mtime.sec -= 10;
    for have in [None, Some(fx.cv(RANGE))] {
        let (sent, frames) = send(&fx, range(RANGE, have), &Limits::default());
        assert_eq!(frames.len(), 1, "{frames:?}");
        failed_changed(&frames);
        assert_eq!(sent.failure, Some(FileFailure::Changed));
    }
}

#[test]
fn a_file_whose_mtime_changes_while_its_range_is_read_fails_after_the_data_sent() {
    let fx = sparse_file();
    // Small Data frames and a queue of one: the sender cannot send the range's last
    // frames (nor look at the file after them) before the first one is taken, and the
    // mtime is changed as soon as it is.
    let limits = Limits {
        data_chunk: 4096,
        ..Limits::default()
    };
    let (tx, mut rx) = mpsc::channel(1);
    let path = fx.path();
    let reader = std::thread::spawn(move || {
        let first = rx.blocking_recv().expect("a first frame");
        touch(&path);
        let mut frames = vec![first];
        frames.extend(std::iter::from_fn(|| rx.blocking_recv()));
        frames
    });
    let progress = Progress::default();
    let sent = send_file(
        &fx.root,
        7,
        &fx.info,
        range(RANGE, None),
        &limits,
        &tx,
        &progress,
    )
    .unwrap();
    drop(tx);
    let frames = reader.join().unwrap();
    assert!(frames.len() > 3, "{} frames", frames.len());
    assert!(matches!(frames[0], Message::Data { .. }));
    failed_changed(&frames);
    assert_eq!(sent.failure, Some(FileFailure::Changed));
}

/// Moves the file's mtime a minute back (its size stays).
fn touch(path: &Path) {
    let file = std::fs::File::options().write(true).open(path).unwrap();
    let then = SystemTime::now() - Duration::from_secs(60);
    file.set_times(std::fs::FileTimes::new().set_modified(then))
        .unwrap();
}

#[test]
fn a_vanished_file_fails_its_range() {
    let fx = sparse_file();
    std::fs::remove_file(fx.path()).unwrap();
    let (sent, frames) = send(&fx, range(0, None), &Limits::default());
    assert!(
        matches!(
            frames[..],
            [Message::FileFailed {
                index: 7,
                reason: FileFailure::Vanished,
                ..
            }]
        ),
        "{frames:?}"
    );
    assert_eq!(sent.failure, Some(FileFailure::Vanished));
}

#[test]
fn the_whole_file_is_still_its_data_and_holes_and_its_blake3() {
    let fx = sparse_file();
    let limits = Limits::default();
    let (sent, frames) = send(&fx, Ask::Whole, &limits);
    let (last, body) = frames.split_last().unwrap();
    let all = fx.bytes(0, SIZE);
    assert_eq!(
        *last,
        Message::FileEnd {
            index: 7,
            size: SIZE,
            hash: *blake3::hash(&all).as_bytes(),
        }
    );
    let (bytes, _, holes) = covered(body, 0, SIZE, limits.data_chunk);
    assert!(bytes == all);
    assert!(holes >= 2);
    assert!(sent.stats.literal >= 78_000 && sent.stats.literal < 2 * MIB);
}
