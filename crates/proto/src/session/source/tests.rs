//! The core's own bookkeeping: work ids, the signature bytes it holds, the state it is in.
//! The rules as a target meets them are in `tests/source_core.rs`.

use super::*;
use crate::model::Content;

fn limits() -> Limits {
    Limits {
        window: 4,
        max_signature: 100,
        signature_window: 150,
        ..Limits::default()
    }
}

fn file(name: &str) -> (Entry, Option<u32>) {
    let entry = Entry {
        name: name.as_bytes().to_vec(),
        meta: Meta::default(),
        content: Content::File {
            size: 10,
            checksum: None,
        },
    };
    (entry, Some(7))
}

fn listed_two() -> SourceCore<u32> {
    let mut core = SourceCore::new(limits(), 1, Meta::default());
    core.list(Vec::new(), vec![file("a"), file("b")], true, true);
    core
}

#[test]
fn work_ids_are_distinct_for_two_asks_of_one_file() {
    let mut core = listed_two();
    let want = Message::Want {
        index: 0,
        delta: false,
    };
    core.handle_message(want.clone()).unwrap();
    core.handle_message(want).unwrap();
    let (a, b) = (core.poll_work().unwrap(), core.poll_work().unwrap());
    assert_ne!(a.id, b.id);
}

#[test]
fn signature_bytes_are_held_from_the_first_piece_until_answered() {
    let mut core = listed_two();
    core.handle_message(Message::Want {
        index: 1,
        delta: true,
    })
    .unwrap();
    let piece = |last| Message::Signature {
        index: 1,
        bytes: vec![0u8; 30].into(),
        last,
    };
    core.handle_message(piece(false)).unwrap();
    assert_eq!(core.signature_bytes(), 30);
    core.handle_message(piece(true)).unwrap();
    assert_eq!(core.signature_bytes(), 60);
    let work = core.poll_work().unwrap();
    assert_eq!(work.ask, Ask::Delta(vec![0u8; 60]));
    core.handle_answered(work.id);
    assert_eq!(core.signature_bytes(), 0);
    // Answering twice, or work that held nothing, releases nothing more.
    core.handle_answered(work.id);
    assert_eq!(core.signature_bytes(), 0);
}

#[test]
fn a_whole_file_answered_releases_no_signature_bytes() {
    let mut core = listed_two();
    core.handle_message(Message::Want {
        index: 1,
        delta: true,
    })
    .unwrap();
    core.handle_message(Message::Signature {
        index: 1,
        bytes: vec![1u8; 40].into(),
        last: false,
    })
    .unwrap();
    core.handle_message(Message::Want {
        index: 0,
        delta: false,
    })
    .unwrap();
    let whole = core.poll_work().unwrap();
    core.handle_answered(whole.id);
    assert_eq!(core.signature_bytes(), 40);
}

#[test]
fn the_bound_on_held_bytes_counts_one_signature_per_sender() {
    let core: SourceCore<u32> = SourceCore::new(limits(), 3, Meta::default());
    assert_eq!(core.signatures.max_held, 150 + 3 * 100);
}

#[test]
fn states_follow_the_listing_and_the_done() {
    let mut core = listed_two();
    assert!(matches!(core.state, State::Listing));
    core.list_end(0);
    assert!(matches!(core.state, State::ExpectDone { entries: 2 }));
    core.handle_message(Message::Ack { through: 2 }).unwrap();
    core.handle_message(Message::Done {
        stats: TargetStats::default(),
    })
    .unwrap();
    assert!(matches!(core.state, State::Done));
    let e = core
        .handle_message(Message::Ack { through: 2 })
        .unwrap_err();
    assert!(matches!(core.state, State::Failed(ref failed) if *failed == e));
}

#[test]
#[should_panic(expected = "check list_room() first")]
fn listing_past_the_window_is_the_drivers_bug() {
    let mut core = listed_two();
    core.list(
        Vec::new(),
        vec![file("c"), file("d"), file("e")],
        true,
        true,
    );
}

#[test]
#[should_panic(expected = "without its payload")]
fn a_file_without_its_payload_is_the_drivers_bug() {
    let mut core: SourceCore<u32> = SourceCore::new(limits(), 1, Meta::default());
    let (entry, _) = file("a");
    core.list(Vec::new(), vec![(entry, None)], true, true);
}

#[test]
fn after_a_failure_listing_does_nothing() {
    let mut core = listed_two();
    let _ = core
        .handle_message(Message::Ack { through: 9 })
        .unwrap_err();
    while core.poll_transmit().is_some() {}
    core.list(Vec::new(), vec![file("c")], true, true);
    core.list_end(0);
    assert_eq!(core.poll_transmit(), None);
    assert_eq!(core.list_room(), 0);
}
