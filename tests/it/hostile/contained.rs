//! Cases the target may accept, since they look like a valid session, but where nothing
//! may happen outside the volume through the target's own symlinks.

use super::*;

#[test]
fn hard_link_to_a_target_symlink_does_not_reach_outside() {
    // `out-link` is the target's symlink to ../sentinel/s.txt; linking to it must link the
    // symlink (or fail), never the sentinel file.
    contained_case(vec![
        list(
            b"",
            0,
            vec![file(b"a"), hard_link(b"b", 0, b"out-link")],
            true,
        ),
        Message::ListEnd {
            entries: 2,
            read_errors: 0,
        },
    ]);
}

#[test]
fn listing_into_a_target_symlink_dir_does_not_write_outside() {
    // `out-dir` is the target's symlink to ../sentinel/sub, never announced as a directory.
    contained_case(vec![
        list(b"", 0, vec![file(b"f")], true),
        list(b"out-dir", 1, vec![file(b"planted")], true),
        Message::ListEnd {
            entries: 2,
            read_errors: 0,
        },
    ]);
}

#[test]
fn file_over_a_target_symlink_does_not_write_through_it() {
    contained_case(vec![
        list(b"", 0, vec![file(b"out-link")], true),
        Message::ListEnd {
            entries: 1,
            read_errors: 0,
        },
    ]);
}
