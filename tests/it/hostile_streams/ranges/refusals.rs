//! Frames of a range that break its rules: each ends the session with a protocol error
//! naming the rule (exit 12), nothing outside the volume, no final name, and at most a
//! verified prefix under the partial name.

use super::*;

/// A large file listed over stream 0 and one joined stream; `breach` gets the first
/// range asked and the file's content and says what to send on which stream. The target
/// must end the session with a protocol error holding `needle(ask)`.
fn refused(
    breach: impl FnOnce(&RangeAsk, &[u8]) -> Vec<(u16, Message)>,
    needle: impl FnOnce(&RangeAsk) -> String,
) {
    refused_over(
        1,
        1,
        |asks, big| breach(&asks[0], big),
        |asks| needle(&asks[0]),
    );
}

/// [`refused`] over stream 0 and `joins` joined streams, once the target asked `asks`
/// ranges; `breach` and `needle` get them all.
fn refused_over(
    joins: u16,
    asks: usize,
    breach: impl FnOnce(&[RangeAsk], &[u8]) -> Vec<(u16, Message)>,
    needle: impl FnOnce(&[RangeAsk]) -> String,
) {
    let big = content(RANGED);
    let mut multi = Multi::start(joins, |_| {});
    multi.list(vec![file("big", RANGED)]);
    let asks = multi.range_asks(asks);
    for ask in &asks {
        assert_eq!((ask.index, ask.len, ask.have), (0, RANGE, false), "{ask:?}");
    }
    for (stream, frame) in breach(&asks, &big) {
        multi.send(stream, &frame).expect("send");
    }
    let seen = multi.until_end(|_, _| {});
    let (ended, finished) = multi.finish();
    ended.assert_protocol_error(&seen, &needle(&asks));
    finished.assert_contained_and_absent(&["big"]);
    finished.assert_partial_is_a_verified_prefix("big", &big);
}

/// The stream of the session's two that `ask` was not asked on.
fn other_stream(ask: &RangeAsk) -> u16 {
    1 - ask.stream
}

#[test]
fn a_piece_past_the_end_of_its_range_is_refused() {
    const HALF: usize = 128 << 10;
    refused(
        |ask, big| {
            // Up to half a piece before the range's end, then a whole piece.
            let bytes = range_bytes(ask, big);
            let mut frames = pieces(ask.index, ask.offset, &bytes[..bytes.len() - HALF]);
            let at = ask.offset + ask.len - HALF as u64;
            let over = &big[at as usize..at as usize + 2 * HALF];
            frames.extend(pieces(ask.index, at, over));
            on(ask.stream, frames)
        },
        |ask| {
            format!(
                "Data for entry 0 at offset {} of {} bytes goes past the end of its range at {}",
                ask.offset + ask.len - HALF as u64,
                2 * HALF,
                ask.offset + ask.len
            )
        },
    );
}

#[test]
fn a_hole_whose_end_overflows_is_refused() {
    refused(
        |ask, _| {
            let hole = Message::Hole {
                index: ask.index,
                offset: ask.offset,
                len: u64::MAX,
            };
            vec![(ask.stream, hole)]
        },
        |ask| {
            format!(
                "Hole for entry 0 at offset {} of {} bytes goes past the end of its range at {}",
                ask.offset,
                u64::MAX,
                ask.offset + ask.len
            )
        },
    );
}

#[test]
fn a_piece_on_another_stream_than_its_range_is_refused() {
    refused(
        |ask, big| {
            let first = pieces(ask.index, ask.offset, &range_bytes(ask, big)[..1024]);
            on(other_stream(ask), first)
        },
        |ask| {
            format!(
                "Data for entry 0 at offset {} on stream {}; its range was asked on stream {}",
                ask.offset,
                other_stream(ask),
                ask.stream
            )
        },
    );
}

#[test]
fn a_range_end_before_all_its_bytes_is_refused() {
    const SENT: usize = 1 << 20;
    refused(
        |ask, big| {
            let bytes = range_bytes(ask, big);
            let mut frames = pieces(ask.index, ask.offset, &bytes[..SENT]);
            frames.push(range_end(ask, range_cv(ask.offset, bytes)));
            on(ask.stream, frames)
        },
        |ask| {
            format!(
                "RangeEnd for entry 0 at offset {} after {SENT} of its {} bytes",
                ask.offset, ask.len
            )
        },
    );
}

#[test]
fn a_range_end_of_another_length_is_refused() {
    refused(
        |ask, big| {
            let mut frames = honest(ask, big);
            let Some(Message::RangeEnd { len, .. }) = frames.last_mut() else {
                unreachable!("an honest answer ends with RangeEnd")
            };
            *len -= 1;
            on(ask.stream, frames)
        },
        |ask| {
            format!(
                "RangeEnd for entry 0 at offset {} says {} bytes; the range asked has {}",
                ask.offset,
                ask.len - 1,
                ask.len
            )
        },
    );
}

#[test]
fn a_range_end_saying_same_where_the_target_held_nothing_is_refused() {
    refused(
        |ask, big| {
            let end = Message::RangeEnd {
                index: ask.index,
                offset: ask.offset,
                len: ask.len,
                same: true,
                cv: range_cv(ask.offset, range_bytes(ask, big)),
            };
            vec![(ask.stream, end)]
        },
        |ask| {
            format!(
                "RangeEnd for entry 0 at offset {} says the target's bytes are the source's, \
                 but the target did not say it held these",
                ask.offset
            )
        },
    );
}

#[test]
fn a_file_end_for_a_file_asked_in_ranges_is_refused() {
    refused(
        |ask, big| {
            let mut frames = pieces(ask.index, ask.offset, range_bytes(ask, big));
            frames.push(Message::FileEnd {
                index: ask.index,
                size: RANGED,
                hash: *blake3::hash(big).as_bytes(),
            });
            on(ask.stream, frames)
        },
        |_| "FileEnd for entry 0, which was asked in ranges".to_string(),
    );
}

#[test]
fn a_piece_of_a_range_after_its_range_end_is_refused() {
    refused(
        |ask, big| {
            let mut frames = honest(ask, big);
            frames.extend(pieces(
                ask.index,
                ask.offset,
                &range_bytes(ask, big)[..1024],
            ));
            on(ask.stream, frames)
        },
        |ask| {
            format!(
                "Data for entry 0 at offset {}, in none of its ranges asked and not ended",
                ask.offset
            )
        },
    );
}

#[test]
fn a_piece_that_skips_bytes_of_its_range_is_refused() {
    const SKIP: u64 = 256 << 10;
    refused(
        |ask, big| {
            let at = (ask.offset + SKIP) as usize;
            on(
                ask.stream,
                pieces(ask.index, at as u64, &big[at..at + 1024]),
            )
        },
        |ask| {
            format!(
                "Data for entry 0 at offset {}, expected {}",
                ask.offset + SKIP,
                ask.offset
            )
        },
    );
}

#[test]
fn a_range_end_on_another_stream_than_its_range_is_refused() {
    refused(
        |ask, big| {
            let mut frames = honest(ask, big);
            let end = frames.pop().expect("an honest answer ends with RangeEnd");
            let mut sends = on(ask.stream, frames);
            sends.push((other_stream(ask), end));
            sends
        },
        |ask| {
            format!(
                "RangeEnd for entry 0 at offset {} on stream {}; the range was asked on stream {}",
                ask.offset,
                other_stream(ask),
                ask.stream
            )
        },
    );
}

#[test]
fn a_range_end_where_no_range_was_asked_is_refused() {
    const OFF: u64 = 4096;
    refused(
        |ask, _| {
            let end = Message::RangeEnd {
                index: ask.index,
                offset: ask.offset + OFF,
                len: RANGE - OFF,
                same: false,
                cv: [0; 32],
            };
            vec![(ask.stream, end)]
        },
        |ask| {
            format!(
                "RangeEnd for entry 0 at offset {}, where no range of it is asked and not ended",
                ask.offset + OFF
            )
        },
    );
}

#[test]
fn file_failed_on_a_stream_where_none_of_the_files_ranges_is_open_is_refused() {
    // Five streams, four ranges: each on a stream of its own, one stream without.
    let idle = |asks: &[RangeAsk]| {
        (0..5u16)
            .find(|s| asks.iter().all(|a| a.stream != *s))
            .expect("a stream without a range of the file")
    };
    refused_over(
        4,
        4,
        |asks, _| {
            let failed = Message::FileFailed {
                index: 0,
                reason: ferry_proto::FileFailure::Changed,
                message: "changed while read".into(),
            };
            vec![(idle(asks), failed)]
        },
        |asks| {
            format!(
                "FileFailed for entry 0 on stream {}, where none of its ranges is open",
                idle(asks)
            )
        },
    );
}

#[test]
fn a_delta_for_a_file_asked_in_ranges_is_refused() {
    refused(
        |ask, _| {
            let delta = Message::Delta {
                index: ask.index,
                offset: ask.offset,
                len: 1,
                bytes: Bytes::from_static(&[0x72, 0x73, 0x02, 0x36, 0x01, 0x00, 0x00]),
            };
            vec![(ask.stream, delta)]
        },
        |_| "Delta for entry 0, which was asked in ranges".to_string(),
    );
}

/// A `Files` entry for a file asked in ranges, on `stream` of the session's two.
fn files_entry_for_a_ranged_file(stream: u16) {
    refused_over(
        1,
        2,
        |asks, big| {
            assert!(
                asks.iter().any(|a| a.stream == stream),
                "no range asked on stream {stream}: {asks:?}"
            );
            let files = Message::Files {
                files: vec![ferry_proto::SmallFile {
                    index: 0,
                    hash: *blake3::hash(&big[..1024]).as_bytes(),
                    bytes: Bytes::copy_from_slice(&big[..1024]),
                }],
            };
            vec![(stream, files)]
        },
        |_| "Files entry for entry 0, which was asked in ranges".to_string(),
    );
}

#[test]
fn a_files_entry_for_a_file_asked_in_ranges_is_refused_on_stream_0() {
    files_entry_for_a_ranged_file(0);
}

/// Stream 1 has a range of the file open: the rule broken is the same.
#[test]
fn a_files_entry_for_a_file_asked_in_ranges_is_refused_on_a_joined_stream() {
    files_entry_for_a_ranged_file(1);
}
