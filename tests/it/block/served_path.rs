//! A served disk image swapped for a symbolic link after the server started (by a push to
//! another volume that holds its directory, or by a local user who may write there): the
//! server must neither write nor read through the link.

use ferry_proto::{Message, SessionOptions, PROTOCOL_VERSION};

use crate::raw::{RawClient, Recv};
use crate::util::{Certs, Server};

/// Sends a block `Hello` for `volume` (a pull if `pull`) and returns what the server
/// answered.
fn hello(server: &Server, certs: &Certs, volume: &str, pull: bool) -> (RawClient, Recv) {
    let mut raw = RawClient::connect_as_client(&server.addr, &certs.client_dir());
    raw.send(&Message::Hello {
        version: PROTOCOL_VERSION,
        volume: volume.as_bytes().to_vec(),
        options: SessionOptions {
            block: true,
            pull,
            ..SessionOptions::default()
        },
        filter: Default::default(),
    })
    .unwrap();
    let answer = raw.recv();
    (raw, answer)
}

fn assert_refused(answer: &Recv, what: &str) {
    match answer {
        Recv::Msg(Message::Refused { message, .. }) => {
            assert!(message.contains("symbolic link"), "{what}: {message}");
        }
        other => panic!("{what}: expected Refused, got {other:?}"),
    }
}

#[test]
fn a_served_image_swapped_for_a_symlink_is_neither_written_nor_read() {
    let tmp = tempfile::TempDir::new().unwrap();
    let dir = tmp.path().join("vm");
    std::fs::create_dir(&dir).unwrap();
    let image = dir.join("disk.img");
    std::fs::write(&image, vec![7u8; 8192]).unwrap();
    let secret = tmp.path().join("secret");
    std::fs::write(&secret, b"not for the peer").unwrap();
    let certs = Certs::new();
    let server = Server::builder(&certs).volume("img", &image).start();

    // The image replaced by a link to another file.
    std::fs::remove_file(&image).unwrap();
    std::os::unix::fs::symlink(&secret, &image).unwrap();
    let (mut raw, answer) = hello(&server, &certs, "img", false);
    if let Recv::Msg(Message::Welcome { .. }) = answer {
        // The old server took it: show what the session does to the link's target.
        raw.send(&Message::BlockBegin { size: 4096 }).unwrap();
        let _ = raw.recv();
    }
    assert!(
        std::fs::read(&secret).unwrap() == b"not for the peer",
        "the session resized or wrote the link's target"
    );
    assert_refused(&answer, "a push through a link");
    let (_raw, answer) = hello(&server, &certs, "img", true);
    assert_refused(&answer, "a pull through a link");

    // Its directory replaced by a link to another directory holding a disk.img.
    std::fs::remove_file(&image).unwrap();
    std::fs::remove_dir(&dir).unwrap();
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::write(elsewhere.join("disk.img"), b"elsewhere").unwrap();
    std::os::unix::fs::symlink(&elsewhere, &dir).unwrap();
    let (_raw, answer) = hello(&server, &certs, "img", false);
    assert_refused(&answer, "a push through a linked directory");
    assert!(std::fs::read(elsewhere.join("disk.img")).unwrap() == b"elsewhere");

    // Put back as a regular file, it is served again.
    std::fs::remove_file(&dir).unwrap();
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(&image, vec![7u8; 8192]).unwrap();
    let (_raw, answer) = hello(&server, &certs, "img", true);
    assert!(
        matches!(answer, Recv::Msg(Message::Welcome { .. })),
        "{answer:?}"
    );
}

#[test]
fn a_served_image_swapped_for_a_link_to_a_directory_takes_no_tree_session() {
    let tmp = tempfile::TempDir::new().unwrap();
    let image = tmp.path().join("disk.img");
    std::fs::write(&image, vec![7u8; 8192]).unwrap();
    let certs = Certs::new();
    let server = Server::builder(&certs).volume("img", &image).start();

    // The image replaced by a link to a directory: a tree push to the volume would
    // write into it.
    let elsewhere = tmp.path().join("etc");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::remove_file(&image).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &image).unwrap();
    let mut raw = RawClient::connect_as_client(&server.addr, &certs.client_dir());
    raw.send(&Message::Hello {
        version: PROTOCOL_VERSION,
        volume: b"img".to_vec(),
        options: SessionOptions::default(),
        filter: Default::default(),
    })
    .unwrap();
    match raw.recv() {
        Recv::Msg(Message::Refused { message, .. }) => {
            assert!(message.contains("block volume"), "{message}");
        }
        other => panic!("a tree push to a block volume was answered {other:?}"),
    }
    let (_raw, answer) = hello(&server, &certs, "img", false);
    assert_refused(&answer, "a block push through a link to a directory");
}

#[test]
fn a_served_image_is_opened_and_checked_after_run_as() {
    use std::os::unix::fs::PermissionsExt;
    let user = crate::pods::USER;
    let tmp = tempfile::TempDir::new().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let image = tmp.path().join("disk.img");
    std::fs::write(&image, vec![7u8; 8192]).unwrap();
    std::os::unix::fs::chown(&image, Some(user), Some(user)).unwrap();
    let source = tmp.path().join("source.img");
    std::fs::write(&source, vec![9u8; 3 * 4096 + 5]).unwrap();
    let certs = Certs::new();
    let server = Server::builder(&certs)
        .volume("img", &image)
        .arg("--run-as")
        .arg(format!("{user}:{user}"))
        .start();
    crate::util::push(&certs, &source, &server.url("img"))
        .run()
        .assert_ok();
    assert!(std::fs::read(&image).unwrap() == vec![9u8; 3 * 4096 + 5]);
}
