//! `serve --metrics-listen`: Prometheus counters scraped while a session is held open
//! and after a push.

use std::io::{Read, Write};
use std::net::TcpStream;

use crate::files::{random_bytes, write};
use crate::raw::RawClient;
use crate::util::{push, Certs, Server};

/// A port that was free a moment ago.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn get(addr: &str, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: ferry\r\n\r\n").unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).unwrap();
    out
}

/// The value of the sample `name` (with its labels, e.g. `x{volume="vol"}`).
fn sample(body: &str, name: &str) -> u64 {
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no sample {name} in\n{body}"))
        .parse()
        .unwrap()
}

#[test]
fn metrics_count_sessions_bytes_files_and_failures() {
    let tmp = tempfile::TempDir::new().unwrap();
    let (src, dst, held) = (
        tmp.path().join("src"),
        tmp.path().join("dst"),
        tmp.path().join("held"),
    );
    for dir in [&src, &dst, &held] {
        std::fs::create_dir(dir).unwrap();
    }
    write(&src.join("a.txt"), b"a\n", 0o644);
    write(&src.join("b.bin"), &random_bytes("metrics", 1 << 20), 0o644);
    let certs = Certs::new();
    let metrics = format!("127.0.0.1:{}", free_port());
    let server = Server::builder(&certs)
        .volume("vol", &dst)
        .volume("held", &held)
        .arg("--metrics-listen")
        .arg(&metrics)
        .start();

    let before = get(&metrics, "/metrics");
    assert!(before.starts_with("HTTP/1.1 200 OK\r\n"), "{before}");
    assert!(
        before.contains("Content-Type: text/plain; version=0.0.4"),
        "{before}"
    );
    assert_eq!(sample(&before, "ferry_sessions_total"), 0);
    assert!(get(&metrics, "/").starts_with("HTTP/1.1 404"));

    // During: a raw client holds a session on `held`.
    let mut raw = RawClient::connect_as_client(&server.addr, &certs.client_dir());
    raw.start_session("held");
    let during = get(&metrics, "/metrics");
    assert_eq!(sample(&during, "ferry_sessions_active"), 1, "{during}");
    assert_eq!(
        sample(&during, "ferry_volume_sessions_total{volume=\"held\"}"),
        1
    );

    // A connection that is not TLS at all is a handshake failure.
    let mut junk = TcpStream::connect(&server.addr).unwrap();
    junk.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let _ = junk.read_to_end(&mut Vec::new());

    // After: a real push to `vol`, while `held` is still held.
    let out = push(&certs, &src, &server.url("vol")).json().run();
    out.assert_ok();
    let after = get(&metrics, "/metrics");
    assert_eq!(sample(&after, "ferry_sessions_total"), 2, "{after}");
    assert_eq!(sample(&after, "ferry_sessions_active"), 1, "{after}");
    assert_eq!(
        sample(&after, "ferry_volume_files_written_total{volume=\"vol\"}"),
        2
    );
    assert_eq!(
        sample(&after, "ferry_volume_written_bytes_total{volume=\"vol\"}"),
        (1 << 20) + 2
    );
    assert!(sample(&after, "ferry_volume_received_bytes_total{volume=\"vol\"}") >= (1 << 20) + 2);
    assert_eq!(
        sample(&after, "ferry_volume_received_bytes_total{volume=\"held\"}"),
        0
    );
    assert!(
        sample(&after, "ferry_handshake_failures_total{reason=\"tls\"}") >= 1,
        "{after}"
    );

    // The held session dies with its connection: an error of class socket, none active.
    drop(raw);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let last = loop {
        let now = get(&metrics, "/metrics");
        if sample(&now, "ferry_sessions_active") == 0 || std::time::Instant::now() > deadline {
            break now;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(sample(&last, "ferry_sessions_active"), 0, "{last}");
    assert_eq!(
        sample(&last, "ferry_session_errors_total{class=\"socket\"}"),
        1,
        "{last}"
    );
}
