//! The source core against a target played by hand, part one: the listing window,
//! and what a target may ask for (wants, resumes, signatures). Each rule is accepted
//! when the target keeps it and refused when it does not, in-process, in microseconds.
//! The real-process cases (a hostile target over TLS) are in the `it` binary's
//! `hostile_target.rs`; a test here that mirrors one says so.

mod source_util;

use ferry_proto::session::source::{Ask, SourceCore};
use ferry_proto::{Message, Meta};
use source_util::*;

// --- Listing and the window ---

#[test]
fn root_goes_out_first_then_the_frames_numbered_from_zero() {
    let mut core: Core = SourceCore::new(limits(), SENDERS, Meta::default());
    core.list(Vec::new(), vec![file("a"), dir("d")], false, true);
    core.list(Vec::new(), vec![file("b")], true, true);
    core.list(b"d".to_vec(), vec![], true, false);
    let sent = drain_transmit(&mut core);
    assert!(matches!(sent[0], Message::Root { .. }), "{sent:?}");
    let frames: Vec<(u64, usize, bool, bool)> = sent[1..]
        .iter()
        .map(|m| match m {
            Message::List {
                first,
                entries,
                dir_done,
                dir_complete,
                ..
            } => (*first, entries.len(), *dir_done, *dir_complete),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        frames,
        [(0, 2, false, true), (2, 1, true, true), (3, 0, true, false)]
    );
    assert_eq!(core.listed(), 3);
}

#[test]
fn list_room_is_the_window_past_the_last_ack() {
    let mut core = six();
    assert_eq!(core.list_room(), 8 - 6);
    accepted(&mut core, ack(4));
    assert_eq!(core.list_room(), 4 + 8 - 6);
}

#[test]
fn a_full_window_waits_for_an_ack() {
    let mut core = six();
    core.list(Vec::new(), vec![file("g"), file("h")], true, true);
    assert_eq!(core.list_room(), 0);
    accepted(&mut core, ack(1));
    assert_eq!(core.list_room(), 1);
}

#[test]
fn list_end_says_how_many_were_listed_and_closes_the_window() {
    let mut core = six();
    core.list_end(3);
    assert_eq!(
        drain_transmit(&mut core),
        [Message::ListEnd {
            entries: 6,
            read_errors: 3
        }]
    );
    assert_eq!(core.list_room(), 0);
}

// --- Wants, resumes and signatures ---

#[test]
fn a_want_gives_a_sender_the_file_with_its_payload() {
    let mut core = six();
    accepted(&mut core, want(2));
    let work = works(&mut core);
    assert_eq!(work.len(), 1);
    assert_eq!(
        (work[0].index, &work[0].ask, work[0].file),
        (2, &Ask::Whole, "f2")
    );
}

#[test]
fn a_resume_gives_a_sender_the_targets_claim_as_it_is() {
    // Mirrors hostile_target::a_resume_claiming_more_than_the_file_is_answered_from_zero:
    // the core passes the claim on; the sender checks it against the file.
    let mut core = six();
    accepted(&mut core, resume(1, u64::MAX));
    let work = works(&mut core);
    assert_eq!(
        work[0].ask,
        Ask::Resume {
            offset: u64::MAX,
            hash: [7; 32]
        }
    );
    assert_eq!(work[0].file, "f1");
}

#[test]
fn a_delta_want_waits_for_the_last_signature_piece() {
    let mut core = six();
    accepted(&mut core, want_delta(3));
    accepted(&mut core, piece(3, 40, false));
    assert!(works(&mut core).is_empty());
    accepted(&mut core, piece(3, 20, true));
    let work = works(&mut core);
    assert_eq!(work[0].ask, Ask::Delta(vec![0xab; 60]));
    assert_eq!((work[0].index, work[0].file), (3, "f3"));
}

#[test]
fn a_want_for_an_entry_never_listed_is_refused() {
    // Mirrors hostile_target::a_want_for_an_entry_never_listed_is_a_protocol_error.
    let mut core = six();
    refused(
        &mut core,
        want(9999),
        "entry 9999, which is not a listed, unresolved file",
    );
}

#[test]
fn a_want_for_a_directory_is_refused() {
    let mut core = six();
    refused(
        &mut core,
        want(4),
        "entry 4, which is not a listed, unresolved file",
    );
}

#[test]
fn a_want_for_a_hard_link_is_refused() {
    let mut core = six();
    refused(&mut core, want_delta(5), "entry 5, which is not a listed");
}

#[test]
fn a_want_for_a_resolved_file_is_refused() {
    let mut core = six();
    accepted(&mut core, ack(2));
    refused(
        &mut core,
        want(1),
        "entry 1, which is not a listed, unresolved file",
    );
}

#[test]
fn a_second_ask_after_a_mismatch_is_accepted() {
    let mut core = six();
    accepted(&mut core, want_delta(0));
    accepted(&mut core, piece(0, 10, true));
    accepted(&mut core, want(0));
    assert_eq!(works(&mut core).len(), 2);
}

#[test]
fn a_third_want_for_one_file_is_refused() {
    // Mirrors hostile_target::a_third_want_for_one_file_is_a_protocol_error.
    let mut core = six();
    accepted(&mut core, want(0));
    accepted(&mut core, want(0));
    refused(&mut core, want(0), "asked for twice already");
}

#[test]
fn a_third_ask_as_a_resume_is_refused() {
    let mut core = six();
    accepted(&mut core, resume(0, 5));
    accepted(&mut core, want(0));
    refused(&mut core, resume(0, 5), "target asked to resume entry 0");
}

#[test]
fn a_resume_for_an_entry_never_listed_is_refused() {
    let mut core = six();
    refused(&mut core, resume(6, 0), "target asked to resume entry 6");
}

#[test]
fn four_signatures_may_come_at_once() {
    let mut core = six();
    for index in 0..4 {
        accepted(&mut core, want_delta(index));
        accepted(&mut core, piece(index, 10, false));
    }
    for index in 0..4 {
        accepted(&mut core, piece(index, 10, true));
    }
    assert_eq!(works(&mut core).len(), 4);
}

#[test]
fn a_fifth_signature_at_once_is_refused() {
    let mut core = listed((0..5).map(|_| file("f")).collect());
    for index in 0..4 {
        accepted(&mut core, want_delta(index));
    }
    refused(
        &mut core,
        want_delta(4),
        "more than 4 signatures at once (entry 4",
    );
}

#[test]
fn an_ended_signature_makes_room_for_the_next() {
    let mut core = listed((0..5).map(|_| file("f")).collect());
    for index in 0..4 {
        accepted(&mut core, want_delta(index));
    }
    accepted(&mut core, piece(2, 1, true));
    accepted(&mut core, want_delta(4));
}

#[test]
fn a_signature_for_a_file_asked_for_whole_is_refused() {
    let mut core = six();
    accepted(&mut core, want(1));
    refused(
        &mut core,
        piece(1, 10, true),
        "signature for entry 1, which was not asked for as a delta",
    );
}

#[test]
fn a_signature_for_an_entry_never_asked_for_is_refused() {
    let mut core = six();
    refused(
        &mut core,
        piece(2, 10, false),
        "signature for entry 2, which was not asked",
    );
}

#[test]
fn a_signature_piece_after_the_last_is_refused() {
    let mut core = six();
    accepted(&mut core, want_delta(2));
    accepted(&mut core, piece(2, 10, true));
    refused(
        &mut core,
        piece(2, 10, false),
        "entry 2, which was not asked for as a delta",
    );
}

#[test]
fn a_signature_of_exactly_the_limit_is_accepted() {
    let mut core = six();
    accepted(&mut core, want_delta(0));
    accepted(&mut core, piece(0, 60, false));
    accepted(&mut core, piece(0, 40, true));
}

#[test]
fn a_signature_over_the_size_limit_is_refused_before_it_is_buffered() {
    // Mirrors hostile_target::a_signature_over_the_size_limit_is_refused_before_it_is_buffered.
    let mut core = six();
    accepted(&mut core, want_delta(0));
    accepted(&mut core, piece(0, 60, false));
    refused(
        &mut core,
        piece(0, 41, false),
        "signature for entry 0 exceeds 100 bytes",
    );
    assert_eq!(core.signature_bytes(), 60, "the refused piece was kept");
}

#[test]
fn signatures_held_past_the_window_and_the_senders_are_refused() {
    // 300 of window plus 2 senders x 100: 500 bytes. Five signatures of 100 end and
    // are handed to senders that have not answered; the sixth's first byte is over.
    let mut core = listed((0..7).map(|_| file("f")).collect());
    for index in 0..5 {
        accepted(&mut core, want_delta(index));
        accepted(&mut core, piece(index, 100, true));
    }
    assert_eq!(core.signature_bytes(), 500);
    accepted(&mut core, want_delta(5));
    refused(
        &mut core,
        piece(5, 1, false),
        "target sent 501 bytes of signatures for files it has not had yet, over the limit of 500",
    );
}

#[test]
fn answered_work_makes_room_for_more_signatures() {
    let mut core = listed((0..7).map(|_| file("f")).collect());
    for index in 0..5 {
        accepted(&mut core, want_delta(index));
        accepted(&mut core, piece(index, 100, true));
    }
    let first = works(&mut core).remove(0);
    core.handle_answered(first.id);
    accepted(&mut core, want_delta(5));
    accepted(&mut core, piece(5, 100, true));
    assert_eq!(core.signature_bytes(), 500);
}

#[test]
fn asking_again_while_the_signature_is_still_coming_is_refused() {
    let mut core = six();
    accepted(&mut core, want_delta(1));
    accepted(&mut core, piece(1, 10, false));
    refused(
        &mut core,
        want_delta(1),
        "entry 1 again while its signature was still coming",
    );
}

#[test]
fn a_whole_want_while_the_signature_is_still_coming_is_refused() {
    let mut core = six();
    accepted(&mut core, want_delta(1));
    refused(
        &mut core,
        want(1),
        "entry 1 again while its signature was still coming",
    );
}
