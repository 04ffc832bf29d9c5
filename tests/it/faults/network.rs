//! The network failing or misbehaving: a connection cut mid-file (retry and resume),
//! permanent refusals (never retried), idle and stalled connections (bounded), many
//! pushes at once.

use super::*;

#[test]
fn a_push_cut_mid_file_retries_and_resumes_from_the_verified_partial() {
    let fx = Fixture::new();
    write(
        &fx.src.join("big.bin"),
        &random_bytes("resume", 24 << 20),
        0o644,
    );
    write(&fx.src.join("small/a.txt"), b"a\n", 0o644);
    let server_addr: std::net::SocketAddr = fx
        .server
        .url("vol")
        .trim_start_matches("ferry://")
        .trim_end_matches("/vol")
        .parse()
        .unwrap();
    let relay = Relay::start(server_addr, 12 << 20);
    let url = format!("ferry://127.0.0.1:{}/vol", relay.addr.port());
    let out = crate::util::push(&fx.certs, &fx.src, &url)
        .arg("--retries")
        .arg("3")
        .json()
        .run();
    out.assert_ok();
    assert!(relay.connections() >= 2, "the relay never cut a connection");
    assert!(out.stat("retries") >= 1, "{}", out.stdout());
    assert!(
        out.stat("bytes_resumed") >= 1 << 20,
        "the cut file was not resumed from its partial: {}",
        out.stdout()
    );
    let problems = diff(&Snapshot::take(&fx.src), &Snapshot::take(&fx.dst));
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn permanent_failures_are_not_retried() {
    let fx = Fixture::new();
    write(&fx.src.join("a.txt"), b"a\n", 0o644);
    let url = fx.server.url("no-such-volume");
    let out = crate::util::push(&fx.certs, &fx.src, &url)
        .arg("--retries")
        .arg("5")
        .json()
        .run();
    out.assert_code(5);
    assert_eq!(out.stat("retries"), 0, "{}", out.stdout());
}

#[test]
fn idle_connections_cannot_exhaust_the_target() {
    let fx = Fixture::new();
    write(&fx.src.join("a.txt"), b"a\n", 0o644);
    let fds = || {
        fs::read_dir(format!("/proc/{}/fd", fx.server.pid()))
            .unwrap()
            .count()
    };
    let before = fds();
    // Far more silent connections than the target admits into its handshake.
    let idle: Vec<_> = (0..300)
        .filter_map(|_| std::net::TcpStream::connect(&fx.server.addr).ok())
        .collect();
    // Let the target accept (and, past its cap, close) them all: wait until the
    // number of descriptors it holds stops changing. This is readiness, not a timing
    // assertion; the bound below is on the count.
    let mut held = fds();
    for _ in 0..50 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        let now = fds();
        if now == held {
            break;
        }
        held = now;
    }
    let held = held.saturating_sub(before);
    assert_eq!(idle.len(), 300, "the kernel refused some test connections");
    assert!(
        held <= 64 + 8,
        "the target holds {held} descriptors for 300 idle peers"
    );
    drop(idle);
    // Once they are gone the target serves pushes as before.
    fx.push().run().assert_ok();
}

#[test]
fn a_connection_that_stalls_mid_handshake_is_closed_and_the_target_serves_on() {
    let fx = Fixture::new();
    write(&fx.src.join("a.txt"), b"a\n", 0o644);
    let mut stalled = std::net::TcpStream::connect(&fx.server.addr).unwrap();
    // The first bytes of a TLS record header, then nothing.
    stalled.write_all(&[0x16, 0x03, 0x01]).unwrap();
    // The target closes it at its handshake deadline (15 s); the guard is far longer.
    stalled
        .set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    let mut buf = [0u8; 64];
    let closed = match std::io::Read::read(&mut stalled, &mut buf) {
        Ok(0) => true,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        Ok(_) => false,
    };
    assert!(closed, "the stalled connection was kept open");
    fx.push().run().assert_ok();
}

#[test]
fn concurrent_pushes_to_different_volumes_are_all_served() {
    let tmp = tempfile::TempDir::new().unwrap();
    let certs = crate::util::Certs::new();
    let mut builder = crate::util::Server::builder(&certs);
    let mut pairs = Vec::new();
    for i in 0..4 {
        let src = tmp.path().join(format!("src{i}"));
        let dst = tmp.path().join(format!("dst{i}"));
        write(
            &src.join("big.bin"),
            &random_bytes(&format!("vol{i}"), 4 << 20),
            0o644,
        );
        for k in 0..50 {
            write(
                &src.join(format!("d{}/f{k}", k % 5)),
                format!("{i}/{k}\n").as_bytes(),
                0o644,
            );
        }
        fs::create_dir(&dst).unwrap();
        builder = builder.volume(&format!("v{i}"), &dst);
        pairs.push((src, dst));
    }
    let server = builder.start();
    std::thread::scope(|scope| {
        let runs: Vec<_> = pairs
            .iter()
            .enumerate()
            .map(|(i, (src, _))| {
                let (certs, url) = (&certs, server.url(&format!("v{i}")));
                scope.spawn(move || crate::util::push(certs, src, &url).run())
            })
            .collect();
        for run in runs {
            run.join().unwrap().assert_ok();
        }
    });
    for (src, dst) in &pairs {
        let problems = diff(&Snapshot::take(src), &Snapshot::take(dst));
        assert!(problems.is_empty(), "{problems:#?}");
    }
}
