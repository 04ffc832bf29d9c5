//! Ferry's own names on the target (`.ferry.NAME.partial`, temp names) are never trusted:
//! a file there is written into only if Ferry left it (one link, our owner, mode 0600); a
//! source's own file of that name is copied like any other; what a local user plants there
//! (a hard link out of the volume, a symlink) is bypassed, never written through. And a
//! file the target cannot write is one file's error, the same on every run.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::files::{chown, mkdir, random_bytes, read, symlink, write};
use crate::pods::{open_up, USER};
use crate::snapshot::assert_trees_equal;
use crate::util::{pull, Certs, Fixture, Server};

/// At least 1 MiB: received under its partial name, resumable.
const BIG: usize = 2 << 20;

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

#[test]
fn a_hard_link_planted_at_a_partial_name_is_never_written_through() {
    let fx = Fixture::new();
    // Outside the volume, on the same filesystem: a local user of the target links it in.
    let outside = fx.tmp.path().join("outside.txt");
    write(&outside, b"outside the volume\n", 0o600);
    write(&fx.src.join("big"), &random_bytes("v1", BIG), 0o644);
    fx.push().run().assert_ok();
    std::fs::hard_link(&outside, fx.dst.join(".ferry.big.partial")).unwrap();

    write(&fx.src.join("big"), &random_bytes("v2", BIG), 0o4755);
    fx.push().run().assert_ok();

    assert_eq!(read(&outside), b"outside the volume\n", "written through");
    assert_eq!(
        mode(&outside),
        0o600,
        "its mode was changed through the link"
    );
    assert_eq!(read(&fx.dst.join("big")), random_bytes("v2", BIG));
    assert_eq!(mode(&fx.dst.join("big")), 0o4755);
    // What the local user planted is theirs: left as it was.
    let planted = std::fs::symlink_metadata(fx.dst.join(".ferry.big.partial")).unwrap();
    assert_eq!(planted.ino(), std::fs::metadata(&outside).unwrap().ino());
}

#[test]
fn a_symlink_planted_at_a_partial_name_is_bypassed_on_every_run() {
    let fx = Fixture::new();
    let outside = fx.tmp.path().join("outside.txt");
    write(&outside, b"outside the volume\n", 0o600);
    for round in 0..3 {
        let planted = fx.dst.join(".ferry.big.partial");
        if std::fs::symlink_metadata(&planted).is_err() {
            symlink(outside.to_str().unwrap().as_bytes(), &planted);
        }
        let content = random_bytes(&format!("round {round}"), BIG);
        write(&fx.src.join("big"), &content, 0o644);
        let out = fx.push().run();
        out.assert_ok();
        assert_eq!(read(&fx.dst.join("big")), content, "round {round}");
        assert_eq!(read(&outside), b"outside the volume\n", "round {round}");
    }
}

/// A source holding names of Ferry's form: `.ferry.big.partial` (a hard link to `a`,
/// listed before `big`) and `.ferry.-big.partial` (listed after `-big`: `-` sorts
/// below `.`), beside the big files those would be the partials of.
fn tree_with_partial_names(src: &Path, version: &str) {
    write(&src.join("a"), b"the file a\n", 0o644);
    let linked = src.join(".ferry.big.partial");
    if std::fs::symlink_metadata(&linked).is_err() {
        std::fs::hard_link(src.join("a"), &linked).unwrap();
    }
    write(
        &src.join("big"),
        &random_bytes(&format!("big {version}"), BIG),
        0o644,
    );
    write(
        &src.join("-big"),
        &random_bytes(&format!("-big {version}"), BIG),
        0o600,
    );
    write(
        &src.join(".ferry.-big.partial"),
        b"mine, not ferry's\n",
        0o600,
    );
    write(
        &src.join("d/.ferry.x.partial"),
        &random_bytes(version, BIG),
        0o600,
    );
    write(
        &src.join("d/x"),
        &random_bytes(&format!("x {version}"), BIG),
        0o600,
    );
}

#[test]
fn a_source_file_named_like_a_partial_is_pushed_faithfully() {
    let fx = Fixture::new();
    tree_with_partial_names(&fx.src, "1");
    fx.push().run().assert_ok();
    assert_trees_equal(&fx.src, &fx.dst);
    // A changed stage pass, then a cutover with --delete.
    tree_with_partial_names(&fx.src, "2");
    fx.push().run().assert_ok();
    assert_trees_equal(&fx.src, &fx.dst);
    tree_with_partial_names(&fx.src, "3");
    fx.push().delete().run().assert_ok();
    assert_trees_equal(&fx.src, &fx.dst);
}

#[test]
fn a_served_file_named_like_a_partial_is_pulled_faithfully() {
    let tmp = tempfile::TempDir::new().unwrap();
    let served = tmp.path().join("served");
    let dest = tmp.path().join("dest");
    mkdir(&served, 0o755);
    let certs = Certs::new();
    let server = Server::builder(&certs)
        .read_only_volume("vol", &served)
        .start();
    for version in ["1", "2"] {
        tree_with_partial_names(&served, version);
        pull(&certs, &server.url("vol"), &dest)
            .delete()
            .run()
            .assert_ok();
        assert_trees_equal(&served, &dest);
    }
}

/// A target that cannot create some files (a plain-user `serve` facing a directory root
/// owned) transfers the rest and reports those, with the same exit code every time.
#[test]
fn files_the_target_cannot_create_are_each_a_file_error_on_every_run() {
    let tmp = tempfile::TempDir::new().unwrap();
    open_up(tmp.path());
    let src = tmp.path().join("src");
    let vol = tmp.path().join("vol");
    mkdir(&src, 0o755);
    mkdir(&vol, 0o755);
    chown(&vol, USER, USER);
    mkdir(&vol.join("locked"), 0o755); // root's: the plain user cannot create in it
    mkdir(&src.join("locked"), 0o755);
    write(&src.join("locked/small"), b"small\n", 0o644);
    // Large, so its frames are still coming when everything else is done: the target
    // must hear them out before it ends the session.
    write(
        &src.join("locked/big"),
        &random_bytes("big", 8 * BIG),
        0o644,
    );
    write(&src.join("locked/empty"), b"", 0o644);
    for i in 0..20 {
        write(
            &src.join(format!("ok-{i}")),
            format!("{i}\n").as_bytes(),
            0o644,
        );
    }
    write(&src.join("z-big"), &random_bytes("z", BIG), 0o644);
    let certs = Certs::new();
    let server = Server::builder(&certs)
        .volume("vol", &vol)
        .arg("--run-as")
        .arg(format!("{USER}:{USER}"))
        .start();
    for round in 0..3 {
        let out = crate::util::push(&certs, &src, &server.url("vol")).run();
        out.assert_code(23);
        for name in ["locked/small", "locked/big", "locked/empty"] {
            assert!(
                out.stderr().contains(name),
                "round {round}: {name} is not named\n{}",
                out.stderr()
            );
        }
        for i in 0..20 {
            assert_eq!(
                read(&vol.join(format!("ok-{i}"))),
                format!("{i}\n").as_bytes()
            );
        }
        assert_eq!(read(&vol.join("z-big")), random_bytes("z", BIG));
        assert!(std::fs::read_dir(vol.join("locked"))
            .unwrap()
            .next()
            .is_none());
    }
}

/// A local user renames a directory out of the volume while a push fills it: the held
/// directory fd follows it, and the target must notice and stop putting files there.
#[test]
fn a_directory_moved_out_of_the_volume_mid_push_stops_receiving() {
    const FILES: usize = 2000;
    let fx = Fixture::new();
    mkdir(&fx.src.join("d"), 0o755);
    for i in 0..FILES {
        write(&fx.src.join(format!("d/f{i:05}")), &[b'x'; 1024], 0o644);
    }
    let push = fx.push().arg("--bwlimit").arg("400K");
    let running = std::thread::spawn(move || push.run());
    let outside = fx.tmp.path().join("moved-out");
    let deadline = Instant::now() + Duration::from_secs(60);
    let landed = |dir: &Path| std::fs::read_dir(dir).map(|r| r.count()).unwrap_or(0);
    while landed(&fx.dst.join("d")) < 50 {
        assert!(Instant::now() < deadline, "the push never filled d/");
        std::thread::sleep(Duration::from_millis(5));
    }
    std::fs::rename(fx.dst.join("d"), &outside).unwrap();
    let at_move = landed(&outside);
    let out = running.join().expect("push thread");
    let after = landed(&outside);
    out.assert_code(23);
    assert!(
        out.stderr().contains("moved or replaced"),
        "the report does not say the directory moved\n{}",
        out.stderr()
    );
    // Files in flight when the move happened may still land (the check is rate-limited
    // per directory); most of the 2000 must not.
    assert!(
        after < at_move + 200 && after < FILES / 2,
        "{after} files landed outside the volume ({at_move} when it was moved)"
    );
}

/// A user's file at a partial name that the source no longer lists is still the user's
/// (copied there by an earlier push of a tree that held it; a target's own file of that
/// name is the same): a push without `--delete` keeps it. It is a regular file with one
/// link, owned by serve's user, mode 0600: everything `looks_like_ours` asks.
#[test]
fn a_users_file_at_a_partial_name_is_kept_without_delete() {
    let fx = Fixture::new();
    let mine = b"the user's own file, not ferry's\n";
    write(&fx.src.join(".ferry.big.partial"), mine, 0o600);
    write(&fx.src.join("big"), &random_bytes("v1", BIG), 0o644);
    fx.push().run().assert_ok();
    assert_eq!(read(&fx.dst.join(".ferry.big.partial")), mine);

    // The source moves its file elsewhere and changes big; no --delete: the target keeps
    // its copy, as it keeps any name the source no longer has.
    std::fs::remove_file(fx.src.join(".ferry.big.partial")).unwrap();
    write(&fx.src.join("big"), &random_bytes("v2", BIG), 0o644);
    fx.push().run().assert_ok();

    assert_eq!(read(&fx.dst.join("big")), random_bytes("v2", BIG));
    assert_eq!(
        std::fs::read(fx.dst.join(".ferry.big.partial"))
            .ok()
            .as_deref(),
        Some(&mine[..]),
        "the user's file was taken for a partial and consumed"
    );
}
