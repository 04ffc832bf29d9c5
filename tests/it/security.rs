//! Who may talk to a target, and what a target's own symlinks can make it do.

use std::fs;

use tempfile::TempDir;

use crate::files::{symlink, write};
use crate::raw::{tls_config, RawClient, Recv};
use crate::snapshot::{assert_trees_equal, assert_untouched, Snapshot};
use crate::util::{push, Certs, Fixture, Server};

#[test]
fn target_symlinks_out_of_the_volume_are_replaced_not_followed() {
    let fx = Fixture::new();
    let outside = TempDir::new().unwrap();
    write(
        &outside.path().join("dir/sentinel.txt"),
        b"must not change\n",
        0o644,
    );
    write(&outside.path().join("dir/a.txt"), b"outside a\n", 0o644);
    write(&outside.path().join("file"), b"outside file\n", 0o644);
    let out_dir = outside.path().join("dir");
    // The target's links: absolute to a dir, absolute to a file, relative out of the volume.
    symlink(out_dir.as_os_str().as_encoded_bytes(), &fx.dst.join("sub"));
    symlink(
        outside.path().join("file").as_os_str().as_encoded_bytes(),
        &fx.dst.join("f"),
    );
    symlink(b"../outside-rel", &fx.dst.join("rel"));
    fs::create_dir(fx.tmp.path().join("outside-rel")).unwrap();
    let before = Snapshot::take(outside.path());
    let before_rel = Snapshot::take(&fx.tmp.path().join("outside-rel"));

    // The source has real entries with the same names, with children.
    write(&fx.src.join("sub/a.txt"), b"source a\n", 0o600);
    write(&fx.src.join("sub/deep/b.txt"), b"source b\n", 0o600);
    write(&fx.src.join("f"), b"source f\n", 0o600);
    write(&fx.src.join("rel/c.txt"), b"source c\n", 0o600);
    fx.push().run().assert_ok();

    assert_untouched(&before, &Snapshot::take(outside.path()));
    assert_untouched(
        &before_rel,
        &Snapshot::take(&fx.tmp.path().join("outside-rel")),
    );
    assert_trees_equal(&fx.src, &fx.dst);
}

#[test]
fn client_trusting_another_ca_is_refused() {
    let fx = Fixture::new();
    write(&fx.src.join("f"), b"f\n", 0o644);
    let stranger = Certs::new();
    let out = fx.push().tls_dir(&stranger.client_dir()).run();
    out.assert_code(5);
    assert!(
        out.stderr().to_lowercase().contains("certificate"),
        "stderr does not say the certificate was the problem:\n{}",
        out.stderr()
    );
    assert!(
        fs::read_dir(&fx.dst).unwrap().next().is_none(),
        "the volume was written to"
    );
}

#[test]
fn wrong_server_name_is_refused_naming_the_name() {
    let fx = Fixture::new();
    write(&fx.src.join("f"), b"f\n", 0o644);
    let out = fx.push().server_name("other.example").run();
    out.assert_code(5);
    assert!(
        out.stderr().contains("other.example"),
        "stderr does not name the server name:\n{}",
        out.stderr()
    );
    assert!(
        fs::read_dir(&fx.dst).unwrap().next().is_none(),
        "the volume was written to"
    );
}

#[test]
fn matching_server_name_is_accepted() {
    let fx = Fixture::new();
    write(&fx.src.join("f"), b"f\n", 0o644);
    fx.push().server_name("localhost").run().assert_ok();
    assert_trees_equal(&fx.src, &fx.dst);
}

#[test]
fn tls_client_without_certificate_gets_no_session() {
    let fx = Fixture::new();
    let config = tls_config(&fx.certs.client_dir(), false);
    // With TLS 1.3 the client may finish its side of the handshake before the server has
    // rejected the missing certificate; then the rejection arrives on the first read.
    let Ok(mut client) = RawClient::connect(&fx.server.addr, config, "localhost") else {
        return;
    };
    let _ = client.send(&ferry_proto::Message::Hello {
        version: ferry_proto::PROTOCOL_VERSION,
        volume: b"vol".to_vec(),
        options: Default::default(),
        filter: Default::default(),
    });
    let seen = client.recv_until_end();
    assert!(
        !seen
            .iter()
            .any(|r| matches!(r, Recv::Msg(ferry_proto::Message::Welcome { .. }))),
        "a client without a certificate got a session: {seen:?}"
    );
    assert!(
        fs::read_dir(&fx.dst).unwrap().next().is_none(),
        "the volume was written to"
    );
}

#[test]
fn unknown_volume_is_refused_naming_it() {
    let fx = Fixture::new();
    write(&fx.src.join("f"), b"f\n", 0o644);
    let out = push(&fx.certs, &fx.src, &fx.server.url("no-such-volume")).run();
    out.assert_code(5);
    assert!(
        out.stderr().contains("no-such-volume"),
        "stderr does not name the volume:\n{}",
        out.stderr()
    );
}

#[test]
fn second_concurrent_push_to_the_same_volume_is_refused() {
    let fx = Fixture::new();
    write(&fx.src.join("f"), b"f\n", 0o644);
    // A first session holds the volume: Hello answered by Welcome, then silence.
    let mut holder = RawClient::connect_as_client(&fx.server.addr, &fx.certs.client_dir());
    holder.start_session("vol");

    let out = fx.push().run();
    out.assert_code(5);
    assert!(
        out.stderr().to_lowercase().contains("busy"),
        "stderr does not say the volume is busy:\n{}",
        out.stderr()
    );
    assert!(
        fs::read_dir(&fx.dst).unwrap().next().is_none(),
        "the volume was written to"
    );
    drop(holder);
}

#[test]
fn a_volume_serves_again_after_a_refused_session() {
    let tmp = TempDir::new().unwrap();
    let certs = Certs::new();
    let src = tmp.path().join("src");
    write(&src.join("f"), b"f\n", 0o644);
    fs::create_dir(tmp.path().join("dst")).unwrap();
    let server = Server::builder(&certs)
        .volume("vol", &tmp.path().join("dst"))
        .start();
    push(&certs, &src, &server.url("nope")).run().assert_code(5);
    push(&certs, &src, &server.url("vol")).run().assert_ok();
    assert_trees_equal(&src, &tmp.path().join("dst"));
}
