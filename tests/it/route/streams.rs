//! `--streams N`: a session over several connections, each its own CONNECT through the
//! same proxy and the same SNI through the same router, files spread over them. Streams
//! join lazily, once the target has asked for enough to spread (4 MiB or 512 files): the
//! trees here carry a bulk file for that ([`super::bulk`]). A join that a proxy refuses
//! leaves a one-stream success with a `stream` event; a joined stream cut mid-transfer
//! is a `lost` event and its files are asked again on stream 0; `--streams 1` is
//! protocol 5's wire (Hello bit 12 unset).

use serde_json::Value;

use super::bulk::{write_bulk, BULK_LEN, BWLIMIT};
use super::fake_proxy::{CuttingTunnel, OnceTunnel};
use super::topology::{Topology, ROUTE_A};
use crate::fidelity::build_fidelity_tree;
use crate::files::{random_bytes, write};
use crate::snapshot::assert_trees_equal;
use crate::util::{push, Certs, Server};

pub(super) fn stream_events(events: &[Value]) -> Vec<(u64, String)> {
    events
        .iter()
        .filter(|e| e["event"] == "stream")
        .map(|e| {
            (
                e["stream"].as_u64().expect("stream number"),
                e["state"].as_str().expect("state").to_owned(),
            )
        })
        .collect()
}

#[test]
fn four_streams_push_and_three_pull_through_proxy_and_router() {
    let t = Topology::new();
    build_fidelity_tree(&t.src);
    // Past the lazy threshold, and long enough that the fidelity files after it
    // (`big.bin`, `sparse.img`, the directories) wait for the joined streams.
    write_bulk(&t.src);

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
    assert_eq!(pushed.stat("streams"), 4, "{}", pushed.stderr());
    assert_eq!(
        stream_events(pushed.events()),
        [
            (1, "joined".into()),
            (2, "joined".into()),
            (3, "joined".into())
        ]
    );
    // Four CONNECTs through the proxy, all to the router...
    let router = format!("CONNECT 127.0.0.1:{} ", t.router.port());
    let requests = t.proxy.connect_requests();
    assert!(
        requests.len() == 4 && requests.iter().all(|r| r.starts_with(&router)),
        "expected 4 CONNECTs to the router, got {requests:?}\n{}",
        t.proxy.dump()
    );
    // ...which routed each by its SNI to the one server that runs the session (which
    // also checks that a joined stream's SNI is the opener's).
    let server = t.server_a();
    for stream in 1..=3 {
        server.wait_for_log(&format!("stream {stream} joined the session"));
    }
    assert!(server.log().contains("streams: true"), "{}", server.log());
    // Stream 0 carried the bulk, the joined streams at least `big.bin` (1 MiB).
    let carried: Vec<u64> = t
        .router
        .wait_for_connections(0, 4)
        .iter()
        .map(|c| c.up)
        .collect();
    let joined: u64 = carried.iter().filter(|&&b| b < BULK_LEN as u64).sum();
    assert!(
        carried.len() == 4 && joined >= 1 << 20,
        "the joined streams carried too little: {carried:?}"
    );

    let dest = t.src.parent().expect("tmp").join("pulled");
    let pulled = t
        .pull_via_proxy(&dest)
        .arg("--streams")
        .arg("3")
        .arg("--bwlimit")
        .arg(BWLIMIT)
        .json()
        .run();
    pulled.assert_ok();
    assert_trees_equal(&t.src, &dest);
    assert_eq!(pulled.stat("streams"), 3, "{}", pulled.stderr());
    assert_eq!(
        stream_events(pulled.events()),
        [(1, "joined".into()), (2, "joined".into())]
    );
    assert_eq!(t.proxy.connect_requests().len(), 4 + 3);
}

#[test]
fn a_proxy_that_refuses_a_second_connect_leaves_a_one_stream_success() {
    let certs = Certs::new();
    let tmp = tempfile::TempDir::new().expect("tempdir");
    let (src, vol) = (tmp.path().join("src"), tmp.path().join("vol"));
    std::fs::create_dir(&vol).expect("mkdir");
    build_fidelity_tree(&src);
    let server = Server::builder(&certs).volume("vol", &vol).start();
    let proxy = OnceTunnel::start();

    let run = push(&certs, &src, &server.url("vol"))
        .arg("--proxy")
        .arg(format!("http://127.0.0.1:{}", proxy.port))
        .arg("--streams")
        .arg("2")
        .json()
        .run();
    run.assert_ok();
    assert_trees_equal(&src, &vol);
    assert_eq!(run.stat("streams"), 1);
    assert_eq!(stream_events(run.events()), [(1, "failed".into())]);
    let event = run
        .events()
        .iter()
        .find(|e| e["event"] == "stream")
        .expect("a stream event");
    assert!(
        event["reason"].as_str().unwrap_or("").contains("403"),
        "the reason names the proxy's answer: {event}"
    );
    assert!(
        run.events().iter().any(|e| e["event"] == "warning"
            && e["message"]
                .as_str()
                .unwrap_or("")
                .contains("stream 1 did not join")),
        "a warning says so"
    );
    assert_eq!(proxy.requests().len(), 2);
}

#[test]
fn one_stream_leaves_the_streams_option_unset_and_auto_opens_no_stream_for_a_tiny_tree() {
    let certs = Certs::new();
    let tmp = tempfile::TempDir::new().expect("tempdir");
    let (src, vol) = (tmp.path().join("src"), tmp.path().join("vol"));
    std::fs::create_dir(&vol).expect("mkdir");
    std::fs::create_dir(&src).expect("mkdir");
    std::fs::write(src.join("a"), b"a").expect("write");
    let server = Server::builder(&certs).volume("vol", &vol).start();

    for streams in ["1", "auto"] {
        // A changed file each time, so that each session asks for one.
        std::fs::write(src.join("a"), streams).expect("write");
        let run = push(&certs, &src, &server.url("vol"))
            .arg("--streams")
            .arg(streams)
            .json()
            .run();
        run.assert_ok();
        assert_trees_equal(&src, &vol);
        assert_eq!(run.stat("files_transferred"), 1);
        assert_eq!(run.stat("streams"), 1, "--streams {streams}");
        assert!(
            stream_events(run.events()).is_empty(),
            "--streams {streams}: {:?}",
            run.events()
        );
    }
    let log = server.log();
    let sessions: Vec<bool> = log
        .lines()
        .filter(|l| l.contains("session started"))
        .map(|l| l.contains("streams: true"))
        .collect();
    assert_eq!(
        sessions,
        [false, true],
        "Hello bit 12: unset by --streams 1, set by auto\n{log}"
    );
    // One byte asked: under the threshold at which streams join.
    assert!(!log.contains("joined the session"), "{log}");
}

#[test]
fn a_joined_stream_cut_mid_session_is_a_lost_event_and_the_push_succeeds() {
    let certs = Certs::new();
    let tmp = tempfile::TempDir::new().expect("tempdir");
    let (src, vol) = (tmp.path().join("src"), tmp.path().join("vol"));
    std::fs::create_dir(&vol).expect("mkdir");
    std::fs::create_dir(&src).expect("mkdir");
    // Stream 0 carries the bulk; stream 1, once joined, is asked for `1-second` first
    // (then the small files), and is cut a quarter into it: its files must be asked
    // again on stream 0.
    write_bulk(&src);
    write(
        &src.join("1-second"),
        &random_bytes("cut second", 4 << 20),
        0o644,
    );
    for i in 0..40 {
        write(
            &src.join(format!("small/{i}")),
            &random_bytes(&format!("cut small {i}"), 2000 + i),
            0o644,
        );
    }
    let server = Server::builder(&certs).volume("vol", &vol).start();
    let proxy = CuttingTunnel::start(1 << 20);

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
        proxy.cut_after() >= 1 << 20,
        "the proxy did not cut the joined stream after 1 MiB of files (cut after {} bytes)",
        proxy.cut_after()
    );
    assert_eq!(
        stream_events(run.events()),
        [(1, "joined".into()), (1, "lost".into())]
    );
    assert_eq!(run.stat("streams"), 2, "the most at once");
    // What the cut stream carried went again over stream 0.
    assert!(
        run.stat("bytes_on_wire") >= run.stat("bytes_total") + proxy.cut_after() * 9 / 10,
        "bytes on the wire {} do not count both the {} bytes of files and the cut {}",
        run.stat("bytes_on_wire"),
        run.stat("bytes_total"),
        proxy.cut_after()
    );
    let log = server.wait_for_log("joined stream 1 lost");
    let line = log
        .lines()
        .find(|l| l.contains("joined stream 1 lost"))
        .expect("the warning's line");
    assert!(
        line.contains("session{peer="),
        "the warning names its session (the span of the connection that opened it): {line}"
    );
}
