//! The source core taking a target's asks for ranges of large files (`WantRange`, in a
//! session with the `streams` option), against a target played by hand: an honest range
//! becomes work on the stream it was asked on; a range that is misaligned, of the wrong
//! length, past the end, of a file too small or not a listed file, asked a third time,
//! or asked in a session over one stream, is refused; a lost stream's range asks are
//! uncounted like its whole-file asks.

mod source_util;

use ferry_proto::session::source::{Ask, SourceCore, SourceEvent, MIN_RANGED};
use ferry_proto::{Content, Limits, Message, Meta, SessionError, StreamId, RANGE};
use source_util::*;

const S0: StreamId = StreamId(0);
const S1: StreamId = StreamId(1);
const S2: StreamId = StreamId(2);

/// Five whole ranges and 100 bytes.
const BIG: u64 = 5 * RANGE + 100;

fn sized(name: &'static str, size: u64) -> (ferry_proto::Entry, Option<&'static str>) {
    let content = Content::File {
        size,
        checksum: None,
    };
    (entry(name, content), Some(name))
}

/// A session of up to 4 streams, streams 1 and 2 joined, that listed: f0 of [`BIG`]
/// bytes, f1 one byte short of four ranges, a directory d2, f3 of exactly four ranges.
fn ranged_with(core: Core) -> Core {
    let mut core = core;
    core.list(
        Vec::new(),
        vec![
            sized("f0", BIG),
            sized("f1", MIN_RANGED - 1),
            dir("d2"),
            sized("f3", MIN_RANGED),
        ],
        true,
        true,
    );
    drain_transmit(&mut core);
    core
}

fn ranged() -> Core {
    let mut core: Core = SourceCore::new(limits(), SENDERS, Meta::default()).with_streams(4);
    core.stream_joined(S1);
    core.stream_joined(S2);
    ranged_with(core)
}

fn range(index: u64, offset: u64, len: u64) -> Message {
    Message::WantRange {
        index,
        offset,
        len,
        have: false,
        cv: [0; 32],
    }
}

fn range_have(index: u64, offset: u64, len: u64, cv: [u8; 32]) -> Message {
    Message::WantRange {
        index,
        offset,
        len,
        have: true,
        cv,
    }
}

#[track_caller]
fn refused_on(core: &mut Core, stream: StreamId, message: Message, what: &str) -> String {
    match core.handle_message_on(stream, message) {
        Err(SessionError::Protocol(text)) => {
            assert!(text.contains(what), "{text:?} does not say {what:?}");
            text
        }
        other => panic!("expected a protocol error saying {what:?}, got {other:?}"),
    }
}

#[track_caller]
fn accepted_on(core: &mut Core, stream: StreamId, message: Message) {
    if let Err(e) = core.handle_message_on(stream, message) {
        panic!("refused an honest message: {e}");
    }
}

fn asked(core: &mut Core) -> Vec<(u64, Ask, &'static str, StreamId)> {
    works(core)
        .into_iter()
        .map(|w| (w.index, w.ask, w.file, w.stream))
        .collect()
}

fn ask(offset: u64, len: u64, have: Option<[u8; 32]>) -> Ask {
    Ask::Range { offset, len, have }
}

// --- Honest ranges ---

#[test]
fn a_range_becomes_work_on_its_stream_with_the_target_s_cv_only_if_it_has_the_bytes() {
    let mut core = ranged();
    accepted_on(&mut core, S1, range(0, 0, RANGE));
    accepted_on(&mut core, S2, range_have(0, 2 * RANGE, RANGE, [9; 32]));
    // The last range is the rest of the file; `cv` is ignored without `have`.
    accepted_on(
        &mut core,
        S0,
        Message::WantRange {
            index: 0,
            offset: 5 * RANGE,
            len: 100,
            have: false,
            cv: [5; 32],
        },
    );
    accepted_on(&mut core, S1, range(3, 3 * RANGE, RANGE));
    assert_eq!(
        asked(&mut core),
        [
            (0, ask(0, RANGE, None), "f0", S1),
            (0, ask(2 * RANGE, RANGE, Some([9; 32])), "f0", S2),
            (0, ask(5 * RANGE, 100, None), "f0", S0),
            (3, ask(3 * RANGE, RANGE, None), "f3", S1),
        ]
    );
}

#[test]
fn range_work_holds_no_signature_and_ids_are_distinct() {
    let mut core = ranged();
    accepted_on(&mut core, S1, range(0, 0, RANGE));
    accepted_on(&mut core, S1, range(0, 0, RANGE));
    let work = works(&mut core);
    assert_eq!(work.len(), 2);
    assert_ne!(work[0].id, work[1].id);
    assert!(!work[0].holds_signature() && !work[1].holds_signature());
    assert_eq!(core.signature_bytes(), 0);
}

#[test]
fn a_file_asked_only_in_ranges_resolves_as_wanted() {
    let mut core = ranged();
    accepted_on(&mut core, S1, range(3, 0, RANGE));
    accepted_on(&mut core, S0, ack(4));
    match &events(&mut core)[..] {
        [SourceEvent::Resolved(resolved)] => {
            let wanted: Vec<(u64, bool)> =
                resolved.files.iter().map(|f| (f.index, f.wanted)).collect();
            assert_eq!(wanted, [(0, false), (1, false), (3, true)]);
        }
        other => panic!("{other:?}"),
    }
}

// --- Refused ranges ---

#[test]
fn a_misaligned_offset_is_refused() {
    for offset in [1, RANGE - 1, RANGE + 1024, 3 * RANGE / 2] {
        let mut core = ranged();
        let len = RANGE.min(BIG - offset);
        let text = refused_on(
            &mut core,
            S1,
            range(0, offset, len),
            &format!("a range starts at a multiple of {RANGE}"),
        );
        assert!(
            text.contains(&format!("entry 0 at offset {offset}")),
            "{text}"
        );
    }
}

#[test]
fn a_wrong_length_is_refused() {
    for (offset, len, expected) in [
        (0, RANGE - 1, RANGE),
        (0, RANGE + 1, RANGE),
        (RANGE, 0, RANGE),
        // The last range is shorter: asking a whole RANGE there is asking past the end.
        (5 * RANGE, RANGE, 100),
        (5 * RANGE, 99, 100),
    ] {
        let mut core = ranged();
        refused_on(
            &mut core,
            S1,
            range(0, offset, len),
            &format!("the range at that offset of a {BIG}-byte file is {expected} bytes long"),
        );
    }
}

#[test]
fn a_range_past_the_end_is_refused() {
    for (index, offset) in [(0, 6 * RANGE), (3, MIN_RANGED), (0, u64::MAX - RANGE + 1)] {
        let mut core = ranged();
        refused_on(
            &mut core,
            S1,
            range(index, offset, RANGE),
            "below the file's size",
        );
    }
}

#[test]
fn a_file_under_four_ranges_is_refused() {
    let mut core = ranged();
    let text = refused_on(
        &mut core,
        S1,
        range(1, 0, RANGE),
        &format!("the file has {} bytes", MIN_RANGED - 1),
    );
    assert!(text.contains("only files of at least"), "{text}");
}

#[test]
fn a_directory_an_unlisted_or_a_resolved_entry_is_refused() {
    for index in [2, 4, 99] {
        let mut core = ranged();
        refused_on(
            &mut core,
            S1,
            range(index, 0, RANGE),
            &format!("WantRange for entry {index} at offset 0 ({RANGE} bytes): it is not a listed, unresolved regular file"),
        );
    }
    let mut core = ranged();
    accepted_on(&mut core, S0, ack(1));
    refused_on(
        &mut core,
        S1,
        range(0, 0, RANGE),
        "not a listed, unresolved regular file",
    );
}

#[test]
fn a_third_ask_of_one_range_is_refused_and_other_ranges_are_counted_apart() {
    let mut core = ranged();
    accepted_on(&mut core, S1, range(0, RANGE, RANGE));
    accepted_on(&mut core, S2, range_have(0, RANGE, RANGE, [1; 32]));
    // Another range of the same file, and the whole file, have their own counts.
    accepted_on(&mut core, S1, range(0, 0, RANGE));
    accepted_on(&mut core, S1, range(0, 0, RANGE));
    accepted_on(&mut core, S1, want(0));
    let text = refused_on(
        &mut core,
        S1,
        range(0, RANGE, RANGE),
        "that range was asked for 2 times already",
    );
    assert!(
        text.contains(&format!("entry 0 at offset {RANGE}")),
        "{text}"
    );
}

#[test]
fn a_range_of_a_file_whose_signature_is_coming_is_refused() {
    let mut core = ranged();
    accepted_on(&mut core, S1, want_delta(0));
    refused_on(
        &mut core,
        S2,
        range(0, 0, RANGE),
        "the file's signature is still coming",
    );
}

#[test]
fn want_range_without_the_streams_option_is_refused() {
    let core: Core = SourceCore::new(limits(), SENDERS, Meta::default());
    let mut core = ranged_with(core);
    refused_on(
        &mut core,
        S0,
        range(0, 0, RANGE),
        "WantRange is not part of this session",
    );
    assert!(works(&mut core).is_empty());
}

#[test]
fn want_range_on_a_stream_that_never_joined_is_refused() {
    let mut core = ranged();
    refused_on(
        &mut core,
        StreamId(3),
        range(0, 0, RANGE),
        "WantRange from the target on stream 3, which is not a stream of this session",
    );
}

// --- A lost stream ---

#[test]
fn a_range_asked_on_a_lost_stream_may_be_asked_twice_more() {
    let mut core = ranged();
    accepted_on(&mut core, S1, range(0, RANGE, RANGE));
    accepted_on(&mut core, S2, range(0, 2 * RANGE, RANGE));
    accepted_on(&mut core, S2, range(0, 2 * RANGE, RANGE));
    accepted_on(&mut core, S1, range(0, 3 * RANGE, RANGE));
    core.stream_lost(S1);
    assert_eq!(
        drain_transmit(&mut core),
        [Message::StreamGone { stream: 1 }]
    );
    // Stream 1's queued range work is dropped, stream 2's stays.
    let left: Vec<(Ask, StreamId)> = works(&mut core)
        .into_iter()
        .map(|w| (w.ask, w.stream))
        .collect();
    assert_eq!(
        left,
        [
            (ask(2 * RANGE, RANGE, None), S2),
            (ask(2 * RANGE, RANGE, None), S2)
        ]
    );
    // The range asked once on stream 1 is asked twice more, then no more.
    accepted_on(&mut core, S2, range(0, RANGE, RANGE));
    accepted_on(&mut core, S0, range(0, RANGE, RANGE));
    refused_on(&mut core, S2, range(0, RANGE, RANGE), "asked for 2 times");
    // The range asked twice on stream 2 is not uncounted.
    let mut core = ranged();
    accepted_on(&mut core, S2, range(0, 2 * RANGE, RANGE));
    accepted_on(&mut core, S2, range(0, 2 * RANGE, RANGE));
    core.stream_lost(S1);
    refused_on(
        &mut core,
        S0,
        range(0, 2 * RANGE, RANGE),
        "asked for 2 times",
    );
}

#[test]
fn a_range_asked_on_both_a_lost_and_a_live_stream_keeps_the_live_ask() {
    let mut core = ranged();
    accepted_on(&mut core, S1, range(0, 0, RANGE));
    accepted_on(&mut core, S2, range(0, 0, RANGE));
    accepted_on(&mut core, S0, Message::StreamGone { stream: 1 });
    accepted_on(&mut core, S2, range(0, 0, RANGE));
    refused_on(&mut core, S0, range(0, 0, RANGE), "asked for 2 times");
}

#[test]
fn limits_do_not_change_what_a_range_is() {
    // The range size is the protocol's, whatever the session's other bounds.
    let core: Core = SourceCore::new(
        Limits {
            data_chunk: 1024,
            ..limits()
        },
        SENDERS,
        Meta::default(),
    )
    .with_streams(2);
    let mut core = ranged_with(core);
    accepted_on(&mut core, S0, range(0, 4 * RANGE, RANGE));
    assert_eq!(asked(&mut core)[0].1, ask(4 * RANGE, RANGE, None));
}
