//! A small scattered change to a large file travels as a delta, and the target rebuilds
//! the file from its basis right the first time.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;

use crate::files::{random_bytes, set_mtime, write};
use crate::snapshot::assert_trees_equal;
use crate::util::Fixture;

const SIZE: usize = 32 << 20;
const PATCHES: usize = 20;
const PATCH: usize = 16 << 10;

#[test]
fn scattered_one_percent_change_sends_under_ten_percent_literal() {
    let fx = Fixture::new();
    let file = fx.src.join("disk.img");
    write(&file, &random_bytes("delta base", SIZE), 0o644);
    set_mtime(&file, 1_700_000_000, 1);
    fx.push().run().assert_ok();
    assert_trees_equal(&fx.src, &fx.dst);

    // ~1% of the file in 16 KiB patches at pseudo-random offsets; same size, new mtime.
    let offsets = random_bytes("delta offsets", PATCHES * 8);
    let f = OpenOptions::new().write(true).open(&file).unwrap();
    for (i, o) in offsets.chunks(8).enumerate() {
        let offset = u64::from_le_bytes(o.try_into().unwrap()) % (SIZE - PATCH) as u64;
        f.write_all_at(&random_bytes(&format!("patch {i}"), PATCH), offset)
            .unwrap();
    }
    drop(f);
    set_mtime(&file, 1_700_000_100, 2);

    let out = fx.push().json().run();
    out.assert_ok();
    let s = out.summary();
    assert_eq!(out.stat("files_transferred"), 1, "summary: {s}");
    // Rebuilt from the basis and verified the first time: a wrong rebuild would fail its
    // BLAKE3 and be re-sent whole, which the copy below would not notice.
    assert_eq!(out.stat("files_delta"), 1, "summary: {s}");
    assert_eq!(out.stat("files_resent"), 0, "summary: {s}");
    assert!(
        out.stat("bytes_matched") > SIZE as u64 * 9 / 10,
        "most of the file is copied from the basis; summary: {s}"
    );
    let literal = out.stat("bytes_literal");
    assert!(
        literal > 0,
        "changed data must travel as literals; summary: {s}"
    );
    assert!(
        literal < SIZE as u64 / 10,
        "bytes_literal {literal} is not under 10% of the {SIZE}-byte file; summary: {s}"
    );
    assert_trees_equal(&fx.src, &fx.dst);
}
