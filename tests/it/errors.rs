//! Failures map to the documented exit codes, with a message on stderr.

use std::net::TcpListener;

use crate::files::{random_bytes, write};
use crate::util::{push, Certs, Server, Tmpfs};

#[test]
fn no_space_at_the_target_exits_11_and_says_so() {
    let tmp = tempfile::TempDir::new().unwrap();
    let src = tmp.path().join("src");
    // No larger than the filesystem (a larger file is refused before it is sent, as a
    // file error), but larger than what is left of it.
    write(
        &src.join("big.bin"),
        &random_bytes("no space", 1 << 20),
        0o644,
    );
    let small = Tmpfs::mount(&tmp.path().join("dst"), "1m");
    write(
        &small.dir.join("filler.bin"),
        &random_bytes("filler", 512 << 10),
        0o644,
    );
    let certs = Certs::new();
    let server = Server::builder(&certs).volume("vol", &small.dir).start();
    let out = push(&certs, &src, &server.url("vol")).run();
    out.assert_code(11);
    assert!(
        out.stderr().to_lowercase().contains("space"),
        "stderr does not say the target is out of space:\n{}",
        out.stderr()
    );
    drop(server);
}

#[test]
fn url_with_another_scheme_is_a_usage_error() {
    let tmp = tempfile::TempDir::new().unwrap();
    let certs = Certs::new();
    let out = push(&certs, tmp.path(), "http://127.0.0.1:1/vol").run();
    out.assert_code(1);
    assert!(
        !out.stderr().trim().is_empty(),
        "no error message on stderr"
    );
}

#[test]
fn nothing_listening_is_a_socket_error_naming_the_address() {
    let tmp = tempfile::TempDir::new().unwrap();
    let certs = Certs::new();
    // A port that was just free: nothing listens there once the listener is dropped.
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let out = push(&certs, tmp.path(), &format!("ferry://{addr}/vol")).run();
    out.assert_code(10);
    assert!(
        out.stderr().contains(&addr.to_string()),
        "stderr does not name {addr}:\n{}",
        out.stderr()
    );
}
