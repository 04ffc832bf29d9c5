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
