//! `--itemize-changes`: every change of a real run, in the same format as `--dry-run`.

use crate::files::{chmod, write};
use crate::util::Fixture;

#[test]
fn a_real_run_itemizes_what_it_creates_updates_and_deletes() {
    let fx = Fixture::new();
    write(&fx.src.join("keep.txt"), b"keep\n", 0o644);
    write(&fx.src.join("changed.txt"), b"old\n", 0o644);
    write(&fx.src.join("meta.txt"), b"meta\n", 0o644);
    write(&fx.src.join("gone.txt"), b"gone\n", 0o644);
    let first = fx.push().arg("--itemize-changes").run();
    first.assert_ok();
    assert!(
        first.stdout().lines().any(|l| l == "created  keep.txt"),
        "{}",
        first.stdout()
    );

    write(&fx.src.join("sub/new.txt"), b"new\n", 0o644);
    write(&fx.src.join("changed.txt"), b"new content\n", 0o644);
    chmod(&fx.src.join("meta.txt"), 0o600);
    std::fs::remove_file(fx.src.join("gone.txt")).unwrap();

    // The dry run and the real run list the same changes, in the same format.
    let dry = fx.push().dry_run().delete().run();
    dry.assert_ok();
    let real = fx.push().arg("-i").delete().run();
    real.assert_ok();
    let sorted = |out: &str| {
        let mut lines: Vec<String> = out.lines().map(str::to_string).collect();
        lines.sort();
        lines
    };
    let expected = [
        "created  sub/",
        "created  sub/new.txt",
        "deleted  gone.txt",
        "meta     meta.txt",
        "updated  changed.txt",
    ];
    assert_eq!(sorted(real.stdout()), expected, "{}", real.stdout());
    assert_eq!(sorted(dry.stdout()), expected, "{}", dry.stdout());
    assert!(real.stderr().contains("2 unchanged"), "{}", real.stderr());

    // Without the flag a real run lists deletions only, as before.
    write(&fx.src.join("another.txt"), b"x\n", 0o644);
    let plain = fx.push().run();
    plain.assert_ok();
    assert_eq!(plain.stdout(), "");

    // With --json, itemized changes are `change` events.
    write(&fx.src.join("third.txt"), b"x\n", 0o644);
    let json = fx.push().json().arg("--itemize-changes").run();
    json.assert_ok();
    assert_eq!(
        json.changes(),
        [("third.txt".into(), "created".into(), "file".into())]
    );
}

#[test]
fn a_rate_limited_push_delivers_everything_and_a_bad_rate_is_refused() {
    let fx = Fixture::new();
    write(&fx.src.join("a.bin"), &vec![1u8; 256 * 1024], 0o644);
    let out = fx.push().arg("--bwlimit").arg("64M").json().run();
    out.assert_ok();
    assert_eq!(out.stat("files_transferred"), 1);
    let bad = fx.push().arg("--bwlimit").arg("fast").run();
    bad.assert_code(1);
    assert!(bad.stderr().contains("--bwlimit"), "{}", bad.stderr());
}
