//! The source core against a target played by hand, part two: what a target says of
//! its progress and its end (acks, reports, its errors, `Done`), and what may not come
//! after it.

mod source_util;

use ferry_proto::session::source::{Resolved, SourceCore, SourceEvent};
use ferry_proto::{ChangeKind, EntryKind, ErrorClass, Message, Meta, SessionError, TargetStats};
use source_util::*;

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
        Message::Welcome {
            version: 4,
            space: None,
            cores: 0,
            streams_max: 1,
            key: None,
        },
        "unexpected Welcome from the target",
    );
    let mut core = six();
    refused(
        &mut core,
        Message::Join {
            version: ferry_proto::PROTOCOL_VERSION,
            key: ferry_proto::SessionKey::new([1; 32]),
            stream: 1,
        },
        "unexpected Join from the target",
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

/// The frames of a session over several streams, which no session of this version has:
/// refused with words, whichever the target sends (a listed file is asked for by each).
#[test]
fn frames_of_a_session_over_several_streams_are_refused() {
    for message in [
        Message::Wants { indices: vec![0] },
        Message::Files {
            files: vec![ferry_proto::SmallFile {
                index: 0,
                hash: [0; 32],
                bytes: Default::default(),
            }],
        },
        Message::WantRange {
            index: 0,
            offset: 0,
            len: 1,
            have: false,
            cv: [0; 32],
        },
        Message::RangeEnd {
            index: 0,
            offset: 0,
            len: 1,
            same: false,
            cv: [0; 32],
        },
        Message::StreamGone { stream: 1 },
    ] {
        let name = message.name();
        let mut core = six();
        let text = refused(
            &mut core,
            message,
            &format!("{name} is not part of this session"),
        );
        assert!(text.contains("the target sent a frame"), "{text}");
    }
}
