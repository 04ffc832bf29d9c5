//! `--delete` removes what the source does not have; without it, extras stay untouched.

use std::fs;

use crate::files::{symlink, write};
use crate::snapshot::{assert_untouched, diff, Snapshot};
use crate::util::Fixture;

/// Source: `keep.txt`, `d/k.txt`. Target before the push: extras of every kind, at the top
/// and inside a directory the source also has. Returns the extras' paths.
fn source_and_extras(fx: &Fixture) -> Vec<&'static str> {
    write(&fx.src.join("keep.txt"), b"keep\n", 0o644);
    write(&fx.src.join("d/k.txt"), b"k\n", 0o644);
    write(&fx.dst.join("extra.txt"), b"extra\n", 0o644);
    write(&fx.dst.join("extra-dir/inner.txt"), b"inner\n", 0o644);
    write(&fx.dst.join("extra-dir/deeper/x"), b"x\n", 0o644);
    symlink(b"keep.txt", &fx.dst.join("extra-link"));
    write(&fx.dst.join("d/extra-in-d.txt"), b"in d\n", 0o644);
    vec!["extra.txt", "extra-dir", "extra-link", "d/extra-in-d.txt"]
}

#[test]
fn delete_removes_extra_files_dirs_and_symlinks() {
    let fx = Fixture::new();
    source_and_extras(&fx);
    let out = fx.push().delete().json().run();
    out.assert_ok();
    let problems = diff(&Snapshot::take(&fx.src), &Snapshot::take(&fx.dst));
    assert!(
        problems.is_empty(),
        "after --delete the target differs:\n  {}",
        problems.join("\n  ")
    );
    assert!(
        out.stat("files_deleted") >= 4,
        "four extras (two of them dirs with contents) were removed; summary: {}",
        out.summary()
    );
}

#[test]
fn without_delete_extras_stay_untouched() {
    let fx = Fixture::new();
    let extras = source_and_extras(&fx);
    let before = Snapshot::take(&fx.dst);
    fx.push().run().assert_ok();
    let after = Snapshot::take(&fx.dst);

    // The source's entries arrived exactly ...
    let mut copied = after.clone();
    for e in &extras {
        copied = copied.without(e.as_bytes());
    }
    let problems = diff(&Snapshot::take(&fx.src), &copied);
    assert!(
        problems.is_empty(),
        "the source's entries differ at the target:\n  {}",
        problems.join("\n  ")
    );

    // ... and every extra is still there, unchanged (same inode, same ctime).
    let only_extras = |s: &Snapshot| {
        let mut s = s.clone();
        s.nodes.retain(|k, _| {
            extras
                .iter()
                .any(|e| k == e.as_bytes() || k.starts_with(format!("{e}/").as_bytes()))
        });
        s
    };
    assert!(
        fs::symlink_metadata(fx.dst.join("extra-link")).is_ok(),
        "extra-link was removed"
    );
    assert_untouched(&only_extras(&before), &only_extras(&after));
}
