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

/// A dry run of the trees the real-run tests push: into an empty target, into one that
/// holds part of the tree (some directories, a file or a symlink where the source has a
/// directory, a directory where it has a file), with and without --delete. Each exits 0, as the real
/// run does (checked last), and changes nothing. A dry run used to open what was at the
/// path of a directory it would have put in place of a file, and exit 11.
#[test]
fn dry_run_of_the_real_run_trees_exits_0_and_changes_nothing() {
    use crate::fidelity::build_fidelity_tree;
    let fx = Fixture::new();
    build_fidelity_tree(&fx.src);
    write(&fx.src.join("deep/a/b/c/d/file.txt"), b"deep\n", 0o644);
    write(&fx.src.join("was_file/inner.txt"), b"inner\n", 0o644);
    write(&fx.src.join("was_dir"), b"now a file\n", 0o644);
    write(&fx.src.join("was_link/inner.txt"), b"inner\n", 0o644);
    // A hard link whose leader sits in a directory the run would put in place of a file
    // (listed after it, whether the walk goes depth or breadth first).
    fs::create_dir(fx.src.join("zz")).unwrap();
    fs::hard_link(
        fx.src.join("was_file/inner.txt"),
        fx.src.join("zz/inner_link"),
    )
    .unwrap();
    type Prepare = fn(&std::path::Path);
    let states: [(&str, Prepare); 2] = [
        ("an empty target", |_| {}),
        ("a partial target", |dst| {
            write(&dst.join("deep/a/stray.txt"), b"stray\n", 0o644);
            write(&dst.join("was_file"), b"a file here\n", 0o644);
            std::os::unix::fs::symlink("extra", dst.join("was_link")).unwrap();
            write(&dst.join("was_dir/x/y.txt"), b"y\n", 0o644);
            write(&dst.join("extra/z.txt"), b"z\n", 0o600);
        }),
    ];
    for (what, prepare) in states {
        for delete in [false, true] {
            let _ = fs::remove_dir_all(&fx.dst);
            fs::create_dir(&fx.dst).unwrap();
            prepare(&fx.dst);
            let before = Snapshot::take(&fx.dst);
            let mut push = fx.push().dry_run();
            if delete {
                push = push.delete();
            }
            let out = push.run();
            assert_eq!(
                out.output.code,
                Some(0),
                "dry run into {what} (delete: {delete})\n{}",
                out.output.dump()
            );
            assert_untouched(&before, &Snapshot::take(&fx.dst));
        }
    }
    // The real run from the partial target succeeds, so the dry run's 0 is the truth.
    fx.push().delete().run().assert_ok();
    crate::snapshot::assert_trees_equal(&fx.src, &fx.dst);
}
