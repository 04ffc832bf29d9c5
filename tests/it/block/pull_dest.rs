//! What a pull does to a DEST that is not a device: a missing one (a directory pull,
//! refused by a block volume) is not left behind as an empty directory that would make
//! the refusal's advice (`truncate -s 0 DEST`) fail; an existing regular file is not
//! touched when the volume is a directory.

use std::fs;

use super::{BlockFixture, MIB};
use crate::files::random_bytes;
use crate::util::{pull, Server};

#[test]
fn a_block_volume_pulled_into_a_missing_dest_leaves_nothing_and_its_advice_works() {
    let content = random_bytes("pull dest", (4 * MIB) as usize);
    let fx = BlockFixture::new(4 * MIB, true, |t| t.write_at(&content, 0));
    let dest = fx.tmp.path().join("disk.img");

    let refused = pull(&fx.certs, &fx.url(), &dest).run();
    refused.assert_code(5);
    assert!(
        refused.stderr().contains("truncate -s 0"),
        "{}",
        refused.stderr()
    );
    assert!(
        !dest.exists(),
        "the refused pull left {dest:?} behind as a directory"
    );

    // The advice, followed.
    fs::File::create(&dest).unwrap();
    pull(&fx.certs, &fx.url(), &dest).run().assert_ok();
    assert!(
        fs::read(&dest).unwrap() == content,
        "the pulled image differs"
    );
}

#[test]
fn a_directory_volume_pulled_into_an_existing_file_leaves_the_file_untouched() {
    let fx = BlockFixture::new(MIB, false, |_| {});
    let tree = fx.tmp.path().join("tree");
    fs::create_dir(&tree).unwrap();
    fs::write(tree.join("a"), b"a").unwrap();
    let server = Server::builder(&fx.certs).volume("tree", &tree).start();
    let notes = fx.image("notes.txt", b"my notes");
    let refused = pull(&fx.certs, &server.url("tree"), &notes).run();
    refused.assert_code(5);
    assert!(
        refused.stderr().contains("is a directory"),
        "{}",
        refused.stderr()
    );
    assert_eq!(fs::read(&notes).unwrap(), b"my notes");
}

#[test]
fn a_hostile_server_cannot_grow_a_pulled_image_past_its_file_system() {
    use crate::raw_server::{RawServer, Step};
    use ferry_proto::Message;

    let certs = crate::util::Certs::new();
    let tmp = tempfile::TempDir::new().unwrap();
    let dest = tmp.path().join("disk.img");
    fs::write(&dest, b"mine").unwrap();
    // 8 TiB: more than any test machine's /tmp, yet a size ext4 would take.
    let huge = 1u64 << 43;
    let server = RawServer::start(
        &certs.server_dir(),
        vec![Step::Send(Message::BlockBegin { size: huge })],
        Box::new(|_| Vec::new()),
    );
    let out = pull(&certs, &server.url(), &dest).run();
    let _ = server.finish();
    out.assert_code(11);
    assert!(out.stderr().contains(&huge.to_string()), "{}", out.stderr());
    assert_eq!(fs::read(&dest).unwrap(), b"mine");
}
