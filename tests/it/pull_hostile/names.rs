//! Hostile names and listings: entries and directories that point out of DEST or
//! through symlinks.

use super::*;

// Names that are not a single safe path component.

#[test]
fn entry_named_dotdot_slash_escape_is_refused() {
    hostile_server(|_| listing(vec![dir(b"../escape")]))
        .absent(&["TMP/escape"])
        .refused();
}

#[test]
fn entry_named_dotdot_is_refused() {
    hostile_server(|_| listing(vec![dir(b"..")])).refused();
}

#[test]
fn entry_with_absolute_name_is_refused() {
    hostile_server(|at| listing(vec![file(format!("/tmp/abs-{}", at.uniq).as_bytes())]))
        .absent(&["/tmp/abs-UNIQ"])
        .refused();
}

#[test]
fn entry_name_with_slash_through_a_dest_symlink_is_refused() {
    // `out-dir` is DEST's own symlink to ../sentinel/sub.
    hostile_server(|_| listing(vec![file(b"out-dir/planted")]))
        .absent(&["TMP/sentinel/sub/planted", "TMP/dest/out-dir/planted"])
        .refused();
}

#[test]
fn entry_name_with_nul_is_refused() {
    hostile_server(|_| listing(vec![file(b"a\0b")])).refused();
}

// Listings of directories outside DEST or through symlinks.

#[test]
fn list_of_dir_dotdot_is_refused() {
    hostile_server(|_| sends([list(b"../sentinel", 0, vec![file(b"planted")], true)]))
        .absent(&["TMP/sentinel/planted"])
        .refused();
}

#[test]
fn list_of_absolute_dir_is_refused() {
    hostile_server(|at| {
        let name = format!("planted-{}", at.uniq);
        sends([list(b"/tmp", 0, vec![file(name.as_bytes())], true)])
    })
    .absent(&["/tmp/planted-UNIQ"])
    .refused();
}

#[test]
fn a_file_listed_through_a_listed_symlink_is_refused() {
    hostile_server(|_| {
        sends([
            list(b"", 0, vec![link(b"link", b"../sentinel")], true),
            list(b"link", 1, vec![file(b"planted")], true),
            list_end(2),
        ])
    })
    .absent(&["TMP/sentinel/planted"])
    .refused();
}

#[test]
fn a_file_listed_through_a_listed_symlink_to_an_absolute_dir_is_refused() {
    hostile_server(|at| {
        let name = format!("planted-{}", at.uniq);
        sends([
            list(b"", 0, vec![link(b"link", b"/tmp")], true),
            list(b"link", 1, vec![file(name.as_bytes())], true),
            list_end(2),
        ])
    })
    .absent(&["/tmp/planted-UNIQ"])
    .refused();
}

#[test]
fn a_symlink_then_a_directory_of_the_same_name_is_refused() {
    // The second claim on `link` is refused before anything is listed through it.
    hostile_server(|_| {
        sends([
            list(b"", 0, vec![link(b"link", b"../sentinel")], false),
            list(b"", 1, vec![dir(b"link")], true),
            list(b"link", 2, vec![file(b"planted")], true),
            list_end(3),
        ])
    })
    .absent(&["TMP/sentinel/planted"])
    .refused();
}

#[test]
fn listing_into_an_unannounced_dest_symlink_dir_is_refused() {
    // `out-dir` is DEST's own symlink to ../sentinel/sub, never announced as a directory.
    hostile_server(|_| {
        sends([
            list(b"", 0, vec![file(b"f")], true),
            list(b"out-dir", 1, vec![file(b"planted")], true),
            list_end(2),
        ])
    })
    .absent(&["TMP/sentinel/sub/planted"])
    .refused();
}

#[test]
fn a_directory_over_a_dest_symlink_does_not_write_through_it() {
    // A valid listing: `out-dir` is a directory at the source, and DEST's symlink of that
    // name must give way to one, never lead to ../sentinel/sub.
    let run = hostile_server(|_| {
        sends([
            list(b"", 0, vec![dir(b"out-dir")], true),
            list(b"out-dir", 1, vec![file(b"planted")], true),
            list_end(2),
        ])
    })
    .absent(&["TMP/sentinel/sub/planted"])
    .contained(0);
    let out_dir = std::fs::symlink_metadata(run.place.tmp.join("dest/out-dir")).unwrap();
    assert!(
        out_dir.is_dir(),
        "out-dir is not a directory\n{}",
        run.dump()
    );
}

#[test]
fn a_file_over_a_dest_symlink_does_not_write_through_it() {
    // Valid too: the file replaces DEST's symlink `out-link` (to ../sentinel/s.txt).
    let run = hostile_server(|_| listing(vec![file(b"out-link")])).contained(0);
    let out_link = std::fs::symlink_metadata(run.place.tmp.join("dest/out-link")).unwrap();
    assert!(out_link.is_file(), "out-link is not a file\n{}", run.dump());
}

/// The server walks with the puller's filter, so it never lists what the puller excludes;
/// one that does must not overwrite the local files the user excluded to keep.
#[test]
fn an_entry_the_puller_excludes_is_refused() {
    hostile_server(|_| listing(vec![file(b"pre.txt")]))
        .excluding("pre.txt")
        .refused();
}
