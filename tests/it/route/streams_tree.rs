//! A tree spread over four streams through the real proxy and router, pushed and pulled:
//! hard-link groups whose leaders go out on different streams, nested directories whose
//! times must come after their contents whichever stream carried them, a symlink, an
//! empty file and a bulk file; then a `--delete` pass after the source changed, and a
//! no-change pass that opens no joined stream (streams join lazily, once the target has
//! asked enough to spread).
//!
//! The bulk file ([`super::bulk`]) keeps stream 0 busy while the files after it wait for
//! the joined streams, so those carry real data, which the router's log of each
//! connection's bytes shows. Which joined stream takes the files depends on the order
//! the joins land in (one stream's credit holds 1024 small files, so the first may take
//! them all): the tests check what the joined streams carried together.
//!
//! Hard-link groups have their leader on stream 0 (the bulk file itself, and a small file
//! listed before it) or on a joined stream, and names in other directories.

use std::fs;
use std::path::{Path, PathBuf};

use super::bulk::{write_bulk, BULK_LEN, BULK_NAME, BWLIMIT};
use super::streams::stream_events;
use super::topology::{Topology, ROUTE_A};
use crate::fidelity::set_all_mtimes;
use crate::files::{random_bytes, symlink, write};
use crate::snapshot::assert_trees_equal;
use crate::util::{Push, PushOutcome};

/// Small files, which wait for the joined streams (the bulk alone passes the 4 MiB at
/// which streams join).
const SMALL_FILES: usize = 240;
const HARD_LINK_GROUPS: usize = 6;

/// Small file `i`'s contents.
fn small(i: usize) -> Vec<u8> {
    random_bytes(&format!("small {i}"), 1000 + i * 17)
}

/// The bytes of the small files, which wait for the joined streams.
fn small_bytes() -> u64 {
    (0..SMALL_FILES).map(|i| small(i).len() as u64).sum()
}

/// The first pass's tree, into the existing, empty directory `root`.
fn build(root: &Path) {
    // Listed first (the root's names, sorted): asked on stream 0 before the bulk.
    write(&root.join("0-a-first"), b"asked first", 0o644);
    write_bulk(root);
    write(&root.join("empty"), b"", 0o600);
    for i in 0..SMALL_FILES {
        let path = root.join(format!("dir-{}/sub-{}/f-{i}", i % 4, i % 5));
        write(&path, &small(i), 0o644);
    }
    // Groups led by files on stream 0...
    fs::create_dir(root.join("links")).expect("mkdir links");
    fs::hard_link(root.join(BULK_NAME), root.join("links/bulk-twin")).expect("link");
    fs::hard_link(root.join("0-a-first"), root.join("dir-2/first-twin")).expect("link");
    // ...and by files that wait for a joined stream.
    for g in 0..HARD_LINK_GROUPS {
        let leader = root.join(format!("links/group-{g}/a"));
        write(
            &leader,
            &random_bytes(&format!("group {g}"), 3000 + g),
            0o640,
        );
        fs::hard_link(&leader, root.join(format!("links/group-{g}/b"))).expect("link b");
        fs::hard_link(&leader, root.join(format!("dir-{}/hard-{g}", g % 4))).expect("link");
    }
    symlink(b"dir-0/sub-0/f-0", &root.join("link"));
    // Every entry its own time, directories after their contents.
    set_all_mtimes(root);
}

/// What changes before the `--delete` pass: a directory tree and a hard link's name
/// go, a group gains a name, a file changes, a new directory comes, the symlink points
/// elsewhere. Times are set again (each entry's time comes from its path, so unchanged
/// entries keep theirs; directories whose entries changed get their old time back).
fn change(root: &Path) {
    fs::remove_dir_all(root.join("dir-3")).expect("rm dir-3");
    fs::remove_file(root.join("links/group-0/b")).expect("rm group-0/b");
    fs::hard_link(root.join("links/group-1/a"), root.join("dir-0/hard-extra")).expect("link");
    write(
        &root.join("dir-1/sub-1/f-1"),
        &random_bytes("changed", 4321),
        0o644,
    );
    for i in 0..5 {
        let path = root.join(format!("new-dir/deeper/n-{i}"));
        write(&path, &random_bytes(&format!("new {i}"), 100 * i), 0o644);
    }
    fs::remove_file(root.join("link")).expect("rm link");
    symlink(b"links/group-2/a", &root.join("link"));
    set_all_mtimes(root);
}

/// Which way the files go over each connection.
#[derive(Clone, Copy)]
enum Way {
    Push,
    Pull,
}

/// Runs one pass and checks what every pass must show: success, the trees equal, one
/// CONNECT per stream (all to the router) and one routed connection per CONNECT.
/// Returns the run and the bytes each of its connections carried the files' way.
fn pass(t: &Topology, run: Push, way: Way, src: &Path, dst: &Path) -> (PushOutcome, Vec<u64>) {
    let (connects_before, routed_before) = (
        t.proxy.connect_requests().len(),
        t.router.wait_for_connections(0, 0).len(),
    );
    let out = run.arg("--bwlimit").arg(BWLIMIT).json().run();
    out.assert_ok();
    assert_trees_equal(src, dst);
    let streams = out.stat("streams") as usize;
    let connects = t.proxy.connect_requests();
    let router = format!("CONNECT 127.0.0.1:{} ", t.router.port());
    assert!(
        connects.len() == connects_before + streams
            && connects[connects_before..]
                .iter()
                .all(|r| r.starts_with(&router)),
        "expected {streams} CONNECTs to the router (the summary's streams), got {:?}\n{}",
        &connects[connects_before..],
        t.proxy.dump()
    );
    let routed = t.router.wait_for_connections(0, routed_before + streams);
    assert_eq!(
        routed.len(),
        routed_before + streams,
        "{}",
        t.router.output()
    );
    let carried = routed[routed_before..]
        .iter()
        .map(|c| match way {
            Way::Push => c.up,
            Way::Pull => c.down,
        })
        .collect();
    (out, carried)
}

/// The first pass ran over four streams: stream 0 carried the bulk, the joined streams
/// most of the small files.
#[track_caller]
fn assert_spread_over_four(out: &PushOutcome, carried: &[u64]) {
    assert_eq!(out.stat("streams"), 4, "{}", out.output.dump());
    assert_eq!(
        stream_events(out.events()),
        [
            (1, "joined".into()),
            (2, "joined".into()),
            (3, "joined".into())
        ]
    );
    let bulk = carried.iter().filter(|&&b| b >= BULK_LEN as u64).count();
    let joined: u64 = carried.iter().filter(|&&b| b < BULK_LEN as u64).sum();
    assert!(
        bulk == 1 && joined >= small_bytes() / 2,
        "stream 0 should carry the bulk and the joined streams most of the {} bytes of \
         small files; the four connections carried {carried:?}",
        small_bytes()
    );
}

/// The no-change pass: nothing sent, no joined stream opened (one CONNECT, checked by
/// `pass`), only the listing's bytes on the wire.
#[track_caller]
fn assert_nothing_to_do(out: &PushOutcome) {
    assert_eq!(out.stat("files_transferred"), 0, "{}", out.output.dump());
    assert_eq!(out.stat("streams"), 1);
    assert!(stream_events(out.events()).is_empty());
    let wire = out.stat("bytes_on_wire");
    assert!(
        wire < 256 << 10 && wire * 50 < out.stat("bytes_total"),
        "a no-change pass sent {wire} bytes"
    );
}

#[test]
fn a_tree_pushed_over_four_streams_then_deleted_from_and_unchanged() {
    let t = Topology::new();
    build(&t.src);
    let push = || t.push_via_proxy(ROUTE_A).arg("--streams").arg("4");

    let (first, carried) = pass(&t, push(), Way::Push, &t.src, &t.vol_a);
    assert_spread_over_four(&first, &carried);
    let server = t.server_a();
    for stream in 1..=3 {
        server.wait_for_log(&format!("stream {stream} joined the session"));
    }

    change(&t.src);
    let (second, _) = pass(&t, push().delete(), Way::Push, &t.src, &t.vol_a);
    assert!(second.stat("files_deleted") > 0, "{}", second.output.dump());

    let (third, _) = pass(&t, push().delete(), Way::Push, &t.src, &t.vol_a);
    assert_nothing_to_do(&third);
}

#[test]
fn a_tree_pulled_over_four_streams_then_deleted_from_and_unchanged() {
    let t = Topology::new();
    // The served volume is the source of a pull.
    build(&t.vol_a);
    let dest: PathBuf = t.src.parent().expect("tmp").join("pulled");
    fs::create_dir(&dest).expect("mkdir");
    let pull = || t.pull_via_proxy(&dest).arg("--streams").arg("4");

    let (first, carried) = pass(&t, pull(), Way::Pull, &t.vol_a, &dest);
    assert_spread_over_four(&first, &carried);

    change(&t.vol_a);
    let (second, _) = pass(&t, pull().delete(), Way::Pull, &t.vol_a, &dest);
    assert!(second.stat("files_deleted") > 0, "{}", second.output.dump());

    let (third, _) = pass(&t, pull().delete(), Way::Pull, &t.vol_a, &dest);
    assert_nothing_to_do(&third);
}
