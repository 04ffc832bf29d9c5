//! The apply workers in-process: resumes kept at a session's end, a basis that
//! changes under a delta, cancellation.

use std::os::unix::ffi::OsStrExt;

use ferry_proto::{Meta, Timestamp};
use ferry_tree::Volume;

use std::sync::Arc;

use ferry_proto::{Message, RelPath};
use ferry_tree::{Basis, Privileges};
use tokio::sync::mpsc;

use super::job::Batch;
use super::worker;
use super::*;
use crate::cancel::Cancel;
use crate::target::in_place::InPlace;
use crate::target::plan::Pending;

pub(super) fn pending(dir: Arc<ferry_tree::Dir>, name: &[u8], size: u64) -> Pending {
    Pending {
        dir,
        name: name.to_vec(),
        path: RelPath::new(name.to_vec(), &ferry_proto::Limits::default()).unwrap(),
        meta: Meta {
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: Timestamp { sec: 0, nsec: 0 },
            xattrs: Vec::new(),
        },
        size,
        partial_ok: true,
        in_place: InPlace::Never,
    }
}

/// A file rebuilt from a basis that another process truncates after the signature
/// (so after the Want) and before the delta: asked for again whole (a mismatch),
/// not failed and not a crash. Untouched, the same delta commits.
#[test]
fn a_basis_truncated_before_its_delta_makes_a_mismatch() {
    for truncate in [false, true] {
        let base = tempfile::tempdir().unwrap();
        let content: Vec<u8> = (0..256u32 << 10).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(base.path().join("f"), &content).unwrap();
        let volume = Volume::open(base.path(), Privileges::current()).unwrap();
        let dir = Arc::new(volume.open_dir(&RelPath::root()).unwrap());
        let cancel = Cancel::new();
        let file = std::fs::File::open(base.path().join("f")).unwrap();
        let basis = Basis::open(file, cancel.flag()).unwrap();
        let plan = ferry_delta::plan(content.len() as u64, usize::MAX).expect("a plan");
        let signature = ferry_delta::signature(&content, plan);
        let peer = ferry_delta::PeerSignature::parse(signature, usize::MAX).unwrap();
        let mut delta = Vec::new();
        ferry_delta::diff_segment(&peer.index(), &content, &mut delta).unwrap();
        let (completions, mut heard) = mpsc::unbounded_channel();
        let (workers, threads) =
            worker::spawn(1, Privileges::current(), false, completions, cancel);
        let size = content.len() as u64;
        let start = Job::Start {
            index: 0,
            pending: pending(dir, b"f", size),
            basis: Some(Arc::new(basis)),
            resumed: None,
        };
        if truncate {
            std::fs::File::options()
                .write(true)
                .open(base.path().join("f"))
                .unwrap()
                .set_len(1000)
                .unwrap();
        }
        let frames = [
            Message::Delta {
                index: 0,
                offset: 0,
                len: size,
                bytes: delta.into(),
            },
            Message::FileEnd {
                index: 0,
                size,
                hash: *blake3::hash(&content).as_bytes(),
            },
        ];
        let mut batch = vec![start];
        batch.extend(frames.into_iter().map(Job::Frame));
        workers[0].queue.blocking_send(Batch::from(batch)).unwrap();
        drop(workers);
        for thread in threads {
            thread.join().unwrap();
        }
        let done = heard.blocking_recv().expect("a completion");
        match (truncate, &done[..]) {
            (true, [Completion::Mismatch { index: 0, .. }]) => {}
            (false, [Completion::Committed { index: 0, .. }]) => {
                assert!(std::fs::read(base.path().join("f")).unwrap() == content);
            }
            _ => panic!("truncated: {truncate}: unexpected completion"),
        }
    }
}

/// A session that ends while a resumed partial is queued for a worker (or its hole
/// is being hashed) leaves that partial for the next session, not unlinked.
#[test]
fn a_partial_queued_when_the_session_ends_is_kept() {
    let base = tempfile::tempdir().unwrap();
    let volume = Volume::open(base.path(), Privileges::current()).unwrap();
    let dir = Arc::new(volume.open_dir(&RelPath::root()).unwrap());
    let mut temp = dir.create_partial(b"big").unwrap();
    temp.write_at(0, &[1u8; 4096]).unwrap();
    let partial = base
        .path()
        .join(std::ffi::OsStr::from_bytes(temp.temp_name()));
    let pending = pending(dir, b"big", 1 << 40);
    let resumed = Resumed::new(temp, 4096, blake3::Hasher::new());
    let cancel = Cancel::new();
    let (completions, _heard) = mpsc::unbounded_channel();
    let (workers, threads) =
        worker::spawn(1, Privileges::current(), false, completions, cancel.clone());
    let start = Job::Start {
        index: 0,
        pending,
        basis: None,
        resumed: Some(Box::new(resumed)),
    };
    let hole = Job::Frame(Message::Hole {
        index: 0,
        offset: 4096,
        len: (1 << 40) - 4096,
    });
    workers[0]
        .queue
        .blocking_send(Batch::from(vec![start, hole]))
        .unwrap();
    cancel.cancel();
    drop(workers);
    for thread in threads {
        thread.join().unwrap();
    }
    assert!(partial.exists(), "the partial {partial:?} was removed");
}
