//! Listings that name paths outside the volume, break the numbering, abuse hard links or
//! exceed the limits.

use ferry_proto::{Limits, Xattr};

use super::*;

#[test]
fn list_of_dir_dotdot_is_refused() {
    hostile_case(
        |c, _| send_ignoring_hangup(c, &[list(b"../sentinel", 0, vec![file(b"planted")], true)]),
        &[],
    );
}

#[test]
fn list_of_absolute_dir_is_refused() {
    hostile_case(
        |c, uniq| {
            send_ignoring_hangup(
                c,
                &[list(
                    b"/tmp",
                    0,
                    vec![file(format!("planted-{uniq}").as_bytes())],
                    true,
                )],
            )
        },
        &["/tmp/planted-UNIQ"],
    );
}

#[test]
fn hard_link_to_a_leader_not_yet_listed_is_refused() {
    bad_entries(vec![file(b"a"), hard_link(b"b", 1, b"b")], &[]);
}

#[test]
fn hard_link_to_a_path_other_than_its_leaders_is_refused() {
    // Entry 0 is `a`; `pre.txt` is a file the target already had. Linking `b` to it
    // would expose (and let later attribute changes reach) a file the source never sent.
    bad_entries(vec![file(b"a"), hard_link(b"b", 0, b"pre.txt")], &[]);
}

#[test]
fn hard_link_to_an_entry_that_is_not_a_file_is_refused() {
    // Entry 0 is the symlink `l` to `pre.txt`: a leader is always a regular file entry.
    let mut link = file(b"l");
    link.content = Content::Symlink {
        target: b"pre.txt".to_vec(),
    };
    bad_entries(vec![link, hard_link(b"m", 0, b"l")], &[]);
}

#[test]
fn names_out_of_order_are_refused() {
    bad_entries(vec![file(b"b"), file(b"a")], &[]);
}

#[test]
fn hard_link_to_an_out_of_range_leader_is_refused() {
    bad_entries(vec![file(b"a"), hard_link(b"b", u64::MAX, b"a")], &[]);
}

#[test]
fn hard_link_to_a_directory_is_refused() {
    // A complete, otherwise valid listing: `d` is listed (empty); only `b` is wrong.
    let frames = [
        list(b"", 0, vec![dir(b"d"), hard_link(b"b", 0, b"d")], true),
        list(b"d", 2, Vec::new(), true),
        Message::ListEnd {
            entries: 2,
            read_errors: 0,
        },
    ];
    hostile_case(|c, _| send_ignoring_hangup(c, &frames), &[]);
}

#[test]
fn hard_link_path_out_of_the_volume_is_refused() {
    bad_entries(
        vec![file(b"a"), hard_link(b"b", 0, b"../sentinel/s.txt")],
        &[],
    );
}

#[test]
fn hard_link_to_an_absolute_path_is_refused() {
    bad_entries(vec![file(b"a"), hard_link(b"b", 0, b"/etc/hostname")], &[]);
}

#[test]
fn list_not_starting_at_index_zero_is_refused() {
    hostile_case(
        |c, _| send_ignoring_hangup(c, &[list(b"", 3, vec![file(b"a")], true)]),
        &[],
    );
}

#[test]
fn list_skipping_indices_is_refused() {
    hostile_case(
        |c, _| {
            send_ignoring_hangup(
                c,
                &[
                    list(b"", 0, vec![file(b"a")], false),
                    list(b"", 5, vec![file(b"b")], true),
                ],
            )
        },
        &[],
    );
}

#[test]
fn list_with_more_entries_than_the_limit_is_refused() {
    let n = Limits::default().max_entries_per_frame + 1;
    bad_entries(
        (0..n).map(|i| file(format!("e{i}").as_bytes())).collect(),
        &[],
    );
}

#[test]
fn symlink_target_over_the_limit_is_refused() {
    let target = vec![b'x'; Limits::default().max_link_target + 1];
    bad_entries(
        vec![Entry {
            name: b"l".to_vec(),
            meta: meta(),
            content: Content::Symlink { target },
        }],
        &[],
    );
}

#[test]
fn too_many_xattrs_are_refused() {
    let xattrs = (0..=Limits::default().max_xattrs)
        .map(|i| Xattr {
            name: format!("user.x{i}").into_bytes(),
            value: b"v".to_vec(),
        })
        .collect();
    bad_entries(
        vec![Entry {
            name: b"x".to_vec(),
            meta: Meta { xattrs, ..meta() },
            content: Content::Dir,
        }],
        &[],
    );
}
