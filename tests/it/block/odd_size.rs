//! Content whose size is not a multiple of the 4 KiB block (a 10,000,001-byte image):
//! its short last block is compared, written and zeroed like the others, onto a device
//! (where a zero range that is not whole 512-byte sectors cannot be discarded and is
//! written as zeros) and onto a served image (resized to exactly that size).

use std::fs;

use super::{BlockFixture, MIB};
use crate::files::random_bytes;
use crate::util::{push, Server};

const SIZE: usize = 10_000_001;

/// Random content ending in a whole block of zeros and a short one (1,665 bytes).
fn odd_image() -> Vec<u8> {
    let mut content = random_bytes("odd size", SIZE);
    let short = SIZE % 4096;
    content[SIZE - short - 4096..].fill(0);
    content
}

#[test]
fn an_odd_sized_image_is_synced_whole_onto_a_device_and_onto_a_served_image() {
    let stale = random_bytes("stale", (16 * MIB) as usize);
    let fx = BlockFixture::new(16 * MIB, false, |t| t.write_at(&stale, 0));
    let content = odd_image();
    let image = fx.image("odd.img", &content);

    let first = push(&fx.certs, &image, &fx.url()).json().run();
    first.assert_ok();
    let device = fx.target.content();
    assert!(device[..SIZE] == content[..], "the device differs");
    assert!(device[SIZE..] == stale[SIZE..], "the device's tail changed");
    let block = &first.summary()["block"];
    assert_eq!(
        block["bytes_zeroed"],
        (SIZE % 4096 + 4096) as u64,
        "{block}"
    );
    assert_eq!(block["tail_kept"], 16 * MIB - SIZE as u64, "{block}");

    let second = push(&fx.certs, &image, &fx.url()).json().run();
    second.assert_ok();
    assert_eq!(second.stat("bytes_literal"), 0);
    assert_eq!(second.summary()["block"]["bytes_zeroed"], 0);

    // A served image, longer and different before, takes exactly the source's size.
    let served = fx.image("served.img", &random_bytes("served", (12 * MIB) as usize));
    let server = Server::builder(&fx.certs).volume("img", &served).start();
    push(&fx.certs, &image, &server.url("img"))
        .run()
        .assert_ok();
    let after = fs::read(&served).unwrap();
    assert_eq!(after.len(), SIZE);
    assert!(after == content, "the served image differs");
}
