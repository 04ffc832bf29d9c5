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

/// A source that lists far past the listing window and sends no data: one file it never
/// sends, then hard links to it, which wait for it, so nothing resolves and the
/// watermark stays at 0. The target must end the session when a frame goes past the
/// window (`Limits::window`), with an error that names the numbers. (Its memory stays
/// flat: `real::memory` has the same case against `serve --once`.)
#[test]
fn listing_past_the_window_without_data_is_refused() {
    let run = run_session(|client, _| {
        let _ = list_far_past_the_window(|frame| client.send(frame));
    });
    let error = run.ended.error.as_deref().unwrap_or_default();
    assert!(
        error.contains("past the listing window"),
        "the target did not say why it ended: {:?}",
        run.ended
    );
    assert_names_the_window(error);
    assert!(
        is_refusal(&run.seen),
        "the target did not end the session: {:?}",
        run.seen.iter().rev().take(3).collect::<Vec<_>>()
    );
    assert_eq!(
        run.ended.code, 12,
        "serve --once would not exit 12 (protocol): {:?}",
        run.ended
    );
}

/// Lists 1.2 M entries through `send` (one file, then hard links to it that wait for
/// it), then ListEnd; stops at the first frame that cannot be sent.
pub(super) fn list_far_past_the_window(
    mut send: impl FnMut(&Message) -> std::io::Result<()>,
) -> std::io::Result<()> {
    const ENTRIES: u64 = 1_200_000;
    let per_frame = Limits::default().max_entries_per_frame as u64;
    let mut first = 0;
    while first < ENTRIES {
        let entries = (first..(first + per_frame).min(ENTRIES))
            .map(|i| match i {
                // Names sorted, as a target requires.
                0 => file(b"a-leader"),
                _ => hard_link(format!("l{i:08}").as_bytes(), 0, b"a-leader"),
            })
            .collect();
        send(&list(b"", first, entries, false))?;
        first += per_frame;
    }
    send(&list(b"", ENTRIES, Vec::new(), true))?;
    send(&Message::ListEnd {
        entries: ENTRIES,
        read_errors: 0,
    })
}

/// Asserts a refusal for a listing past the window names its numbers: entries
/// 0..window fit, the next frame does not.
pub(super) fn assert_names_the_window(refusal: &str) {
    let window = Limits::default().window;
    let reached = window + Limits::default().max_entries_per_frame as u64;
    for number in [format!("{window}..{reached}"), format!("at most {window}")] {
        assert!(
            refusal.contains(&number),
            "the error should name {number}: {refusal}"
        );
    }
}
