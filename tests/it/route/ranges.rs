//! Large files in ranges (protocol 6.14), with real processes: a file of at least
//! `MIN_RANGED` (32 MiB) asked whole in a session that may have several streams goes in
//! 8 MiB ranges (`WantRange`) spread over the live streams by their credit (16 MiB each),
//! written into one temp copy and verified range by range.
//!
//! - pushed and pulled through the real proxy and router over four streams: the tree
//!   arrives identical and the router's byte log shows the large file crossed at least
//!   two connections with a range's worth (8 MiB) each;
//! - a joined stream cut in the middle of the file: its ranges are asked again, the push
//!   succeeds;
//! - stream 0 cut in the middle of the file with `--retries 0`: the session fails, and
//!   the partial `.ferry.NAME.partial` left on the target is the source's first bytes,
//!   a whole number of ranges long (only verified ranges from offset 0 stay); the next
//!   run, with the default streams or `--streams 1`, resumes from it.
//!
//! The large file of the first two, [`LARGE_LEN`], is five full ranges and a last one of
//! 123 bytes, with a 9 MiB hole over the whole third range (sent as `Hole`). `--bwlimit`
//! (shared by all streams) keeps the session long enough for the joins to land before
//! stream 0, which has the first two ranges asked on it, could take the rest too.
//!
//! The cut tests use a larger file without a hole, [`CUT_LEN`], over two streams: the
//! source sends stream 0's first two ranges side by side (its two senders), so neither
//! verifies much before stream 0 carried 16 MiB, and a cut before that leaves no partial
//! at all; stream 0 is cut 4 MiB into the range it is asked after them.

use std::fs::{self, File};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::fake_proxy::CuttingTunnel;
use super::streams::stream_events;
use super::topology::{Topology, ROUTE_A};
use crate::files::{random_bytes, write};
use crate::relay::Relay;
use crate::snapshot::assert_trees_equal;
use crate::util::{push, Certs, PushOutcome, Server};

/// The protocol's range, 8 MiB.
const RANGE: u64 = 8 << 20;
/// Five ranges and a few bytes.
const LARGE_LEN: u64 = 5 * RANGE + 123;
const LARGE_NAME: &str = "large.bin";
/// The hole: all of range 2 and 1 MiB of range 3.
const HOLE: std::ops::Range<u64> = (2 * RANGE)..(25 << 20);
/// 40 MiB at this rate take about 1.6 s: far longer than the joins (about 0.1 s).
const BWLIMIT: &str = "26M";

/// The large file's bytes outside the hole (the hole reads as zeros).
fn large_data() -> (Vec<u8>, Vec<u8>) {
    (
        random_bytes("ranges head", HOLE.start as usize),
        random_bytes("ranges tail", (LARGE_LEN - HOLE.end) as usize),
    )
}

/// Writes the large file into `root`: data, a hole made by `set_len` and a seek, data.
fn write_large(root: &Path) {
    let (head, tail) = large_data();
    let mut file = File::create(root.join(LARGE_NAME)).expect("create large file");
    file.write_all(&head).expect("write head");
    file.set_len(HOLE.end).expect("extend over the hole");
    file.seek(SeekFrom::Start(HOLE.end))
        .expect("seek past the hole");
    file.write_all(&tail).expect("write tail");
    drop(file);
    assert_eq!(
        fs::metadata(root.join(LARGE_NAME)).expect("stat").len(),
        LARGE_LEN
    );
}

/// The large file and a few small files (one listed before it, in the root).
fn build(root: &Path) {
    write(
        &root.join("a-first"),
        b"listed before the large file",
        0o644,
    );
    write_large(root);
    for i in 0..5 {
        write(
            &root.join(format!("small/{i}")),
            &random_bytes(&format!("ranges small {i}"), 1000 + 77 * i),
            0o640,
        );
    }
}

/// How many of `carried` (bytes per connection) are at least a range.
fn carrying_a_range(carried: &[u64]) -> usize {
    carried.iter().filter(|&&b| b >= RANGE).count()
}

#[test]
fn a_large_file_goes_in_ranges_over_four_streams_pushed_and_pulled_through_proxy_and_router() {
    let t = Topology::new();
    build(&t.src);

    let pushed = t
        .push_via_proxy(ROUTE_A)
        .arg("--streams")
        .arg("4")
        .arg("--bwlimit")
        .arg(BWLIMIT)
        .json()
        .run();
    pushed.assert_ok();
    assert_trees_equal(&t.src, &t.vol_a);
    let streams = pushed.stat("streams") as usize;
    assert!(streams >= 2, "{}", pushed.output.dump());
    let routed = t.router.wait_for_connections(0, streams);
    assert_eq!(routed.len(), streams, "{}", t.router.output());
    let up: Vec<u64> = routed.iter().map(|c| c.up).collect();
    assert!(
        carrying_a_range(&up) >= 2,
        "the large file should have gone over several streams, a range (8 MiB) or more \
         each; the {streams} connections carried {up:?}"
    );
    // The hole's range went as a `Hole`, not as 8 MiB of zeros.
    assert!(
        pushed.stat("bytes_on_wire") < LARGE_LEN - RANGE,
        "bytes on the wire: {} for a {LARGE_LEN}-byte file with a {}-byte hole",
        pushed.stat("bytes_on_wire"),
        HOLE.end - HOLE.start
    );

    let dest = t.src.parent().expect("tmp").join("pulled");
    let pulled = t
        .pull_via_proxy(&dest)
        .arg("--streams")
        .arg("4")
        .arg("--bwlimit")
        .arg(BWLIMIT)
        .json()
        .run();
    pulled.assert_ok();
    assert_trees_equal(&t.src, &dest);
    let pull_streams = pulled.stat("streams") as usize;
    assert!(pull_streams >= 2, "{}", pulled.output.dump());
    let routed = t.router.wait_for_connections(0, streams + pull_streams);
    assert_eq!(
        routed.len(),
        streams + pull_streams,
        "{}",
        t.router.output()
    );
    assert!(
        pulled.stat("bytes_on_wire") < LARGE_LEN - RANGE,
        "bytes on the wire of the pull: {}",
        pulled.stat("bytes_on_wire")
    );
    let down: Vec<u64> = routed[streams..].iter().map(|c| c.down).collect();
    assert!(
        carrying_a_range(&down) >= 2,
        "the pulled large file should have gone over several streams, a range (8 MiB) or \
         more each; the {pull_streams} connections carried {down:?}"
    );
}

#[test]
fn a_joined_stream_cut_in_the_middle_of_a_large_file_has_its_ranges_asked_again() {
    let certs = Certs::new();
    let tmp = tempfile::TempDir::new().expect("tempdir");
    let (src, vol) = (tmp.path().join("src"), tmp.path().join("vol"));
    fs::create_dir(&vol).expect("mkdir");
    fs::create_dir(&src).expect("mkdir");
    build(&src);
    let server = Server::builder(&certs).volume("vol", &vol).start();
    // Stream 0 is asked the first two ranges; stream 1, once joined, the next ones, and is
    // cut half a range into what it carries.
    let proxy = CuttingTunnel::start(RANGE / 2);

    let run = push(&certs, &src, &server.url("vol"))
        .arg("--proxy")
        .arg(format!("http://127.0.0.1:{}", proxy.port))
        .arg("--streams")
        .arg("2")
        .arg("--bwlimit")
        .arg(BWLIMIT)
        .json()
        .run();
    run.assert_ok();
    assert_trees_equal(&src, &vol);
    assert!(
        proxy.cut_after() >= RANGE / 2,
        "the proxy did not cut the joined stream after half a range (cut after {} bytes)",
        proxy.cut_after()
    );
    assert_eq!(
        stream_events(run.events()),
        [(1, "joined".into()), (1, "lost".into())]
    );
    assert_eq!(run.stat("file_errors"), 0, "{}", run.output.dump());
    // Asked again because their stream was lost, not because they did not verify.
    assert_eq!(run.stat("files_resent"), 0, "{}", run.output.dump());
    server.wait_for_log("joined stream 1 lost");
    assert!(
        !vol.join(format!(".ferry.{LARGE_NAME}.partial")).exists(),
        "a partial is left after the file was committed"
    );
}

/// The large file of the cut tests: nine ranges and a few bytes, no hole, so that over two
/// streams (32 MiB of credit, four ranges) stream 0 is asked more ranges once its first
/// two ended.
const CUT_LEN: usize = 9 * RANGE as usize + 123;

fn cut_large() -> Vec<u8> {
    random_bytes("ranges cut", CUT_LEN)
}

/// Where stream 0 is cut: past its first two ranges (asked at once, sent side by side by
/// the source's two senders of stream 0, so neither ends much before 16 MiB) and 4 MiB
/// into what it is asked next.
const CUT_AFTER: u64 = 2 * RANGE + (4 << 20);

/// Pushes `src` to `server` over two streams through a relay that cuts stream 0 (the
/// first connection) after [`CUT_AFTER`] bytes from the client, with `--retries 0`: the
/// run fails, and the partial left on the target must be a verified prefix of whole
/// ranges, at least the two that stream 0 carried before the cut. Returns its length.
fn cut_stream_zero(certs: &Certs, src: &Path, vol: &Path, server: &Server) -> u64 {
    let relay = Relay::start(server.addr.parse().expect("server address"), CUT_AFTER);
    let url = format!("ferry://127.0.0.1:{}/vol", relay.addr.port());
    let cut = push(certs, src, &url)
        .arg("--streams")
        .arg("2")
        .arg("--bwlimit")
        .arg("60M")
        .arg("--retries")
        .arg("0")
        .json()
        .run();
    cut.assert_code(10);
    assert!(
        relay.connections() >= 2,
        "no stream joined: {}",
        cut.output.dump()
    );
    // The target logs the failure once its workers kept the partials.
    server.wait_for_log("session failed");
    let partial: PathBuf = vol.join(format!(".ferry.{LARGE_NAME}.partial"));
    let kept = fs::read(&partial).unwrap_or_else(|e| {
        panic!(
            "no partial {partial:?} after stream 0 was cut after {CUT_AFTER} bytes: {e}\n{}",
            server.log()
        )
    });
    let len = kept.len() as u64;
    assert!(
        len >= 2 * RANGE && len.is_multiple_of(RANGE) && len < CUT_LEN as u64,
        "the partial is {len} bytes: not a whole number of ranges, at least two, short of \
         the file"
    );
    assert!(
        kept[..] == cut_large()[..len as usize],
        "the partial's {len} bytes are not the source's first bytes"
    );
    len
}

/// Runs [`cut_stream_zero`] on a tree of the cut tests' large file and a few small
/// files, then a push with `streams` (`None`: the default) that must resume from the
/// partial.
fn cut_then_resume(streams: Option<&str>) {
    let certs = Certs::new();
    let tmp = tempfile::TempDir::new().expect("tempdir");
    let (src, vol) = (tmp.path().join("src"), tmp.path().join("vol"));
    fs::create_dir(&vol).expect("mkdir");
    fs::create_dir(&src).expect("mkdir");
    write(&src.join(LARGE_NAME), &cut_large(), 0o644);
    for i in 0..3 {
        write(
            &src.join(format!("small/{i}")),
            &random_bytes(&format!("cut small {i}"), 500 + i),
            0o644,
        );
    }
    let server = Server::builder(&certs).volume("vol", &vol).start();

    let prefix = cut_stream_zero(&certs, &src, &vol, &server);

    let mut again = push(&certs, &src, &server.url("vol")).json();
    if let Some(streams) = streams {
        again = again.arg("--streams").arg(streams);
    }
    let again: PushOutcome = again.run();
    again.assert_ok();
    assert_trees_equal(&src, &vol);
    assert!(
        again.stat("bytes_resumed") >= prefix,
        "the second run resumed {} bytes of a {prefix}-byte verified partial\n{}",
        again.stat("bytes_resumed"),
        again.output.dump()
    );
    assert!(
        !vol.join(format!(".ferry.{LARGE_NAME}.partial")).exists(),
        "the partial is still there after the file completed"
    );
}

#[test]
fn stream_zero_cut_in_a_large_file_leaves_a_verified_prefix_resumed_with_default_streams() {
    cut_then_resume(None);
}

#[test]
fn stream_zero_cut_in_a_large_file_leaves_a_verified_prefix_resumed_with_one_stream() {
    cut_then_resume(Some("1"));
}
