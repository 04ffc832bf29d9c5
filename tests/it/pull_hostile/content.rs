//! Hostile hard links, file content, frames and indices.

use super::*;

// Hard links whose leader path points out of the tree.

#[test]
fn hard_link_leader_path_out_of_the_tree_is_refused() {
    hostile_server(|_| listing(vec![file(b"a"), hard_link(b"b", 0, b"../sentinel/s.txt")]))
        .refused();
}

#[test]
fn hard_link_leader_path_absolute_is_refused() {
    hostile_server(|at| {
        let leader = at.path("TMP/sentinel/s.txt");
        let leader = leader.to_str().unwrap().as_bytes();
        listing(vec![file(b"a"), hard_link(b"b", 0, leader)])
    })
    .refused();
}

#[test]
fn hard_link_leader_path_to_a_dest_symlink_is_refused() {
    // `out-link` is DEST's symlink to ../sentinel/s.txt: linking must not reach the file.
    hostile_server(|_| listing(vec![file(b"a"), hard_link(b"b", 0, b"out-link")])).refused();
}

/// A server may only name, as a link's leader, the file it listed as that entry: not a
/// file DEST already has, least of all one the puller excluded to keep.
#[test]
fn hard_link_to_an_excluded_dest_file_is_refused() {
    hostile_server(|_| listing(vec![file(b"a"), hard_link(b"b", 0, b"pre.txt")]))
        .excluding("pre.txt")
        .absent(&["TMP/dest/b"])
        .refused();
}

#[test]
fn hard_link_leader_path_through_a_dest_symlink_dir_is_refused() {
    // `out-dir/t.txt` is ../sentinel/sub/t.txt if DEST's symlink `out-dir` is followed.
    // It is not the path of entry 0 (`a`), so the listing is refused before any link is
    // tried (a leader path can only cross a directory the server listed itself, which
    // replaces DEST's symlink).
    hostile_server(|_| listing(vec![file(b"a"), hard_link(b"b", 0, b"out-dir/t.txt")]))
        .absent(&["TMP/dest/b"])
        .refused();
}

#[test]
fn hard_link_to_a_leader_not_yet_listed_is_refused() {
    hostile_server(|_| listing(vec![file(b"a"), hard_link(b"b", 1, b"b")])).refused();
}

// File data that does not fit what was listed and asked for.

/// One file `new.bin` (5 bytes), each `Want` for it answered with `answer`; unless the
/// answer is whole, `new.bin` must not come to exist.
fn new_file(answer: impl FnMut(u64) -> Vec<Step> + Send + 'static) -> Hostile {
    hostile_server(|_| listing(vec![file(b"new.bin")])).answering(answer)
}

fn bad_new_file(answer: impl FnMut(u64) -> Vec<Step> + Send + 'static) -> Hostile {
    new_file(answer).absent(&["TMP/dest/new.bin"])
}

#[test]
fn data_past_the_declared_size_is_refused() {
    let hash = *blake3::hash(b"0123456789").as_bytes();
    bad_new_file(move |i| vec![data(i, 0, b"0123456789"), file_end(i, 10, hash)]).refused();
}

#[test]
fn data_with_a_gap_is_refused() {
    let hash = *blake3::hash(FILE_DATA).as_bytes();
    bad_new_file(move |i| vec![data(i, 3, b"45"), file_end(i, 5, hash)]).refused();
}

#[test]
fn a_final_size_other_than_declared_is_refused() {
    let hash = *blake3::hash(b"123").as_bytes();
    bad_new_file(move |i| vec![data(i, 0, b"123"), file_end(i, 3, hash)]).refused();
}

#[test]
fn a_delta_for_a_file_asked_for_whole_is_refused() {
    let hash = *blake3::hash(FILE_DATA).as_bytes();
    bad_new_file(move |index| {
        vec![
            Step::Send(Message::Delta {
                index,
                offset: 0,
                len: 5,
                bytes: Bytes::from_static(b"\x72\x73\x02\x36\x05abcde\x00"),
            }),
            file_end(index, 5, hash),
        ]
    })
    .refused();
}

#[test]
fn a_second_file_end_for_one_file_is_refused() {
    // The first FileEnd completes `new.bin` (which may then be in place, whole); the
    // second names a file that is no longer being received.
    new_file(|i| {
        let mut steps = whole(i);
        steps.extend(whole(i).pop());
        steps
    })
    .refused();
}

#[test]
fn a_file_end_with_a_wrong_hash_is_asked_for_again_then_fails_only_that_file() {
    // A hash mismatch is what a file changed in flight looks like, so the target does not
    // call it a protocol error: it asks once more for the whole file, and when that does
    // not verify either, it reports a per-file error, commits nothing and finishes the
    // session: exit 23 (partial transfer), not 12.
    let run =
        bad_new_file(|i| vec![data(i, 0, FILE_DATA), file_end(i, 5, [0xee; 32])]).contained(23);
    assert_eq!(run.wants(0), 2, "one Want and one re-send\n{}", run.dump());
    assert!(
        run.transcript
            .received
            .iter()
            .any(|m| matches!(m, Message::FileError { path, .. } if path == b"new.bin")),
        "no FileError for new.bin\n{}",
        run.dump()
    );
}

#[test]
fn data_for_an_entry_never_asked_for_is_refused() {
    hostile_server(|_| {
        let mut script = sends([list(b"", 0, vec![dir(b"d")], true)]);
        script.push(data(0, 0, b"planted"));
        script
    })
    .refused();
}

// Framing itself: too long, cut short, or not frames at all.

#[test]
fn frame_length_over_the_limit_is_refused_before_its_body_arrives() {
    let bytes = vec![0u8; Limits::default().max_frame + 1].into();
    let too_long = Message::Data {
        index: 0,
        offset: 0,
        bytes,
    };
    let mut frame = bytes::BytesMut::new();
    encode(&too_long, &mut frame);
    // Only the header: the pull must refuse on the length alone, not wait for the body.
    // The connection stays open.
    let head = frame[..64].to_vec();
    hostile_server(move |_| vec![Step::Raw(head)]).refused();
}

/// (`real` has this case over TLS, where the end is a TLS close.)
#[test]
fn truncated_frame_then_end_of_stream_is_refused() {
    let mut frame = bytes::BytesMut::new();
    encode(&list(b"", 0, vec![file(b"t")], true), &mut frame);
    let cut = frame[..frame.len() - 3].to_vec();
    hostile_server(move |_| vec![Step::Raw(cut), Step::CloseWrite])
        .absent(&["TMP/dest/t"])
        .refused();
}

#[test]
fn random_garbage_is_refused() {
    let garbage = random_bytes("pull garbage", 4096);
    hostile_server(move |_| vec![Step::Raw(garbage), Step::CloseWrite]).refused();
}

#[test]
fn a_second_welcome_is_refused() {
    let welcome = crate::raw_server::welcome(1);
    hostile_server(move |_| sends([welcome])).refused();
}

// Entry indices that skip, repeat or do not add up.

#[test]
fn list_not_starting_at_index_zero_is_refused() {
    hostile_server(|_| sends([list(b"", 3, vec![file(b"a")], true), list_end(4)])).refused();
}

#[test]
fn list_skipping_indices_is_refused() {
    hostile_server(|_| {
        sends([
            list(b"", 0, vec![file(b"a")], false),
            list(b"", 5, vec![file(b"b")], true),
            list_end(6),
        ])
    })
    .absent(&["TMP/dest/b"])
    .refused();
}

#[test]
fn list_repeating_indices_is_refused() {
    hostile_server(|_| {
        sends([
            list(b"", 0, vec![file(b"a")], false),
            list(b"", 0, vec![file(b"b")], true),
            list_end(1),
        ])
    })
    .absent(&["TMP/dest/b"])
    .refused();
}

#[test]
fn list_end_with_a_wrong_entry_count_is_refused() {
    hostile_server(|_| sends([list(b"", 0, vec![file(b"a")], true), list_end(7)])).refused();
}

/// A server that stops after the puller's `Done` (interrupted by a signal, say) gives the
/// exit code of its `Error`'s class, not a protocol error: 20 for an interrupted one.
#[test]
fn a_servers_error_after_done_keeps_its_class() {
    use ferry_proto::ErrorClass;
    for (class, code) in [(ErrorClass::Interrupted, 20), (ErrorClass::FileIo, 11)] {
        let run = hostile_server(|_| listing(vec![]))
            .answering_done(vec![Step::Send(Message::Error {
                class,
                message: "stopping".into(),
            })])
            .contained(code);
        let error = run.ended.error.as_deref().unwrap_or_default();
        assert!(error.contains("source says: stopping"), "{}", run.dump());
    }
}
