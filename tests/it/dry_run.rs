//! `--dry-run` reports what a push would change and changes nothing.

use std::fs;

use crate::files::{chmod, write};
use crate::snapshot::{assert_untouched, Snapshot};
use crate::util::Fixture;

/// A target in sync with the source, then a source with one change of each kind:
/// `new.txt` created, `changed.txt` updated, `meta.txt` chmod-ed, `gone.txt` deleted.
fn synced_then_changed() -> Fixture {
    let fx = Fixture::new();
    write(&fx.src.join("keep.txt"), b"keep\n", 0o644);
    write(&fx.src.join("changed.txt"), b"old content\n", 0o644);
    write(&fx.src.join("meta.txt"), b"meta\n", 0o644);
    write(&fx.src.join("gone.txt"), b"gone\n", 0o644);
    fx.push().run().assert_ok();

    write(&fx.src.join("new.txt"), b"new\n", 0o644);
    write(&fx.src.join("changed.txt"), b"new content, longer\n", 0o644);
    chmod(&fx.src.join("meta.txt"), 0o600);
    fs::remove_file(fx.src.join("gone.txt")).unwrap();
    fx
}

#[test]
fn dry_run_json_lists_each_change_and_touches_nothing() {
    let fx = synced_then_changed();
    let before = Snapshot::take(&fx.dst);
    let out = fx.push().dry_run().delete().json().run();
    out.assert_ok();
    assert_untouched(&before, &Snapshot::take(&fx.dst));

    let changes = out.changes();
    for (path, change) in [
        ("new.txt", "created"),
        ("changed.txt", "updated"),
        ("meta.txt", "meta"),
        ("gone.txt", "deleted"),
    ] {
        assert!(
            changes.contains(&(path.to_string(), change.to_string(), "file".to_string())),
            "no {{\"path\":{path:?},\"change\":{change:?},\"kind\":\"file\"}} line; changes: {changes:?}\nstdout:\n{}",
            out.stdout()
        );
    }
    assert!(
        !changes.iter().any(|(p, _, _)| p == "keep.txt"),
        "unchanged keep.txt is listed as a change: {changes:?}"
    );
    assert_eq!(out.stat("exit_code"), 0);
}

#[test]
fn dry_run_text_lists_changes_and_touches_nothing() {
    let fx = synced_then_changed();
    let before = Snapshot::take(&fx.dst);
    let out = fx.push().dry_run().delete().run();
    out.assert_ok();
    assert_untouched(&before, &Snapshot::take(&fx.dst));
    for path in ["new.txt", "changed.txt", "meta.txt", "gone.txt"] {
        assert!(
            out.stdout().lines().any(|l| l.contains(path)),
            "dry-run output does not mention {path}:\n{}",
            out.stdout()
        );
    }
    assert!(
        !out.stdout().contains("keep.txt"),
        "unchanged keep.txt is listed:\n{}",
        out.stdout()
    );
}
