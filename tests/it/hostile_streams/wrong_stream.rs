//! Frames a stream may not carry: a file's data on another stream than its ask, a
//! `Files` entry for a file asked as a delta, a second `FileEnd`, and `StreamGone` for
//! stream 0, twice, for a stream past the session's, or on a joined stream. Each ends the
//! session at once with a protocol error that names it (exit 12), nothing is written
//! outside the volume, and no file the source did not finish is there under its name.
//! A `StreamGone` for a stream the session may have but that never joined is held for
//! its join (the peer's word may overtake this side's news of the join): the session
//! goes on.

use ferry_proto::SmallFile;

use super::*;

/// Two files of a stream's whole credit each, so each is asked on a stream of its own,
/// over stream 0 and one joined stream.
fn two_streams_two_files() -> (Multi, [Ask; 2]) {
    let mut multi = Multi::start(1, |_| {});
    multi.list(vec![file("a", CREDIT), file("b", CREDIT)]);
    let [x, y] = multi.asks(2)[..] else {
        unreachable!("asks(2) returns two")
    };
    assert_ne!(
        x.stream, y.stream,
        "two files of a stream's credit on one stream"
    );
    (multi, [x, y])
}

#[test]
fn data_for_a_file_sent_on_another_stream_than_its_ask_is_refused() {
    let (mut multi, [x, y]) = two_streams_two_files();
    let data = Message::Data {
        index: x.index,
        offset: 0,
        bytes: content(1024).into(),
    };
    multi.send(y.stream, &data).expect("send Data");
    let seen = multi.until_end(|_, _| {});
    let (ended, files) = multi.finish();
    let needle = format!(
        "Data for entry {} on stream {}; it was asked on stream {}",
        x.index, y.stream, x.stream
    );
    ended.assert_protocol_error(&seen, &needle);
    files.assert_contained_and_absent(&["a", "b"]);
}

#[test]
fn a_files_entry_for_a_file_asked_as_a_delta_is_refused() {
    const SIZE: u64 = 128 << 10;
    let old = vec![7u8; SIZE as usize];
    let mut multi = Multi::start(1, |vol| crate::files::write(&vol.join("d"), &old, 0o644));
    // Same size, another time: changed, with a basis worth a delta.
    multi.list(vec![file("d", SIZE)]);
    let [ask] = multi.asks(1)[..] else {
        unreachable!("asks(1) returns one")
    };
    assert!(ask.delta, "the file was not asked as a delta: {ask:?}");
    let new = content(SIZE);
    let files_frame = Message::Files {
        files: vec![SmallFile {
            index: ask.index,
            hash: *blake3::hash(&new).as_bytes(),
            bytes: new.into(),
        }],
    };
    multi.send(ask.stream, &files_frame).expect("send Files");
    let seen = multi.until_end(|_, _| {});
    let (ended, files) = multi.finish();
    ended.assert_protocol_error(
        &seen,
        &format!(
            "Files entry for entry {}, which was asked for as a delta",
            ask.index
        ),
    );
    files.assert_contained_and_absent(&[]);
    assert_eq!(
        std::fs::read(files.vol.join("d")).expect("d"),
        old,
        "the basis changed"
    );
}

#[test]
fn a_second_file_end_is_refused() {
    let mut multi = Multi::start(1, |_| {});
    // `big` is asked and never sent: the session cannot be over before the second
    // FileEnd is read.
    multi.list(vec![file("a-small", 5), file("b-big", CREDIT)]);
    let asks = multi.asks(2);
    let small = asks.iter().find(|a| a.index == 0).expect("small asked");
    let bytes = content(5);
    let end = Message::FileEnd {
        index: 0,
        size: 5,
        hash: *blake3::hash(&bytes).as_bytes(),
    };
    let data = Message::Data {
        index: 0,
        offset: 0,
        bytes: bytes.into(),
    };
    for message in [&data, &end, &end] {
        multi.send(small.stream, message).expect("send");
    }
    let seen = multi.until_end(|_, _| {});
    let (ended, files) = multi.finish();
    // After its FileEnd, or once it is committed, as an entry no longer asked for.
    ended.assert_protocol_error(&seen, "FileEnd for entry 0");
    files.assert_contained_and_absent(&["b-big"]);
}

/// A session over stream 0 and joined stream 1 with one file asked; `gone` sent on
/// `on`: the session's end.
fn stream_gone(gone: &[u16], on: u16) -> (Ended, Vec<Recv>) {
    let mut multi = Multi::start(1, |_| {});
    multi.list(vec![file("a", CREDIT)]);
    multi.asks(1);
    for &stream in gone {
        multi
            .send(on, &Message::StreamGone { stream })
            .expect("send StreamGone");
    }
    let seen = multi.until_end(|_, _| {});
    let (ended, files) = multi.finish();
    files.assert_contained_and_absent(&["a"]);
    (ended, seen)
}

#[test]
fn stream_gone_for_stream_0_is_refused() {
    let (ended, seen) = stream_gone(&[0], 0);
    ended.assert_protocol_error(&seen, "StreamGone for stream 0 from the source");
}

#[test]
fn stream_gone_twice_for_one_stream_is_refused() {
    let (ended, seen) = stream_gone(&[1, 1], 0);
    ended.assert_protocol_error(&seen, "StreamGone for stream 1 from the source twice");
}

#[test]
fn stream_gone_for_a_stream_past_the_sessions_is_refused() {
    let (ended, seen) = stream_gone(&[16], 0);
    ended.assert_protocol_error(&seen, "which never joined this session");
}

#[test]
fn stream_gone_on_a_joined_stream_is_refused() {
    let (ended, seen) = stream_gone(&[1], 1);
    ended.assert_protocol_error(&seen, "StreamGone from the source on stream 1");
}

#[test]
fn stream_gone_for_a_stream_that_never_joined_is_held_and_the_session_completes() {
    let mut multi = Multi::start(1, |_| {});
    multi
        .send(0, &Message::StreamGone { stream: 5 })
        .expect("send StreamGone");
    multi.list(vec![file("small", 5)]);
    let [ask] = multi.asks(1)[..] else {
        unreachable!("asks(1) returns one")
    };
    let bytes = content(5);
    let hash = *blake3::hash(&bytes).as_bytes();
    let data = Message::Data {
        index: 0,
        offset: 0,
        bytes: bytes.clone().into(),
    };
    let end = Message::FileEnd {
        index: 0,
        size: 5,
        hash,
    };
    for message in [&data, &end] {
        multi.send(ask.stream, message).expect("send");
    }
    let seen = multi.until_end(|_, _| {});
    let (ended, files) = multi.finish();
    assert!(
        matches!(seen.last(), Some(Recv::Msg(Message::Done { .. }))),
        "expected Done, got {:?}\n{}",
        seen.last(),
        ended.server.dump()
    );
    assert_eq!(ended.server.code, Some(0), "{}", ended.server.dump());
    assert_eq!(
        std::fs::read(files.vol.join("small")).expect("small"),
        bytes
    );
}
