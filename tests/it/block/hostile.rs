//! A hostile source against a served block device, through the real server: what the
//! block target core refuses ends the session before a byte lands on the device.

use bytes::Bytes;
use ferry_proto::{ErrorClass, Message, SessionOptions, PROTOCOL_VERSION};

use super::{BlockFixture, MIB};
use crate::files::random_bytes;
use crate::raw::{RawClient, Recv};
use crate::util::{Certs, Server};

/// A raw block session on the fixture's volume, after `BlockBegin{size}`.
fn begin(fx: &BlockFixture, size: u64) -> RawClient {
    begin_on(&fx.server, &fx.certs, "blk", size)
}

/// A raw block session on `volume` of `server`, after `BlockBegin{size}`.
fn begin_on(server: &Server, certs: &Certs, volume: &str, size: u64) -> RawClient {
    let mut raw = RawClient::connect_as_client(&server.addr, &certs.client_dir());
    raw.send(&Message::Hello {
        version: PROTOCOL_VERSION,
        volume: volume.as_bytes().to_vec(),
        options: SessionOptions {
            block: true,
            ..SessionOptions::default()
        },
        filter: Default::default(),
    })
    .unwrap();
    assert!(matches!(raw.recv(), Recv::Msg(Message::Welcome { .. })));
    raw.send(&Message::BlockBegin { size }).unwrap();
    raw
}

/// The target's `Error` ending the session, skipping its `BlockSums`.
fn error(raw: &mut RawClient) -> (ErrorClass, String) {
    loop {
        match raw.recv() {
            Recv::Msg(Message::BlockSums { .. } | Message::Heartbeat) => {}
            Recv::Msg(Message::Error { class, message }) => return (class, message),
            other => panic!("expected the target's Error, got {other:?}"),
        }
    }
}

#[test]
fn writes_outside_the_asked_segment_are_refused_and_nothing_is_written() {
    let before = random_bytes("hostile", (8 * MIB) as usize);
    let fx = BlockFixture::new(8 * MIB, false, |t| t.write_at(&before, 0));
    for (what, message) in [
        (
            "a later segment",
            Message::BlockData {
                offset: 7 * MIB,
                bytes: Bytes::from(vec![0xee; 4096]),
            },
        ),
        (
            "past the device",
            Message::BlockZero {
                offset: 1 << 40,
                len: 4096,
            },
        ),
        (
            "unaligned",
            Message::BlockData {
                offset: 100,
                bytes: Bytes::from(vec![0xee; 4096]),
            },
        ),
    ] {
        let mut raw = begin(&fx, 8 * MIB);
        raw.send(&message).unwrap();
        let (class, text) = error(&mut raw);
        assert_eq!(class, ErrorClass::Protocol, "{what}: {text}");
        assert!(fx.target.content() == before, "{what} changed the device");
    }
    // And a source larger than the device is refused as no space, both sizes named.
    let mut raw = begin(&fx, 8 * MIB + 4096);
    let (class, text) = error(&mut raw);
    assert_eq!(class, ErrorClass::FileIo);
    assert!(text.contains(&(8 * MIB + 4096).to_string()), "{text}");
    assert!(
        fx.target.content() == before,
        "a refused source changed the device"
    );
}

#[test]
fn a_served_image_is_not_grown_past_the_file_system_that_holds_it() {
    let tmp = tempfile::TempDir::new().unwrap();
    let image = tmp.path().join("disk.img");
    std::fs::write(&image, vec![7u8; 8192]).unwrap();
    let certs = Certs::new();
    let server = Server::builder(&certs).volume("img", &image).start();
    // 8 TiB: more than any test machine's /tmp, yet a size ext4 would take.
    let huge = 1u64 << 43;
    let mut raw = begin_on(&server, &certs, "img", huge);
    let (class, text) = error(&mut raw);
    assert_eq!(class, ErrorClass::FileIo, "{text}");
    assert!(text.contains(&huge.to_string()), "{text}");
    assert_eq!(
        std::fs::read(&image).unwrap(),
        vec![7u8; 8192],
        "the refused source resized or wrote the image"
    );
}
