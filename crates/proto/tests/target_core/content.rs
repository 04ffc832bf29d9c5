//! A wanted file's content, frame by frame: pieces continue where the last one ended,
//! stay within the listed size and reach it; a delta only for a file asked as one; a
//! resumed file starts at the resume offset or over from 0. The in-process twins of the
//! receiver cases in `tests/it/hostile/` (offsets, sizes, deltas).

use ferry_proto::session::target::{Asked, FileOutcome, Verdict};
use ferry_proto::Message;

use super::*;

fn one_file(size: u64, asked: Asked) -> Target {
    let mut t = Target::new();
    t.ask_as.insert(0, asked);
    t.send(list("", 0, vec![file("a", size)], true)).unwrap();
    t
}

fn delta(index: u64, offset: u64, len: u64) -> Message {
    Message::Delta {
        index,
        offset,
        len,
        bytes: bytes::Bytes::new(),
    }
}

fn hole(index: u64, offset: u64, len: u64) -> Message {
    Message::Hole { index, offset, len }
}

#[test]
fn pieces_that_follow_each_other_to_the_listed_size_are_accepted() {
    let mut t = one_file(10, Asked::Whole);
    t.send(data_at(0, 0, 4)).unwrap();
    t.send(hole(0, 4, 3)).unwrap();
    t.send(data_at(0, 7, 3)).unwrap();
    t.send(end_at(0, 10)).unwrap();
    assert_eq!(t.file_done(0, FileOutcome::Committed), Verdict::Done);
    assert_eq!(t.last_ack(), 1);
}

#[test]
fn a_piece_that_leaves_a_gap_is_refused() {
    let mut t = one_file(10, Asked::Whole);
    t.send(data_at(0, 0, 4)).unwrap();
    let e = refused(t.send(data_at(0, 5, 1)));
    assert!(
        e.contains("Data for entry 0 at offset 5, expected 4"),
        "{e}"
    );
}

#[test]
fn a_piece_that_overlaps_is_refused() {
    let mut t = one_file(10, Asked::Whole);
    t.send(data_at(0, 0, 4)).unwrap();
    let e = refused(t.send(hole(0, 2, 1)));
    assert!(
        e.contains("Hole for entry 0 at offset 2, expected 4"),
        "{e}"
    );
}

#[test]
fn a_piece_past_the_listed_size_is_refused() {
    let mut t = one_file(4, Asked::Whole);
    let e = refused(t.send(data_at(0, 0, 5)));
    assert!(
        e.contains("writes past its declared size of 4 bytes"),
        "{e}"
    );
}

#[test]
fn a_hole_whose_end_overflows_is_refused() {
    let mut t = one_file(4, Asked::Whole);
    t.send(data_at(0, 0, 1)).unwrap();
    let e = refused(t.send(hole(0, 1, u64::MAX)));
    assert!(e.contains("writes past its declared size"), "{e}");
}

#[test]
fn a_file_that_ends_short_is_refused() {
    let mut t = one_file(10, Asked::Whole);
    t.send(data_at(0, 0, 4)).unwrap();
    let e = refused(t.send(end_at(0, 10)));
    assert!(e.contains("ended at 4 bytes of 10 declared"), "{e}");
}

#[test]
fn a_file_end_with_another_size_is_refused() {
    let mut t = one_file(4, Asked::Whole);
    t.send(data_at(0, 0, 4)).unwrap();
    let e = refused(t.send(end_at(0, 5)));
    assert!(e.contains("(FileEnd says 5)"), "{e}");
}

#[test]
fn an_empty_file_ends_at_once() {
    let mut t = one_file(0, Asked::Whole);
    t.send(end_at(0, 0)).unwrap();
}

#[test]
fn a_delta_for_a_file_asked_for_whole_is_refused() {
    let mut t = one_file(10, Asked::Whole);
    let e = refused(t.send(delta(0, 0, 10)));
    assert!(
        e.contains("Delta for entry 0, which was asked for whole"),
        "{e}"
    );
}

#[test]
fn a_delta_for_a_file_asked_as_one_is_accepted_and_checked() {
    let mut t = one_file(10, Asked::Delta);
    t.send(delta(0, 0, 6)).unwrap();
    t.send(data_at(0, 6, 4)).unwrap();
    t.send(end_at(0, 10)).unwrap();
    let mut t = one_file(10, Asked::Delta);
    let e = refused(t.send(delta(0, 0, 11)));
    assert!(e.contains("Delta for entry 0 writes past"), "{e}");
}

#[test]
fn a_resumed_file_goes_on_from_its_offset() {
    let mut t = one_file(10, Asked::Resume { offset: 6 });
    t.send(data_at(0, 6, 4)).unwrap();
    t.send(end_at(0, 10)).unwrap();
}

#[test]
fn a_resumed_file_may_start_over_from_zero() {
    let mut t = one_file(10, Asked::Resume { offset: 6 });
    t.send(data_at(0, 0, 10)).unwrap();
    t.send(end_at(0, 10)).unwrap();
}

#[test]
fn a_resumed_file_starting_elsewhere_is_refused() {
    let mut t = one_file(10, Asked::Resume { offset: 6 });
    let e = refused(t.send(data_at(0, 3, 1)));
    assert!(e.contains("at offset 3, expected 6"), "{e}");
}

#[test]
fn only_the_first_piece_of_a_resumed_file_may_start_over() {
    let mut t = one_file(10, Asked::Resume { offset: 6 });
    t.send(data_at(0, 6, 2)).unwrap();
    let e = refused(t.send(data_at(0, 0, 1)));
    assert!(e.contains("at offset 0, expected 8"), "{e}");
}

#[test]
fn a_resent_file_starts_again_from_zero() {
    let mut t = one_file(2, Asked::Whole);
    t.send(data_at(0, 0, 2)).unwrap();
    t.send(end_at(0, 2)).unwrap();
    assert_eq!(t.file_done(0, FileOutcome::Mismatch), Verdict::Resend);
    t.send(data_at(0, 0, 2)).unwrap();
    t.send(end_at(0, 2)).unwrap();
}

#[test]
fn frames_before_the_target_asked_are_refused() {
    let mut t = Target::new();
    t.core
        .handle_message(list("", 0, vec![file("a", 1)], true))
        .unwrap();
    if let Some(TargetWork::Plan(_)) = t.core.poll_work() {
        t.core.handle_planned(PlanOutcome {
            wants: vec![0],
            ..PlanOutcome::default()
        });
    }
    // The target is still computing the signature: no Want has gone out.
    let e = refused(t.send(data(0)));
    assert!(e.contains("which the target did not ask for yet"), "{e}");
}
