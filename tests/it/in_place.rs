//! What the target changes in place (a file whose size and mtime already match the
//! source's gets only its attributes: owner, mode, mtime) must not hand a local user's
//! content, or an inode outside the volume, the source's privileges.

use std::os::unix::fs::MetadataExt;

use crate::files::{chown, read, set_mtime, write};
use crate::pods::USER;
use crate::util::Fixture;

/// A local user of the target who may write in a volume directory puts their own file
/// where the source has a setuid-root program, with the same size and mtime (both visible
/// on the target's earlier copy), as a hard link to a file of theirs outside the volume.
/// The next push finds "same content, other attributes" and chowns and chmods the inode
/// in place: the user's file, outside the volume, becomes setuid root.
#[test]
fn a_planted_file_with_the_sources_size_and_mtime_is_not_made_setuid_root_in_place() {
    let fx = Fixture::new();
    let program = b"#!/bin/sh\necho the real program\n".to_vec();
    let planted = b"#!/bin/sh\necho the evil program\n".to_vec();
    assert_eq!(program.len(), planted.len());
    write(&fx.src.join("tool"), &program, 0o4755);
    set_mtime(&fx.src.join("tool"), 1_700_000_000, 0);

    let outside = fx.tmp.path().join("users-own");
    write(&outside, &planted, 0o755);
    chown(&outside, USER, USER);
    set_mtime(&outside, 1_700_000_000, 0);
    std::fs::hard_link(&outside, fx.dst.join("tool")).unwrap();

    fx.push().run().assert_ok();

    let st = std::fs::metadata(&outside).unwrap();
    assert!(
        st.mode() & 0o6000 == 0 && st.uid() == USER,
        "a file outside the volume was given the source's owner and mode through a link: \
         uid {} mode {:o}",
        st.uid(),
        st.mode() & 0o7777
    );
    let tool = std::fs::metadata(fx.dst.join("tool")).unwrap();
    assert!(
        !(tool.mode() & 0o4000 != 0 && tool.uid() == 0 && read(&fx.dst.join("tool")) == planted),
        "the local user's content is setuid root in the volume"
    );
}
