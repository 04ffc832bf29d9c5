//! `--streams N`: a session over several connections, each its own CONNECT through the
//! same proxy and the same SNI through the same router (joined streams carry only
//! heartbeats yet: the files go over stream 0). A join that a proxy refuses leaves a
//! one-stream success with a `stream` event; `--streams 1` is today's wire (Hello bit 12
//! unset).

use serde_json::Value;

use super::fake_proxy::{CuttingTunnel, OnceTunnel};
use super::topology::{Topology, ROUTE_A};
use crate::fidelity::build_fidelity_tree;
use crate::snapshot::assert_trees_equal;
use crate::util::{pull, push, Certs, Server};

fn stream_events(events: &[Value]) -> Vec<(u64, String)> {
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

    let pushed = t
        .push_via_proxy(ROUTE_A)
        .arg("--streams")
        .arg("4")
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

    let dest = t.src.parent().expect("tmp").join("pulled");
    let pulled = pull(&t.certs, &t.router.url("vol"), &dest)
        .server_name(ROUTE_A)
        .arg("--proxy")
        .arg(t.proxy.url())
        .arg("--streams")
        .arg("3")
        .json()
        .run();
    pulled.assert_ok();
    assert_trees_equal(&t.src, &dest);
    assert_eq!(pulled.stat("streams"), 3, "{}", pulled.stderr());
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
fn one_stream_and_auto_leave_the_streams_option_unset() {
    let certs = Certs::new();
    let tmp = tempfile::TempDir::new().expect("tempdir");
    let (src, vol) = (tmp.path().join("src"), tmp.path().join("vol"));
    std::fs::create_dir(&vol).expect("mkdir");
    std::fs::create_dir(&src).expect("mkdir");
    std::fs::write(src.join("a"), b"a").expect("write");
    let server = Server::builder(&certs).volume("vol", &vol).start();

    for streams in ["1", "auto"] {
        let run = push(&certs, &src, &server.url("vol"))
            .arg("--streams")
            .arg(streams)
            .json()
            .run();
        run.assert_ok();
        assert_eq!(run.stat("streams"), 1);
        assert!(stream_events(run.events()).is_empty());
    }
    let log = server.log();
    assert_eq!(log.matches("session started").count(), 2, "{log}");
    assert!(
        log.contains("streams: false") && !log.contains("streams: true"),
        "Hello bit 12 set by --streams 1 or auto:\n{log}"
    );
}

#[test]
fn a_joined_stream_cut_mid_session_is_a_lost_event_and_the_push_succeeds() {
    let certs = Certs::new();
    let tmp = tempfile::TempDir::new().expect("tempdir");
    let (src, vol) = (tmp.path().join("src"), tmp.path().join("vol"));
    std::fs::create_dir(&vol).expect("mkdir");
    std::fs::create_dir(&src).expect("mkdir");
    crate::files::write(
        &src.join("big"),
        &crate::files::random_bytes("cut-joined", 2 << 20),
        0o644,
    );
    let server = Server::builder(&certs).volume("vol", &vol).start();
    // Stream 0 carries the file at 2 MiB/s; the joined stream is cut after its first
    // 256 KiB, well inside the session.
    let proxy = CuttingTunnel::start(256 * 1024);

    let run = push(&certs, &src, &server.url("vol"))
        .arg("--proxy")
        .arg(format!("http://127.0.0.1:{}", proxy.port))
        .arg("--streams")
        .arg("2")
        .arg("--bwlimit")
        .arg("2M")
        .json()
        .run();
    run.assert_ok();
    assert_trees_equal(&src, &vol);
    assert!(proxy.cut(), "the proxy never cut the joined stream");
    assert_eq!(
        stream_events(run.events()),
        [(1, "joined".into()), (1, "lost".into())]
    );
    assert_eq!(run.stat("streams"), 2, "the most at once");
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
