//! A file written in place by an apply worker, in process: a temp copy that finds no
//! room on a small tmpfs (mounted here: the tests run as root) gives way to an in-place
//! update, asked for again whole, that commits into the same inode and leaves no mark.

use std::os::unix::fs::MetadataExt;
use std::process::Command;

use ferry_proto::{Meta, Timestamp};
use ferry_tree::Volume;

use std::sync::Arc;

use ferry_proto::{Message, RelPath};
use ferry_tree::Privileges;
use tokio::sync::mpsc;

use super::job::Batch;
use super::worker;
use super::*;
use crate::cancel::Cancel;
use crate::target::in_place::{InPlace, Why};
use crate::target::plan::Pending;

/// A tmpfs of `size`, unmounted on drop.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mount tmpfs failed (the tests run as root)"
        );
        Tmpfs(dir)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.0.path()).status();
    }
}

/// Runs `frames` of file 0 from `pending` through a worker; its completion.
fn receive(pending: Pending, frames: &[Message]) -> Completion {
    let (completions, mut heard) = mpsc::unbounded_channel();
    let (workers, threads) =
        worker::spawn(1, Privileges::current(), false, completions, Cancel::new());
    let start = Job::Start {
        index: 0,
        pending,
        basis: None,
        resumed: None,
    };
    let mut batch = vec![start];
    batch.extend(frames.iter().cloned().map(Job::Frame));
    workers[0].queue.blocking_send(Batch::from(batch)).unwrap();
    drop(workers);
    for thread in threads {
        thread.join().unwrap();
    }
    let mut done = heard.blocking_recv().expect("a completion");
    assert_eq!(done.len(), 1);
    done.pop().unwrap()
}

#[test]
fn a_temp_copy_without_room_gives_way_to_an_update_in_place() {
    let vol = Tmpfs::mount("3m");
    let path = vol.0.path().join("disk.img");
    let size = 2usize << 20;
    std::fs::write(&path, vec![1u8; size]).unwrap();
    let new: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
    let md = std::fs::metadata(&path).unwrap();
    let volume = Volume::open(vol.0.path(), Privileges::current()).unwrap();
    let dir = Arc::new(volume.open_dir(&RelPath::root()).unwrap());
    let pending = Pending {
        dir,
        name: b"disk.img".to_vec(),
        path: RelPath::new(b"disk.img".to_vec(), &ferry_proto::Limits::default()).unwrap(),
        meta: Meta {
            mode: 0o644,
            uid: md.uid(),
            gid: md.gid(),
            mtime: Timestamp { sec: 5, nsec: 0 },
            xattrs: Vec::new(),
        },
        size: size as u64,
        partial_ok: true,
        in_place: InPlace::Allowed {
            dev: md.dev(),
            ino: md.ino(),
        },
    };
    let mut frames: Vec<Message> = new
        .chunks(256 << 10)
        .enumerate()
        .map(|(i, chunk)| Message::Data {
            index: 0,
            offset: (i * (256 << 10)) as u64,
            bytes: chunk.to_vec().into(),
        })
        .collect();
    frames.push(Message::FileEnd {
        index: 0,
        size: size as u64,
        hash: *blake3::hash(&new).as_bytes(),
    });

    let pending = match receive(pending, &frames) {
        Completion::Mismatch { pending, .. } => *pending,
        _ => panic!("the temp copy had no room: the file should be asked for again"),
    };
    assert!(
        matches!(
            pending.in_place,
            InPlace::Chosen {
                why: Why::NoRoom,
                ..
            }
        ),
        "{:?}",
        pending.in_place
    );
    assert_eq!(
        std::fs::read_dir(vol.0.path()).unwrap().count(),
        1,
        "a temp copy is left"
    );

    match receive(pending, &frames) {
        Completion::Committed { in_place, .. } => assert!(in_place),
        _ => panic!("the update in place did not commit"),
    }
    assert!(std::fs::read(&path).unwrap() == new, "content differs");
    assert_eq!(std::fs::metadata(&path).unwrap().ino(), md.ino());
    let mut value = [0u8; 64];
    assert!(
        rustix::fs::getxattr(&path, "user.ferry.inplace", &mut value).is_err(),
        "the mark is left on a finished file"
    );
}
