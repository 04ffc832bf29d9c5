//! A file received in ranges by an apply worker, with real files: ranges in any order
//! and with holes make the file, a range whose value differs is reported and, sent
//! again, verifies; a session ending in the middle keeps only the verified prefix.

use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;

use ferry_proto::{Message, RelPath, RANGE};
use ferry_tree::{Privileges, Volume};
use tokio::sync::mpsc;

use super::job::Batch;
use super::tests::pending;
use super::worker;
use super::*;
use crate::cancel::Cancel;
use crate::range_hash::{range_len, range_value};

const SIZE: u64 = 4 * RANGE + 4321;

fn content() -> Vec<u8> {
    let mut bytes: Vec<u8> = (0..SIZE).map(|i| (i * 31 % 253) as u8).collect();
    // Range 1 is all zeros: sent as a hole.
    bytes[RANGE as usize..2 * RANGE as usize].fill(0);
    bytes
}

/// The frames of the range at `offset` as an honest source sends them; `cv` overrides
/// its value.
fn range(content: &[u8], offset: u64, cv: Option<[u8; 32]>) -> Vec<Job> {
    let len = range_len(SIZE, offset);
    let bytes = &content[offset as usize..(offset + len) as usize];
    let mut frames = Vec::new();
    if bytes.iter().all(|&b| b == 0) {
        frames.push(Message::Hole {
            index: 0,
            offset,
            len,
        });
    } else {
        for (k, piece) in bytes.chunks(1 << 20).enumerate() {
            frames.push(Message::Data {
                index: 0,
                offset: offset + (k as u64) * (1 << 20),
                bytes: bytes::Bytes::copy_from_slice(piece),
            });
        }
    }
    frames.push(Message::RangeEnd {
        index: 0,
        offset,
        len,
        same: false,
        cv: cv.unwrap_or_else(|| range_value(SIZE, offset, bytes)),
    });
    frames.into_iter().map(Job::Frame).collect()
}

struct Run {
    base: tempfile::TempDir,
    dir: Arc<ferry_tree::Dir>,
    cancel: Cancel,
}

fn run() -> Run {
    let base = tempfile::tempdir().unwrap();
    let volume = Volume::open(base.path(), Privileges::current()).unwrap();
    let dir = Arc::new(volume.open_dir(&RelPath::root()).unwrap());
    Run {
        base,
        dir,
        cancel: Cancel::new(),
    }
}

/// Works `batches` on one worker to its end; the completions it gave.
fn work(r: &Run, batches: Vec<Vec<Job>>) -> Vec<Completion> {
    let (completions, mut heard) = mpsc::unbounded_channel();
    let (workers, threads) = worker::spawn(
        1,
        Privileges::current(),
        false,
        completions,
        r.cancel.clone(),
    );
    for batch in batches {
        workers[0].queue.blocking_send(Batch::from(batch)).unwrap();
    }
    drop(workers);
    for thread in threads {
        thread.join().unwrap();
    }
    let mut all = Vec::new();
    while let Ok(done) = heard.try_recv() {
        all.extend(done);
    }
    all
}

fn start(r: &Run) -> Job {
    Job::StartRanged {
        index: 0,
        pending: pending(r.dir.clone(), b"big", SIZE),
        resumed: None,
    }
}

/// A start from a partial holding `held` bytes of `bytes` (whole ranges), as a session
/// that asked those ranges with `have` begins.
fn start_from_partial(r: &Run, bytes: &[u8], held: u64) -> Job {
    let mut temp = r.dir.create_partial(b"big").unwrap();
    temp.write_at(0, bytes).unwrap();
    Job::StartRanged {
        index: 0,
        pending: pending(r.dir.clone(), b"big", SIZE),
        resumed: Some(Box::new(Resumed::held(temp, held))),
    }
}

/// The source's answer to a range asked with `have` equal to its own bytes.
fn same(content: &[u8], offset: u64) -> Job {
    let len = range_len(SIZE, offset);
    Job::Frame(Message::RangeEnd {
        index: 0,
        offset,
        len,
        same: true,
        cv: range_value(
            SIZE,
            offset,
            &content[offset as usize..(offset + len) as usize],
        ),
    })
}

fn partial_path(r: &Run) -> std::path::PathBuf {
    r.base
        .path()
        .join(std::ffi::OsStr::from_bytes(b".ferry.big.partial"))
}

#[test]
fn a_partial_s_ranges_the_source_holds_too_are_kept_and_the_rest_is_written() {
    let r = run();
    let content = content();
    // The partial holds ranges 0 and 1 as the source has them, then stale bytes.
    let mut partial = content[..2 * RANGE as usize].to_vec();
    partial.extend(vec![9u8; 1000]);
    let mut jobs = vec![start_from_partial(&r, &partial, 2 * RANGE)];
    jobs.push(same(&content, RANGE));
    for k in [2, 3, 4] {
        jobs.extend(range(&content, k * RANGE, None));
    }
    jobs.push(same(&content, 0));
    let done = work(&r, vec![jobs]);
    assert!(matches!(done[..], [Completion::Committed { index: 0, .. }]));
    let written = std::fs::read(r.base.path().join("big")).unwrap();
    assert!(written == content, "the file is not the source's");
    assert!(!partial_path(&r).exists());
}

#[test]
fn a_held_range_written_over_and_not_verified_is_not_kept() {
    let r = run();
    let content = content();
    let held = 3 * RANGE;
    let mut jobs = vec![start_from_partial(&r, &content[..held as usize], held)];
    // Range 0 answered same; range 2 comes anew (the source differs) and is cut short.
    jobs.push(same(&content, 0));
    jobs.push(Job::Frame(Message::Data {
        index: 0,
        offset: 2 * RANGE,
        bytes: bytes::Bytes::from(vec![5u8; 1000]),
    }));
    let done = work(&r, vec![jobs]);
    assert!(done.is_empty(), "nothing finished");
    let kept = std::fs::read(partial_path(&r)).expect("the partial is kept");
    assert_eq!(
        kept.len() as u64,
        2 * RANGE,
        "held ranges up to the one written over"
    );
    assert!(kept[..] == content[..2 * RANGE as usize]);
}

#[test]
fn ranges_in_any_order_and_with_holes_make_the_file() {
    let r = run();
    let content = content();
    let mut jobs = vec![start(&r)];
    for k in [4, 1, 0, 3, 2] {
        jobs.extend(range(&content, k * RANGE, None));
    }
    let done = work(&r, vec![jobs]);
    assert!(
        matches!(
            done[..],
            [Completion::Committed {
                index: 0,
                size: SIZE,
                ..
            }]
        ),
        "one commit, nothing else"
    );
    let written = std::fs::read(r.base.path().join("big")).unwrap();
    assert!(written == content, "the file is not the source's");
}

#[test]
fn a_range_whose_value_differs_is_reported_and_verifies_when_sent_again() {
    let r = run();
    let content = content();
    let mut first = vec![start(&r)];
    first.extend(range(&content, 0, None));
    first.extend(range(&content, 2 * RANGE, Some([1; 32])));
    first.extend(range(&content, RANGE, None));
    let mut second = range(&content, 3 * RANGE, None);
    second.extend(range(&content, 4 * RANGE, None));
    second.extend(range(&content, 2 * RANGE, None));
    let done = work(&r, vec![first, second]);
    match &done[..] {
        [Completion::RangeMismatch {
            index: 0,
            offset,
            size: SIZE,
            ..
        }, Completion::Committed { index: 0, .. }] => assert_eq!(*offset, 2 * RANGE),
        _ => panic!("expected the mismatch of range 2, then the commit"),
    }
    let written = std::fs::read(r.base.path().join("big")).unwrap();
    assert!(written == content, "the file is not the source's");
}

#[test]
fn a_stale_range_rewritten_as_a_hole_reads_as_zeros() {
    // Range 1 first comes (wrongly) as data, then again as the hole it is.
    let r = run();
    let content = content();
    let mut jobs = vec![start(&r)];
    let mut wrong = content.clone();
    wrong[RANGE as usize..2 * RANGE as usize].fill(7);
    jobs.extend(range(&wrong, RANGE, Some([2; 32])));
    for k in [0, 1, 2, 3, 4] {
        jobs.extend(range(&content, k * RANGE, None));
    }
    let done = work(&r, vec![jobs]);
    assert!(matches!(
        done[..],
        [
            Completion::RangeMismatch { .. },
            Completion::Committed { .. }
        ]
    ));
    let written = std::fs::read(r.base.path().join("big")).unwrap();
    assert!(written == content, "stale bytes of the first ask remain");
}

#[test]
fn a_session_ending_in_the_middle_keeps_only_the_verified_prefix() {
    let r = run();
    let content = content();
    let mut jobs = vec![start(&r)];
    // Ranges 0 and 2 verify, range 1 comes half; range 3 fails to verify.
    jobs.extend(range(&content, 0, None));
    jobs.extend(range(&content, 2 * RANGE, None));
    jobs.extend(range(&content, 3 * RANGE, Some([3; 32])));
    jobs.push(Job::Frame(Message::Data {
        index: 0,
        offset: RANGE,
        bytes: bytes::Bytes::from(vec![0u8; 1000]),
    }));
    let done = work(&r, vec![jobs]);
    assert!(matches!(done[..], [Completion::RangeMismatch { .. }]));
    let partial = r
        .base
        .path()
        .join(std::ffi::OsStr::from_bytes(b".ferry.big.partial"));
    let kept = std::fs::read(&partial).expect("the partial is kept");
    assert_eq!(kept.len() as u64, RANGE, "cut back to the verified prefix");
    assert!(kept[..] == content[..RANGE as usize]);
    assert!(!r.base.path().join("big").exists());
}

/// A frame the session core would never pass (a range past the file's end) makes the
/// worker panic; the panic must reach the session as a fatal error, not leave it waiting.
#[test]
fn a_worker_that_panics_says_so_and_stops() {
    let r = run();
    let past_the_end = Job::Frame(Message::Hole {
        index: 0,
        offset: 5 * RANGE,
        len: 1,
    });
    let done = work(&r, vec![vec![start(&r), past_the_end]]);
    match &done[..] {
        [Completion::Failed { fatal: Some(e), .. }] => {
            assert!(e.to_string().contains("internal error"), "{e}")
        }
        _ => panic!("expected one fatal failure"),
    }
}

/// The source gave up on a file in ranges on two streams (two `FileFailed`, each an
/// abort here) while a third range still drains: its frames are dropped, not taken for
/// frames of a file nobody asked for.
#[test]
fn frames_of_a_draining_range_after_two_aborts_are_dropped() {
    let r = run();
    let content = content();
    let mut jobs = vec![start(&r)];
    jobs.push(Job::Abort { index: 0 });
    jobs.push(Job::Abort { index: 0 });
    jobs.extend(range(&content, 2 * RANGE, None));
    let done = work(&r, vec![jobs]);
    assert!(
        matches!(done[..], [Completion::Aborted { index: 0 }]),
        "one abort, and the draining range's frames dropped"
    );
}
