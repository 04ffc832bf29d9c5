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

#[test]
fn an_entry_that_switches_type_mid_run_is_refused() {
    // First a directory, later in the same listing the same name as a file: the second
    // claim is refused, whatever its type, before anything replaces the directory.
    hostile_case(
        |c, _| {
            send_ignoring_hangup(
                c,
                &[
                    list(b"", 0, vec![dir(b"flip")], false),
                    list(b"", 1, vec![file(b"flip")], true),
                ],
            )
        },
        &[],
    );
}

#[test]
fn a_directory_listed_twice_is_refused() {
    // `d` is announced once and listed; a second listing of it (as if it switched back
    // from a file, or the list were duplicated) is refused.
    hostile_case(
        |c, _| {
            send_ignoring_hangup(
                c,
                &[
                    list(b"", 0, vec![dir(b"d")], true),
                    list(b"d", 1, vec![file(b"a")], true),
                    list(b"d", 2, vec![file(b"b")], true),
                ],
            )
        },
        &[],
    );
}
