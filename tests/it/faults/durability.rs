//! What stays on disk: `--fsync` runs land exactly, and a cutover with `--delete`
//! clears the temp files a killed run left.

use super::*;

#[test]
fn fsync_on_push_and_on_serve_still_lands_the_tree() {
    // Durability itself cannot be observed without pulling the power; this checks that
    // the option reaches the target and that flushing every file keeps the result exact.
    let fx = Fixture::new();
    write(
        &fx.src.join("a.bin"),
        &random_bytes("fsync", 2 << 20),
        0o644,
    );
    write(&fx.src.join("d/b.txt"), b"b\n", 0o600);
    fx.push().arg("--fsync").run().assert_ok();
    let problems = diff(&Snapshot::take(&fx.src), &Snapshot::take(&fx.dst));
    assert!(problems.is_empty(), "{problems:#?}");

    let dst = fx.tmp.path().join("dst-fsync");
    fs::create_dir(&dst).unwrap();
    let server = crate::util::Server::builder(&fx.certs)
        .volume("v", &dst)
        .arg("--fsync")
        .start();
    crate::util::push(&fx.certs, &fx.src, &server.url("v"))
        .run()
        .assert_ok();
    let problems = diff(&Snapshot::take(&fx.src), &Snapshot::take(&dst));
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn a_cutover_with_delete_removes_temp_files_left_by_a_killed_run() {
    let fx = Fixture::new();
    write(&fx.src.join("a.txt"), b"a\n", 0o644);
    write(&fx.src.join("d/b.txt"), b"b\n", 0o644);
    // What a SIGKILL leaves: temp files under Ferry's temp names next to real data.
    write(&fx.dst.join(".ferry.a.txt.0badc0de"), b"torn", 0o600);
    write(&fx.dst.join("d/.ferry.b.txt.deadbeef"), b"torn", 0o600);
    write(&fx.dst.join(".ferry.notes"), b"a user's own file", 0o644);
    fx.push().run().assert_ok();
    assert!(
        fx.dst.join(".ferry.a.txt.0badc0de").exists(),
        "removed without --delete"
    );
    fx.push().delete().run().assert_ok();
    assert!(!fx.dst.join(".ferry.a.txt.0badc0de").exists());
    assert!(!fx.dst.join("d/.ferry.b.txt.deadbeef").exists());
    let problems = diff(&Snapshot::take(&fx.src), &Snapshot::take(&fx.dst));
    assert!(problems.is_empty(), "{problems:#?}");
}
