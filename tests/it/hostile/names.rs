//! Entry names that are not a single safe path component, and duplicates.

use super::*;

#[test]
fn entry_named_dotdot_slash_escape_is_refused() {
    bad_entries(vec![dir(b"../escape")], &[]);
}

#[test]
fn entry_with_absolute_name_is_refused() {
    hostile_case(
        |c, uniq| {
            send_ignoring_hangup(
                c,
                &[list(
                    b"",
                    0,
                    vec![file(format!("/tmp/abs-{uniq}").as_bytes())],
                    true,
                )],
            )
        },
        &["/tmp/abs-UNIQ"],
    );
}

#[test]
fn entry_name_with_nul_is_refused() {
    bad_entries(vec![file(b"a\0b")], &[]);
}

#[test]
fn empty_entry_name_is_refused() {
    bad_entries(vec![file(b"")], &[]);
}

#[test]
fn entry_named_dot_is_refused() {
    bad_entries(vec![dir(b".")], &[]);
}

#[test]
fn entry_named_dotdot_is_refused() {
    bad_entries(vec![dir(b"..")], &[]);
}

#[test]
fn entry_name_with_slash_is_refused() {
    bad_entries(vec![file(b"predir/inner.txt")], &[]);
}

#[test]
fn entry_name_over_name_max_is_refused() {
    bad_entries(vec![file(&[b'n'; 256])], &[]);
}

#[test]
fn duplicate_names_in_one_list_are_refused() {
    bad_entries(vec![file(b"dup"), file(b"dup")], &[]);
}

#[test]
fn duplicate_names_across_frames_of_one_dir_are_refused() {
    hostile_case(
        |c, _| {
            send_ignoring_hangup(
                c,
                &[
                    list(b"", 0, vec![file(b"dup")], false),
                    list(b"", 1, vec![file(b"dup")], true),
                ],
            )
        },
        &[],
    );
}
