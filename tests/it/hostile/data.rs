//! File data that does not fit what was listed and asked for: more bytes than declared, a
//! gap, a delta for a file asked for whole, data nobody asked for, a wrong final size.
//! Each is a protocol error; nothing half-written appears under a final name.

use bytes::Bytes;

use super::*;

/// Lists one file `new.bin` (5 bytes), waits for the target's Want, then sends `data`.
fn after_want(data: Vec<Message>) {
    hostile_case(
        move |c, _| {
            send_ignoring_hangup(
                c,
                &[
                    list(b"", 0, vec![file(b"new.bin")], true),
                    Message::ListEnd {
                        entries: 1,
                        read_errors: 0,
                    },
                ],
            );
            loop {
                match c.recv() {
                    Recv::Msg(Message::Want { index: 0, .. }) => break,
                    Recv::Msg(_) => continue,
                    _ => return,
                }
            }
            send_ignoring_hangup(c, &data);
        },
        &[],
    );
}

fn data(offset: u64, bytes: &'static [u8]) -> Message {
    Message::Data {
        index: 0,
        offset,
        bytes: Bytes::from_static(bytes),
    }
}

fn end(size: u64) -> Message {
    Message::FileEnd {
        index: 0,
        size,
        hash: *blake3::hash(FILE_DATA).as_bytes(),
    }
}

#[test]
fn data_past_the_declared_size_is_refused() {
    after_want(vec![data(0, b"0123456789"), end(10)]);
}

#[test]
fn data_with_a_gap_is_refused() {
    after_want(vec![data(3, b"45"), end(5)]);
}

#[test]
fn a_delta_for_a_file_asked_for_whole_is_refused() {
    after_want(vec![
        Message::Delta {
            index: 0,
            offset: 0,
            len: 5,
            bytes: Bytes::from_static(b"\x72\x73\x02\x36\x05abcde\x00"),
        },
        end(5),
    ]);
}

#[test]
fn a_final_size_other_than_declared_is_refused() {
    after_want(vec![data(0, b"123"), end(3)]);
}

#[test]
fn data_for_an_entry_never_asked_for_is_refused() {
    hostile_case(
        |c, _| {
            send_ignoring_hangup(
                c,
                &[
                    list(b"", 0, vec![dir(b"d")], true),
                    Message::Data {
                        index: 0,
                        offset: 0,
                        bytes: Bytes::from_static(b"planted"),
                    },
                ],
            )
        },
        &[],
    );
}

/// The file is whole and correct after the first FileEnd, so every entry is resolved
/// when the second arrives: the target must still hear its receiver out before `Done`.
#[test]
fn a_second_file_end_for_one_file_is_refused() {
    after_want(vec![data(0, FILE_DATA), end(5), end(5)]);
}
