//! Pushing a tree: fidelity, the no-change pass, the summary, and `--checksum`.

use std::fs;

use crate::fidelity::build_fidelity_tree;
use crate::files::{mtime, random_bytes, read, set_mtime, write};
use crate::snapshot::assert_trees_equal;
use crate::util::Fixture;

#[test]
fn fidelity_push_reproduces_every_entry_and_attribute() {
    let fx = Fixture::new();
    build_fidelity_tree(&fx.src);
    fx.push().run().assert_ok();
    assert_trees_equal(&fx.src, &fx.dst);
}

#[test]
fn second_push_of_unchanged_tree_transfers_nothing() {
    let fx = Fixture::new();
    build_fidelity_tree(&fx.src);
    fx.push().run().assert_ok();
    let second = fx.push().json().run();
    second.assert_ok();
    assert!(
        second.stat("files_total") > 0,
        "summary counts no files: {}",
        second.summary()
    );
    assert_eq!(
        second.stat("files_transferred"),
        0,
        "summary: {}",
        second.summary()
    );
    assert_eq!(
        second.stat("bytes_literal"),
        0,
        "summary: {}",
        second.summary()
    );
    assert_eq!(
        second.stat("bytes_transferred"),
        0,
        "summary: {}",
        second.summary()
    );
    assert_trees_equal(&fx.src, &fx.dst);
}

#[test]
fn summary_fields_are_present_and_consistent() {
    let fx = Fixture::new();
    let sizes = [1_000usize, 70_000, 300_000];
    write(&fx.src.join("a.bin"), &random_bytes("a", sizes[0]), 0o644);
    write(&fx.src.join("b.bin"), &random_bytes("b", sizes[1]), 0o644);
    write(
        &fx.src.join("sub/c.bin"),
        &random_bytes("c", sizes[2]),
        0o644,
    );
    std::os::unix::fs::symlink("a.bin", fx.src.join("link")).unwrap();
    fs::create_dir(fx.src.join("empty-dir")).unwrap();
    let total: u64 = sizes.iter().map(|&s| s as u64).sum();

    let out = fx.push().json().run();
    out.assert_ok();
    let s = out.summary();
    for field in [
        "files_total",
        "files_transferred",
        "files_deleted",
        "bytes_total",
        "bytes_transferred",
        "bytes_literal",
        "bytes_on_wire",
        "duration_s",
        "exit_code",
    ] {
        assert!(s.get(field).is_some(), "summary has no {field:?}: {s}");
    }
    assert_eq!(
        out.stat("files_total"),
        3,
        "regular files of the source; summary: {s}"
    );
    assert_eq!(
        out.stat("bytes_total"),
        total,
        "bytes of those files; summary: {s}"
    );
    assert_eq!(out.stat("files_transferred"), 3, "summary: {s}");
    assert_eq!(out.stat("bytes_transferred"), total, "summary: {s}");
    assert_eq!(
        out.stat("bytes_literal"),
        total,
        "random data with no basis goes as literals; summary: {s}"
    );
    assert!(
        out.stat("bytes_on_wire") >= total,
        "the wire carried less than the literal data; summary: {s}"
    );
    assert_eq!(out.stat("files_deleted"), 0, "summary: {s}");
    assert_eq!(out.stat("exit_code"), 0, "summary: {s}");
    let duration = s["duration_s"].as_f64().unwrap_or(-1.0);
    assert!(
        duration >= 0.0,
        "duration_s is not a non-negative number: {s}"
    );
    assert_trees_equal(&fx.src, &fx.dst);
}

#[test]
fn checksum_detects_same_size_same_mtime_change_that_quick_check_skips() {
    let fx = Fixture::new();
    let file = fx.src.join("data.txt");
    write(&file, b"version 1 of the data\n", 0o644);
    fx.push().run().assert_ok();
    let (sec, nsec) = mtime(&file);
    write(&file, b"version 2 of the data\n", 0o644);
    set_mtime(&file, sec, nsec);

    let quick = fx.push().json().run();
    quick.assert_ok();
    assert_eq!(
        quick.stat("files_transferred"),
        0,
        "quick check (size + mtime) should skip it; summary: {}",
        quick.summary()
    );
    assert_eq!(read(&fx.dst.join("data.txt")), b"version 1 of the data\n");

    let checked = fx.push().checksum().json().run();
    checked.assert_ok();
    assert_eq!(
        checked.stat("files_transferred"),
        1,
        "--checksum missed the change; summary: {}",
        checked.summary()
    );
    assert_trees_equal(&fx.src, &fx.dst);
}

/// A tree of more than three listing windows (`Limits::window` entries past the target's
/// last Ack), with hard links that wait for their leader across frames: the source
/// waits for Acks and the target, which refuses a listing past the window, takes it all.
#[test]
fn a_tree_many_listing_windows_long_is_pushed_whole() {
    let window = ferry_proto::Limits::default().window as usize;
    let fx = Fixture::new();
    let dirs = 50;
    let per_dir = (3 * window + 2_000) / dirs;
    for d in 0..dirs {
        let dir = fx.src.join(format!("d{d:02}"));
        fs::create_dir_all(&dir).unwrap();
        for f in 0..per_dir {
            let path = dir.join(format!("f{f:04}"));
            if f % 500 == 499 {
                fs::hard_link(dir.join("f0000"), &path).unwrap();
            } else {
                fs::write(&path, format!("{d}/{f}\n")).unwrap();
            }
        }
        std::os::unix::fs::symlink("f0000", dir.join("link")).unwrap();
    }
    fx.push().run().assert_ok();
    assert_trees_equal(&fx.src, &fx.dst);
}
