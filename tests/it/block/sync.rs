//! Push and pull of block devices and disk images, end to end on loop devices.

use std::fs;

use super::{BlockFixture, LoopDevice, MIB};
use crate::files::random_bytes;
use crate::util::{pull, push};

/// 16 MiB: random data with a 4 MiB run of zeros in the middle.
fn disk(seed: &str) -> Vec<u8> {
    let mut content = random_bytes(seed, (16 * MIB) as usize);
    content[(6 * MIB) as usize..(10 * MIB) as usize].fill(0);
    content
}

#[test]
fn device_to_device_copies_every_byte_and_a_second_push_sends_nothing() {
    let fx = BlockFixture::new(16 * MIB, false, |_| {});
    let source = LoopDevice::new(fx.tmp.path(), "source.img", 16 * MIB);
    let content = disk("device to device");
    source.write_at(&content, 0);

    let first = push(&fx.certs, &source.dev, &fx.url()).json().run();
    first.assert_ok();
    assert!(
        fx.target.content() == content,
        "the target differs from the source"
    );
    // The zero run was neither sent nor written: the target read zeros there already.
    assert_eq!(first.stat("bytes_literal"), 12 * MIB);
    assert_eq!(first.summary()["block"]["bytes_zeroed"], 0);

    let second = push(&fx.certs, &source.dev, &fx.url()).json().run();
    second.assert_ok();
    assert_eq!(second.stat("bytes_literal"), 0);
    assert!(
        second.stat("bytes_on_wire") < MIB / 4,
        "an unchanged device put {} bytes on the wire",
        second.stat("bytes_on_wire")
    );
}

#[test]
fn an_image_re_synced_after_a_one_percent_change_sends_only_the_changed_blocks() {
    let fx = BlockFixture::new(16 * MIB, false, |_| {});
    let mut content = disk("image to device");
    let image = fx.image("disk.img", &content);
    push(&fx.certs, &image, &fx.url()).run().assert_ok();

    // 1% of the 4 KiB blocks, scattered, each changed in one byte.
    let blocks = (16 * MIB / 4096) as usize;
    let changed: Vec<usize> = (0..blocks / 100).map(|i| i * 100 + 7).collect();
    for &block in &changed {
        content[block * 4096 + 123] ^= 0xff;
    }
    fs::write(&image, &content).unwrap();
    let resync = push(&fx.certs, &image, &fx.url()).json().run();
    resync.assert_ok();
    assert!(
        fx.target.content() == content,
        "the target differs after the re-sync"
    );
    let literal = resync.stat("bytes_literal");
    assert_eq!(literal, changed.len() as u64 * 4096, "literal bytes sent");
    // Hashes up and changed blocks down: far below the 16 MiB of the device.
    assert!(
        resync.stat("bytes_on_wire") < literal + MIB / 2,
        "{} bytes on the wire for {literal} changed",
        resync.stat("bytes_on_wire")
    );
}

#[test]
fn a_target_device_smaller_than_the_source_is_refused_and_left_untouched() {
    let before = random_bytes("small target", (8 * MIB) as usize);
    let fx = BlockFixture::new(8 * MIB, false, |t| t.write_at(&before, 0));
    let image = fx.image("big.img", &disk("too big"));
    let out = push(&fx.certs, &image, &fx.url()).run();
    out.assert_code(11);
    for size in [(16 * MIB).to_string(), (8 * MIB).to_string()] {
        assert!(
            out.stderr().contains(&size),
            "{size} missing from:\n{}",
            out.stderr()
        );
    }
    assert!(
        fx.target.content() == before,
        "a refused push changed the target"
    );
}

#[test]
fn zero_runs_leave_a_thin_target_thin_and_a_larger_target_keeps_its_tail() {
    let tail = random_bytes("tail", MIB as usize);
    let fx = BlockFixture::new(24 * MIB, false, |t| {
        // Data where the source has zeros (it must be zeroed), and a tail past its end.
        t.write_at(&random_bytes("stale", (2 * MIB) as usize), 4 * MIB);
        t.write_at(&tail, 20 * MIB);
    });
    // 16 MiB with 1 MiB of data at the start and zeros after it, stored sparse.
    let image = fx.tmp.path().join("sparse.img");
    let file = fs::File::create(&image).unwrap();
    file.set_len(16 * MIB).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&file, &random_bytes("head", MIB as usize), 0)
        .unwrap();

    let out = push(&fx.certs, &image, &fx.url()).json().run();
    out.assert_ok();
    let content = fx.target.content();
    assert!(content[..MIB as usize] == fs::read(&image).unwrap()[..MIB as usize]);
    assert!(content[MIB as usize..(16 * MIB) as usize]
        .iter()
        .all(|&b| b == 0));
    assert!(
        content[(20 * MIB) as usize..(21 * MIB) as usize] == tail[..],
        "the tail changed"
    );
    let block = &out.summary()["block"];
    assert_eq!(block["bytes_zeroed"], 2 * MIB, "{block}");
    assert_eq!(block["tail_kept"], 8 * MIB, "{block}");
    assert_eq!(out.stat("bytes_literal"), MIB);
    // Allocated: the 1 MiB head and the 1 MiB tail; the stale 2 MiB were released.
    let allocated = fx.target.allocated();
    assert!(
        allocated <= 2 * MIB + 256 * 1024,
        "the target holds {allocated} bytes"
    );
}

#[test]
fn a_read_only_block_volume_is_pulled_into_an_image_and_a_device_and_refuses_pushes() {
    let content = disk("pulled");
    let fx = BlockFixture::new(16 * MIB, true, |t| t.write_at(&content, 0));

    let image = fx.image("pulled.img", b"");
    pull(&fx.certs, &fx.url(), &image).run().assert_ok();
    assert!(
        fs::read(&image).unwrap() == content,
        "the pulled image differs"
    );

    let dest = LoopDevice::new(fx.tmp.path(), "dest.img", 16 * MIB);
    let out = pull(&fx.certs, &fx.url(), &dest.dev).json().run();
    out.assert_ok();
    assert!(dest.content() == content, "the pulled device differs");
    assert_eq!(out.stat("bytes_literal"), 12 * MIB);

    let pushed = push(&fx.certs, &image, &fx.url()).run();
    pushed.assert_code(5);
    assert!(pushed.stderr().contains("read-only"), "{}", pushed.stderr());
}

#[test]
fn a_directory_and_a_block_volume_do_not_mix() {
    let fx = BlockFixture::new(8 * MIB, false, |_| {});
    let dir = fx.tmp.path().join("tree");
    fs::create_dir(&dir).unwrap();
    let out = push(&fx.certs, &dir, &fx.url()).run();
    out.assert_code(5);
    assert!(
        out.stderr().contains("is a block volume"),
        "{}",
        out.stderr()
    );
}

#[test]
fn a_cut_re_sync_resumes_without_sending_again_what_already_matches() {
    let fx = BlockFixture::new(16 * MIB, false, |_| {});
    let content = disk("cut");
    let image = fx.image("disk.img", &content);
    let server: std::net::SocketAddr = fx
        .url()
        .trim_start_matches("ferry://")
        .trim_end_matches("/blk")
        .parse()
        .unwrap();
    let relay = crate::relay::Relay::start(server, 7 * MIB);
    let url = format!("ferry://127.0.0.1:{}/blk", relay.addr.port());
    let out = push(&fx.certs, &image, &url)
        .arg("--retries")
        .arg("3")
        .json()
        .run();
    out.assert_ok();
    assert!(
        relay.connections() >= 2,
        "the relay never cut the connection"
    );
    assert!(out.stat("retries") >= 1, "{}", out.stdout());
    assert!(
        fx.target.content() == content,
        "the target differs after the retry"
    );
    // The counts are the last attempt's: what the cut one wrote was found in place.
    let literal = out.stat("bytes_literal");
    assert!(
        literal <= 12 * MIB - 4 * MIB,
        "the retry sent {literal} literal bytes of 12 MiB: the cut attempt's blocks were sent again"
    );
}

#[test]
fn a_dry_run_push_says_what_it_would_send_and_changes_nothing() {
    let before = disk("dry run target");
    let fx = BlockFixture::new(16 * MIB, false, |t| t.write_at(&before, 0));
    let mut content = before.clone();
    content[..(MIB as usize)].fill(0x11);
    let image = fx.image("disk.img", &content);
    let out = push(&fx.certs, &image, &fx.url()).dry_run().json().run();
    out.assert_ok();
    assert_eq!(out.stat("bytes_literal"), MIB);
    assert_eq!(out.stat("files_transferred"), 0);
    assert!(
        out.stat("bytes_on_wire") < MIB / 2,
        "a dry run sent content"
    );
    assert!(
        fx.target.content() == before,
        "a dry run changed the target"
    );

    let pulled = fx.image("pulled.img", b"");
    pull(&fx.certs, &fx.url(), &pulled)
        .dry_run()
        .run()
        .assert_code(1);
}
