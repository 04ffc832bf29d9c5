//! The source core against a target played by hand: each rule a target can break is
//! accepted when the target is honest and refused when it is not, in-process and in
//! microseconds. The real-process cases (a hostile target over TLS) are in the `it`
//! binary's `hostile_target.rs`; the tests here that mirror one say so.

use ferry_proto::session::source::{Ask, Resolved, SourceCore, SourceEvent, Work};
use ferry_proto::{
    ChangeKind, Content, Entry, EntryKind, ErrorClass, Limits, Message, Meta, SessionError,
    TargetStats,
};

/// Small bounds, so that each is reached in a few messages.
fn limits() -> Limits {
    Limits {
        window: 8,
        max_signature: 100,
        signature_window: 300,
        ..Limits::default()
    }
}

const SENDERS: usize = 2;

fn entry(name: &str, content: Content) -> Entry {
    Entry {
        name: name.as_bytes().to_vec(),
        meta: Meta::default(),
        content,
    }
}

/// A regular file, its payload its name.
fn file(name: &'static str) -> (Entry, Option<&'static str>) {
    let content = Content::File {
        size: 1000,
        checksum: None,
    };
    (entry(name, content), Some(name))
}

fn dir(name: &'static str) -> (Entry, Option<&'static str>) {
    (entry(name, Content::Dir), None)
}

fn hard_link(name: &'static str, leader: u64) -> (Entry, Option<&'static str>) {
    let content = Content::HardLink {
        leader,
        path: b"f0".to_vec(),
    };
    (entry(name, content), None)
}

type Core = SourceCore<&'static str>;

/// A core that listed `entries` in one frame of the root (and drained `Root` and it).
fn listed(entries: Vec<(Entry, Option<&'static str>)>) -> Core {
    let mut core = SourceCore::new(limits(), SENDERS, Meta::default());
    core.list(Vec::new(), entries, true, true);
    drain_transmit(&mut core);
    core
}

/// Files f0..f3, a directory d4, a hard link h5 to f0.
fn six() -> Core {
    listed(vec![
        file("f0"),
        file("f1"),
        file("f2"),
        file("f3"),
        dir("d4"),
        hard_link("h5", 0),
    ])
}

/// As [`six`], with `ListEnd` sent.
fn six_ended() -> Core {
    let mut core = six();
    core.list_end(0);
    drain_transmit(&mut core);
    core
}

fn drain_transmit(core: &mut Core) -> Vec<Message> {
    std::iter::from_fn(|| core.poll_transmit()).collect()
}

fn works(core: &mut Core) -> Vec<Work<&'static str>> {
    std::iter::from_fn(|| core.poll_work()).collect()
}

fn events(core: &mut Core) -> Vec<SourceEvent<&'static str>> {
    std::iter::from_fn(|| core.poll_event()).collect()
}

fn want(index: u64) -> Message {
    Message::Want {
        index,
        delta: false,
    }
}

fn want_delta(index: u64) -> Message {
    Message::Want { index, delta: true }
}

fn resume(index: u64, offset: u64) -> Message {
    Message::Resume {
        index,
        offset,
        hash: [7; 32],
    }
}

fn piece(index: u64, len: usize, last: bool) -> Message {
    Message::Signature {
        index,
        bytes: vec![0xab; len].into(),
        last,
    }
}

fn ack(through: u64) -> Message {
    Message::Ack { through }
}

fn done() -> Message {
    Message::Done {
        stats: TargetStats::default(),
    }
}

/// The protocol error `message` gets, which must say `what`.
#[track_caller]
fn refused(core: &mut Core, message: Message, what: &str) -> String {
    match core.handle_message(message) {
        Err(SessionError::Protocol(text)) => {
            assert!(text.contains(what), "{text:?} does not say {what:?}");
            text
        }
        other => panic!("expected a protocol error saying {what:?}, got {other:?}"),
    }
}

#[track_caller]
fn accepted(core: &mut Core, message: Message) {
    if let Err(e) = core.handle_message(message) {
        panic!("refused an honest message: {e}");
    }
}

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

// --- Acks ---

#[test]
fn an_ack_resolves_files_with_their_payloads_and_counts_links() {
    let mut core = six();
    accepted(&mut core, want(1));
    accepted(&mut core, ack(6));
    let events = events(&mut core);
    let [SourceEvent::Resolved(Resolved {
        through,
        files,
        links,
    })] = &events[..]
    else {
        panic!("{events:?}")
    };
    assert_eq!((*through, *links), (6, 1));
    let files: Vec<(u64, bool, &str)> = files.iter().map(|f| (f.index, f.wanted, f.file)).collect();
    assert_eq!(
        files,
        [
            (0, false, "f0"),
            (1, true, "f1"),
            (2, false, "f2"),
            (3, false, "f3")
        ]
    );
}

#[test]
fn acks_resolve_only_what_is_below_them() {
    let mut core = six();
    accepted(&mut core, ack(2));
    accepted(&mut core, ack(5));
    let resolved: Vec<Vec<u64>> = events(&mut core)
        .into_iter()
        .map(|e| match e {
            SourceEvent::Resolved(r) => r.files.iter().map(|f| f.index).collect(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(resolved, [vec![0, 1], vec![2, 3]]);
}

#[test]
fn a_repeated_ack_is_accepted_and_resolves_nothing() {
    let mut core = six();
    accepted(&mut core, ack(3));
    let _ = events(&mut core);
    accepted(&mut core, ack(3));
    assert!(events(&mut core).is_empty());
}

#[test]
fn an_ack_beyond_the_listing_is_refused() {
    // Mirrors hostile_target::an_ack_beyond_the_listing_is_a_protocol_error.
    let mut core = six();
    refused(
        &mut core,
        ack(1_000_000),
        "acknowledged entries through 1000000, but 6 were listed and 0 acknowledged before",
    );
}

#[test]
fn an_ack_going_back_is_refused() {
    let mut core = six();
    accepted(&mut core, ack(4));
    refused(
        &mut core,
        ack(3),
        "through 3, but 6 were listed and 4 acknowledged before",
    );
}

// --- Done ---

#[test]
fn done_after_every_entry_is_acknowledged_ends_the_session() {
    let mut core = six_ended();
    accepted(&mut core, ack(6));
    let stats = TargetStats {
        files_transferred: 3,
        ..TargetStats::default()
    };
    accepted(
        &mut core,
        Message::Done {
            stats: stats.clone(),
        },
    );
    assert!(core.is_done());
    let events = events(&mut core);
    assert_eq!(events.last(), Some(&SourceEvent::Done(stats)));
}

#[test]
fn an_empty_tree_ends_with_no_ack_at_all() {
    let mut core: Core = SourceCore::new(limits(), SENDERS, Meta::default());
    core.list(Vec::new(), vec![], true, true);
    core.list_end(0);
    accepted(&mut core, done());
    assert!(core.is_done());
}

#[test]
fn done_before_list_end_is_refused() {
    let mut core = six();
    accepted(&mut core, ack(6));
    refused(
        &mut core,
        done(),
        "Done before the listing ended (6 entries listed so far)",
    );
}

#[test]
fn done_with_entries_unacknowledged_is_refused() {
    let mut core = six_ended();
    accepted(&mut core, ack(4));
    refused(
        &mut core,
        done(),
        "Done with entries 4..6 unacknowledged (its last Ack was through 4 of 6 listed)",
    );
}

#[test]
fn a_want_after_done_is_refused() {
    let mut core = six_ended();
    accepted(&mut core, ack(6));
    accepted(&mut core, done());
    refused(&mut core, want(0), "Want from the target after its Done");
}

#[test]
fn a_resume_after_done_is_refused() {
    let mut core = six_ended();
    accepted(&mut core, ack(6));
    accepted(&mut core, done());
    refused(
        &mut core,
        resume(0, 1),
        "Resume from the target after its Done",
    );
}

#[test]
fn a_signature_after_done_is_refused() {
    let mut core = six_ended();
    accepted(&mut core, ack(6));
    accepted(&mut core, done());
    refused(
        &mut core,
        piece(0, 1, true),
        "Signature from the target after its Done",
    );
}

#[test]
fn a_second_done_is_refused() {
    let mut core = six_ended();
    accepted(&mut core, ack(6));
    accepted(&mut core, done());
    refused(&mut core, done(), "Done from the target after its Done");
}

#[test]
fn a_heartbeat_after_done_is_accepted() {
    let mut core = six_ended();
    accepted(&mut core, ack(6));
    accepted(&mut core, done());
    accepted(&mut core, Message::Heartbeat);
    assert!(core.is_done());
}

// --- What else a target may say ---

#[test]
fn the_targets_reports_come_out_as_they_came() {
    let mut core = six();
    let reports = [
        Message::Change {
            path: b"f0".to_vec(),
            kind: ChangeKind::Created,
            entry: EntryKind::File,
        },
        Message::FileError {
            path: b"f1".to_vec(),
            message: "no luck".into(),
        },
        Message::NotApplied {
            path: b"f2".to_vec(),
            owner: true,
            xattrs: 0,
            special: false,
        },
    ];
    for report in reports.clone() {
        accepted(&mut core, report);
    }
    let events = events(&mut core);
    let expected: Vec<_> = reports.into_iter().map(SourceEvent::Report).collect();
    assert_eq!(events, expected);
}

#[test]
fn an_error_from_the_target_stops_with_its_class_and_escaped_words() {
    // Mirrors peer_text::a_hostile_targets_words_reach_the_terminal_escaped (the words;
    // the terminal is the engine's).
    let mut core = six();
    let error = core.handle_message(Message::Error {
        class: ErrorClass::Interrupted,
        message: "stopping \x1b[31mred".into(),
    });
    let Err(SessionError::Peer { class, message }) = error else {
        panic!("{error:?}")
    };
    assert_eq!(class, ErrorClass::Interrupted);
    assert_eq!(message, "target says: stopping \\x1b[31mred");
}

#[test]
fn a_message_only_a_source_sends_is_refused() {
    let mut core = six();
    refused(
        &mut core,
        Message::Data {
            index: 0,
            offset: 0,
            bytes: vec![1].into(),
        },
        "unexpected Data from the target",
    );
}

#[test]
fn a_handshake_message_mid_session_is_refused() {
    let mut core = six();
    refused(
        &mut core,
        Message::Welcome { version: 4 },
        "unexpected Welcome from the target",
    );
}

#[test]
fn heartbeats_are_accepted_while_listing() {
    let mut core = six();
    accepted(&mut core, Message::Heartbeat);
    assert!(events(&mut core).is_empty() && works(&mut core).is_empty());
}

#[test]
fn after_an_error_every_message_gets_the_same_error() {
    let mut core = six();
    let first = refused(&mut core, want(99), "entry 99");
    for message in [want(0), ack(1), Message::Heartbeat] {
        assert_eq!(
            core.handle_message(message),
            Err(SessionError::Protocol(first.clone()))
        );
    }
    assert!(works(&mut core).is_empty());
}
