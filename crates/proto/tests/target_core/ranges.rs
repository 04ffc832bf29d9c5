//! The target core receiving a large file in ranges (`WantRange`/`RangeEnd`): each
//! range's pieces in order on the stream it was asked on, within the range, ended by a
//! `RangeEnd` of its length once they all came; a range that does not verify asked
//! again once; a failed file's other open ranges drained; a lost stream's open ranges
//! asked again, and only those.

use super::streams::{on, reasks, streamed, transmit};
use super::*;
use ferry_proto::session::target::{Reask, MIN_RANGED};
use ferry_proto::{FileFailure, StreamId, RANGE};

const S0: StreamId = StreamId(0);
const S1: StreamId = StreamId(1);
const S2: StreamId = StreamId(2);

/// Files f0..f3 of 4 ranges and 5 bytes (the last range 5 bytes long).
const SIZE: u64 = MIN_RANGED + 5;

fn range_end(index: u64, offset: u64, len: u64) -> Message {
    Message::RangeEnd {
        index,
        offset,
        len,
        same: false,
        cv: [7; 32],
    }
}

fn hole(index: u64, offset: u64, len: u64) -> Message {
    Message::Hole { index, offset, len }
}

/// Sends a whole range as one hole and its end.
fn deliver_range(t: &mut Target, stream: StreamId, index: u64, offset: u64) {
    let len = RANGE.min(SIZE - offset);
    on(t, stream, hole(index, offset, len)).expect("a hole covering the range");
    on(t, stream, range_end(index, offset, len)).expect("the range's end");
}

fn ask(t: &mut Target, index: u64, offset: u64, stream: StreamId) {
    let want = t.core.ask_range(index, offset, stream, None);
    assert!(
        matches!(want, Some(Message::WantRange { len, .. }) if len == RANGE.min(SIZE - offset))
    );
}

#[test]
fn a_file_s_ranges_come_on_their_own_streams_in_any_order() {
    let mut t = streamed(SIZE);
    for (k, stream) in [S1, S2, S0, S1, S2].into_iter().enumerate() {
        ask(&mut t, 0, k as u64 * RANGE, stream);
    }
    assert!(t.core.is_ranged(0));
    // The last range first, then the others interleaved across streams.
    deliver_range(&mut t, S2, 0, 4 * RANGE);
    on(&mut t, S1, data_at(0, 0, 100)).unwrap();
    on(&mut t, S2, data_at(0, RANGE, 10)).unwrap();
    on(&mut t, S1, hole(0, 100, RANGE - 100)).unwrap();
    on(&mut t, S2, hole(0, RANGE + 10, RANGE - 10)).unwrap();
    on(&mut t, S1, range_end(0, 0, RANGE)).unwrap();
    on(&mut t, S2, range_end(0, RANGE, RANGE)).unwrap();
    deliver_range(&mut t, S0, 0, 2 * RANGE);
    deliver_range(&mut t, S1, 0, 3 * RANGE);
    let ends = t.received.iter().filter(|(_, m)| *m == "RangeEnd").count();
    assert_eq!(ends, 5, "every RangeEnd is passed on to be verified");
    assert_eq!(t.core.handle_file(0, FileOutcome::Committed), Verdict::Done);
    assert!(!t.core.is_ranged(0), "committed, it is resolved");
}

#[test]
fn a_piece_on_another_stream_than_its_range_s_is_refused() {
    let mut t = streamed(SIZE);
    ask(&mut t, 0, 0, S1);
    let text = refused(on(&mut t, S2, data_at(0, 0, 10)));
    assert!(
        text.contains("on stream 2; its range was asked on stream 1"),
        "{text}"
    );
}

#[test]
fn a_piece_that_skips_ahead_or_crosses_its_range_s_end_is_refused() {
    let mut t = streamed(SIZE);
    ask(&mut t, 0, 0, S1);
    on(&mut t, S1, data_at(0, 0, 10)).unwrap();
    let text = refused(on(&mut t, S1, data_at(0, 20, 10)));
    assert!(text.contains("at offset 20, expected 10"), "{text}");

    let mut t = streamed(SIZE);
    ask(&mut t, 0, 0, S1);
    ask(&mut t, 0, RANGE, S1);
    let text = refused(on(&mut t, S1, hole(0, 0, RANGE + 1)));
    assert!(text.contains("goes past the end of its range"), "{text}");
}

#[test]
fn a_piece_of_a_range_not_asked_is_refused() {
    let mut t = streamed(SIZE);
    ask(&mut t, 0, 0, S1);
    let text = refused(on(&mut t, S1, data_at(0, 2 * RANGE, 10)));
    assert!(text.contains("in none of its ranges asked"), "{text}");
    let mut t = streamed(SIZE);
    ask(&mut t, 0, 0, S1);
    let text = refused(on(&mut t, S1, range_end(0, RANGE, RANGE)));
    assert!(text.contains("no range of it is asked"), "{text}");
}

#[test]
fn a_range_end_before_all_its_bytes_or_of_another_length_is_refused() {
    let mut t = streamed(SIZE);
    ask(&mut t, 0, 0, S1);
    on(&mut t, S1, hole(0, 0, RANGE - 1)).unwrap();
    let text = refused(on(&mut t, S1, range_end(0, 0, RANGE)));
    assert!(
        text.contains("after 8388607 of its 8388608 bytes"),
        "{text}"
    );

    let mut t = streamed(SIZE);
    ask(&mut t, 0, 4 * RANGE, S1);
    on(&mut t, S1, hole(0, 4 * RANGE, 5)).unwrap();
    let text = refused(on(&mut t, S1, range_end(0, 4 * RANGE, RANGE)));
    assert!(text.contains("the range asked has 5"), "{text}");
}

#[test]
fn same_is_taken_only_after_the_target_said_what_it_holds() {
    let mut t = streamed(SIZE);
    ask(&mut t, 0, 0, S1);
    let same = Message::RangeEnd {
        index: 0,
        offset: 0,
        len: RANGE,
        same: true,
        cv: [9; 32],
    };
    let text = refused(on(&mut t, S1, same.clone()));
    assert!(text.contains("did not say it held these"), "{text}");

    let mut t = streamed(SIZE);
    let want = t.core.ask_range(0, 0, S1, Some([9; 32]));
    assert!(matches!(
        want,
        Some(Message::WantRange {
            have: true,
            cv: [9, ..],
            ..
        })
    ));
    on(&mut t, S1, same).expect("same after have, with the target's value");
    let other = Message::RangeEnd {
        index: 0,
        offset: RANGE,
        len: RANGE,
        same: true,
        cv: [9; 32],
    };
    let _ = t.core.ask_range(0, RANGE, S1, Some([8; 32]));
    let text = refused(on(&mut t, S1, other));
    assert!(
        text.contains("did not say it held these"),
        "another value: {text}"
    );
}

#[test]
fn whole_file_frames_for_a_file_in_ranges_are_refused() {
    for frame in [
        end_at(0, SIZE),
        Message::Delta {
            index: 0,
            offset: 0,
            len: 1,
            bytes: bytes::Bytes::from_static(b"x"),
        },
    ] {
        let mut t = streamed(SIZE);
        ask(&mut t, 0, 0, S1);
        let name = frame.name();
        let text = refused(on(&mut t, S1, frame));
        assert!(text.contains("which was asked in ranges"), "{name}: {text}");
    }
}

#[test]
fn a_range_that_does_not_verify_is_asked_again_once_then_the_file_fails_and_drains() {
    let mut t = streamed(SIZE);
    ask(&mut t, 0, 0, S1);
    ask(&mut t, 0, RANGE, S2);
    deliver_range(&mut t, S1, 0, 0);
    assert_eq!(t.core.handle_range_mismatch(0, 0), Verdict::Resend);
    ask(&mut t, 0, 0, S1);
    deliver_range(&mut t, S1, 0, 0);
    assert_eq!(t.core.handle_range_mismatch(0, 0), Verdict::Failed);
    // Range 1 was open on stream 2: its frames drain up to its end, then nothing more.
    on(&mut t, S2, hole(0, RANGE, RANGE)).expect("draining");
    on(&mut t, S2, range_end(0, RANGE, RANGE)).expect("draining ends");
    let text = refused(on(&mut t, S2, hole(0, RANGE, 1)));
    assert!(text.contains("after its FileEnd or FileFailed"), "{text}");
    assert_eq!(
        t.core.ask_range(0, 2 * RANGE, S0, None),
        None,
        "a failed file's ranges are not asked"
    );
    assert_eq!(t.core.handle_file(0, FileOutcome::Aborted), Verdict::Done);
    assert!(!t.core.is_ranged(0));
}

#[test]
fn file_failed_ends_the_file_and_its_other_open_ranges_drain() {
    let mut t = streamed(SIZE);
    ask(&mut t, 0, 0, S1);
    ask(&mut t, 0, RANGE, S1);
    ask(&mut t, 0, 2 * RANGE, S2);
    on(&mut t, S1, data_at(0, 0, 10)).unwrap();
    let failed = Message::FileFailed {
        index: 0,
        reason: FileFailure::Changed,
        message: "changed".into(),
    };
    let text = refused(on(&mut t, S0, failed.clone()));
    assert!(text.contains("where none of its ranges is open"), "{text}");

    let mut t = streamed(SIZE);
    ask(&mut t, 0, 0, S1);
    ask(&mut t, 0, RANGE, S1);
    ask(&mut t, 0, 2 * RANGE, S2);
    on(&mut t, S1, data_at(0, 0, 10)).unwrap();
    on(&mut t, S1, failed).expect("the source gives up on the file");
    // The second range on stream 1 and the one on stream 2 still end.
    on(&mut t, S1, deliver_hole(RANGE)).unwrap();
    on(&mut t, S1, range_end(0, RANGE, RANGE)).unwrap();
    on(&mut t, S2, range_end(0, 2 * RANGE, RANGE)).unwrap();
    let text = refused(on(&mut t, S2, range_end(0, 2 * RANGE, RANGE)));
    assert!(text.contains("after its FileEnd or FileFailed"), "{text}");
    assert_eq!(t.core.handle_file(0, FileOutcome::Aborted), Verdict::Done);
}

fn deliver_hole(offset: u64) -> Message {
    hole(0, offset, RANGE)
}

#[test]
fn a_lost_stream_s_open_ranges_are_asked_again_and_its_ended_ones_are_not() {
    let mut t = streamed(SIZE);
    ask(&mut t, 0, 0, S1);
    ask(&mut t, 0, RANGE, S1);
    ask(&mut t, 0, 2 * RANGE, S2);
    deliver_range(&mut t, S1, 0, 0);
    on(&mut t, S1, hole(0, RANGE, 10)).unwrap();
    t.core.stream_lost(S1);
    assert_eq!(transmit(&mut t), [Message::StreamGone { stream: 1 }]);
    assert_eq!(reasks(&mut t), [], "not before the source said it too");
    on(&mut t, S0, Message::StreamGone { stream: 1 }).unwrap();
    assert_eq!(
        reasks(&mut t),
        [Reask {
            index: 0,
            asked: Asked::Ranged,
            lost: S1,
            range: Some(RANGE),
        }]
    );
    // Asked again on stream 2, it starts over at its first byte there.
    ask(&mut t, 0, RANGE, S2);
    deliver_range(&mut t, S2, 0, RANGE);
    deliver_range(&mut t, S2, 0, 2 * RANGE);
}

#[test]
fn a_failed_file_is_not_acknowledged_while_a_range_of_it_drains() {
    // Files f0..f3; f0 in ranges on streams 1 and 2, the others delivered.
    let mut t = streamed(SIZE);
    ask(&mut t, 0, 0, S1);
    ask(&mut t, 0, RANGE, S2);
    for index in 1..4 {
        t.core.handle_asked_on(index, Asked::Whole, S0);
        on(&mut t, S0, data_at(index, 0, SIZE as usize)).unwrap();
        on(&mut t, S0, end_at(index, SIZE)).unwrap();
        assert_eq!(
            t.core.handle_file(index, FileOutcome::Committed),
            Verdict::Done
        );
    }
    let failed = Message::FileFailed {
        index: 0,
        reason: FileFailure::Changed,
        message: "changed".into(),
    };
    on(&mut t, S1, failed).unwrap();
    assert_eq!(t.core.handle_file(0, FileOutcome::Aborted), Verdict::Done);
    let acks = |t: &mut Target| {
        std::iter::from_fn(|| t.core.poll_transmit())
            .filter_map(|m| match m {
                Message::Ack { through } => Some(through),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(acks(&mut t), [], "range 1 on stream 2 still drains");
    assert!(!t.core.is_settled());
    on(&mut t, S2, hole(0, RANGE, RANGE)).unwrap();
    on(&mut t, S2, range_end(0, RANGE, RANGE)).unwrap();
    assert_eq!(acks(&mut t), [4], "drained: every entry is resolved");
    assert!(t.core.is_settled());
}
