//! A delta written over its own basis, in process: changed blocks, content moved toward
//! the start (copies from ahead), content moved toward the end (copies from an
//! overwritten range, refused), and the backward move of an overlapping copy.

use std::os::unix::fs::MetadataExt;
use std::sync::Arc;

use ferry_proto::RelPath;
use ferry_tree::{Privileges, Volume};

use super::*;

/// Bytes that repeat nowhere at block scale.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

struct Case {
    _base: tempfile::TempDir,
    path: std::path::PathBuf,
    file: TempFile,
    basis: Basis,
    ino: u64,
}

/// `old` at a file in a fresh volume, opened in place and as its own basis.
fn case(old: &[u8]) -> Case {
    let base = tempfile::tempdir().unwrap();
    let path = base.path().join("f");
    std::fs::write(&path, old).unwrap();
    let volume = Volume::open(base.path(), Privileges::current()).unwrap();
    let dir = Arc::new(volume.open_dir(&RelPath::root()).unwrap());
    let md = std::fs::metadata(&path).unwrap();
    let file = dir
        .open_in_place(b"f", md.dev(), md.ino())
        .unwrap()
        .expect("a plain file with one link, on a filesystem with user xattrs");
    let basis = Basis::open(std::fs::File::open(&path).unwrap(), Arc::default()).unwrap();
    Case {
        _base: base,
        path,
        file,
        basis,
        ino: md.ino(),
    }
}

/// The delta a source computes from `new` against `old`'s signature.
fn delta(old: &[u8], new: &[u8]) -> Vec<u8> {
    let plan = ferry_delta::plan(old.len() as u64, usize::MAX).expect("a plan");
    let signature = ferry_delta::signature(old, plan);
    let peer = ferry_delta::PeerSignature::parse(signature, usize::MAX).unwrap();
    let mut out = Vec::new();
    ferry_delta::diff_segment(&peer.index(), new, &mut out).unwrap();
    out
}

/// Writes `new` over `old` in place; the hash of what was written, or the error.
fn apply(c: &mut Case, old: &[u8], new: &[u8]) -> Result<[u8; 32], InPlaceError> {
    let bytes = delta(old, new);
    let checked = ferry_delta::check_segment(&c.basis, &bytes, new.len()).unwrap();
    let mut hasher = blake3::Hasher::new();
    let mut overwritten = Overwritten::default();
    let mut buf = Vec::new();
    write_delta_in_place(
        &mut c.file,
        &c.basis,
        &mut hasher,
        0,
        &checked,
        &mut overwritten,
        &mut buf,
        &Cancel::new(),
    )?;
    c.file.set_len(new.len() as u64).unwrap();
    Ok(*hasher.finalize().as_bytes())
}

#[test]
fn changed_blocks_are_written_in_place_and_the_file_verifies() {
    let old = noise(512 << 10, 1);
    let mut new = old.clone();
    for (i, at) in [0usize, 100 << 10, 300 << 10, (512 << 10) - 4096]
        .into_iter()
        .enumerate()
    {
        new[at..at + 4096].copy_from_slice(&noise(4096, 10 + i as u64));
    }
    let mut c = case(&old);
    let hash = apply(&mut c, &old, &new).unwrap_or_else(|_| panic!("served in place"));
    assert!(std::fs::read(&c.path).unwrap() == new, "content differs");
    assert_eq!(hash, *blake3::hash(&new).as_bytes());
    assert_eq!(std::fs::metadata(&c.path).unwrap().ino(), c.ino);
}

#[test]
fn content_moved_toward_the_start_is_copied_from_ahead() {
    let old = noise(512 << 10, 2);
    let mut new = old[64 << 10..].to_vec();
    new.extend_from_slice(&noise(10_000, 3));
    let mut c = case(&old);
    let hash = apply(&mut c, &old, &new).unwrap_or_else(|_| panic!("served in place"));
    assert!(std::fs::read(&c.path).unwrap() == new, "content differs");
    assert_eq!(hash, *blake3::hash(&new).as_bytes());
}

#[test]
fn a_copy_from_a_range_already_overwritten_is_refused() {
    let old = noise(512 << 10, 4);
    let mut new = noise(64 << 10, 5);
    new.extend_from_slice(&old);
    let mut c = case(&old);
    match apply(&mut c, &old, &new) {
        Err(InPlaceError::Overwritten { offset, at, .. }) => assert!(offset < at),
        Ok(_) => panic!("content moved toward the end cannot be served in place"),
        Err(_) => panic!("another error"),
    }
}

#[test]
fn an_overlapping_copy_from_behind_moves_backward() {
    let old = noise(300_000, 6);
    let mut c = case(&old);
    let mut buf = vec![0u8; 4096];
    move_backward(
        &mut c.file,
        &c.basis,
        0,
        1000,
        299_000,
        &mut buf,
        &Cancel::new(),
    )
    .unwrap_or_else(|_| panic!("moved"));
    let mut want = old.clone();
    want.copy_within(0..299_000, 1000);
    assert!(std::fs::read(&c.path).unwrap() == want, "not a memmove");
}
