//! The source core in a session over several streams (the `streams` option), against a
//! target played by hand: `Wants` checked entry by entry as `Want`s, work sent on the
//! stream it was asked on, control frames only on stream 0, a `Signature` only on its
//! `Want`'s stream, and a lost stream whose asks are uncounted and whose signatures are
//! released before this side says `StreamGone`.

mod source_util;

use ferry_proto::session::source::{Ask, SourceCore};
use ferry_proto::{Limits, Message, Meta, SessionError, StreamId};
use source_util::*;

const S0: StreamId = StreamId(0);
const S1: StreamId = StreamId(1);
const S2: StreamId = StreamId(2);

/// [`six`] in a session of up to 4 streams, streams 1 and 2 joined.
fn streamed_with(limits: Limits) -> Core {
    let mut core: Core = SourceCore::new(limits, SENDERS, Meta::default()).with_streams(4);
    core.stream_joined(S1);
    core.stream_joined(S2);
    core.list(
        Vec::new(),
        vec![
            file("f0"),
            file("f1"),
            file("f2"),
            file("f3"),
            dir("d4"),
            hard_link("h5", 0),
        ],
        true,
        true,
    );
    drain_transmit(&mut core);
    core
}

fn streamed() -> Core {
    streamed_with(limits())
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

fn wants(indices: &[u64]) -> Message {
    Message::Wants {
        indices: indices.to_vec(),
    }
}

fn gone(stream: u16) -> Message {
    Message::StreamGone { stream }
}

// --- Asks and the stream their work goes on ---

#[test]
fn wants_is_a_want_per_entry_and_the_work_goes_on_its_stream() {
    let mut core = streamed();
    accepted_on(&mut core, S1, wants(&[2, 0]));
    accepted_on(&mut core, S2, want(3));
    let got: Vec<(u64, Ask, &str, StreamId)> = works(&mut core)
        .into_iter()
        .map(|w| (w.index, w.ask, w.file, w.stream))
        .collect();
    assert_eq!(
        got,
        [
            (2, Ask::Whole, "f2", S1),
            (0, Ask::Whole, "f0", S1),
            (3, Ask::Whole, "f3", S2)
        ]
    );
}

#[test]
fn a_session_over_one_stream_gives_stream_zero_work_and_refuses_wants() {
    let mut core = six();
    accepted(&mut core, want(1));
    assert_eq!(works(&mut core)[0].stream, S0);
    refused(&mut core, wants(&[0]), "Wants is not part of this session");
    let mut core = six();
    let text = refused_on(&mut core, S1, want(0), "not a stream of this session");
    assert!(text.contains("Want from the target on stream 1"), "{text}");
}

#[test]
fn each_wants_entry_is_checked_as_a_want() {
    let mut core = streamed();
    refused_on(
        &mut core,
        S1,
        wants(&[0, 4]),
        "entry 4, which is not a listed, unresolved file",
    );
    let mut core = streamed();
    accepted_on(&mut core, S1, want(0));
    accepted_on(&mut core, S2, want(0));
    refused_on(&mut core, S1, wants(&[1, 0]), "asked for twice already");
}

#[test]
fn wants_over_the_limit_or_empty_is_refused() {
    let mut core = streamed_with(Limits {
        max_wants_per_frame: 2,
        ..limits()
    });
    refused_on(
        &mut core,
        S1,
        wants(&[0, 1, 2]),
        "Wants with 3 entries: a frame asks for 1 to 2",
    );
    let mut core = streamed();
    refused_on(&mut core, S1, wants(&[]), "Wants with 0 entries");
}

#[test]
fn control_frames_on_a_data_stream_are_refused() {
    for message in [
        ack(1),
        done(),
        Message::FileError {
            path: b"f1".to_vec(),
            message: "no luck".into(),
        },
        gone(2),
    ] {
        let mut core = streamed();
        let name = message.name();
        refused_on(
            &mut core,
            S1,
            message,
            &format!("{name} from the target on stream 1: only stream 0"),
        );
    }
}

#[test]
fn a_signature_comes_on_the_stream_of_its_want() {
    let mut core = streamed();
    accepted_on(&mut core, S1, want_delta(0));
    refused_on(
        &mut core,
        S2,
        piece(0, 10, true),
        "signature for entry 0 on stream 2; its Want came on stream 1",
    );
    let mut core = streamed();
    accepted_on(&mut core, S1, want_delta(0));
    accepted_on(&mut core, S1, piece(0, 10, true));
    let work = works(&mut core);
    assert_eq!((work[0].stream, work[0].holds_signature()), (S1, true));
}

#[test]
fn files_is_not_the_target_s() {
    let mut core = streamed();
    refused_on(
        &mut core,
        S1,
        Message::Files { files: vec![] },
        "unexpected Files",
    );
}

// --- A lost stream ---

#[test]
fn stream_gone_twice_for_stream_zero_or_an_unjoined_stream_is_refused() {
    let mut core = streamed();
    accepted_on(&mut core, S0, gone(1));
    assert_eq!(drain_transmit(&mut core), [gone(1)]);
    refused_on(
        &mut core,
        S0,
        gone(1),
        "StreamGone for stream 1 from the target twice",
    );
    let mut core = streamed();
    refused_on(&mut core, S0, gone(0), "the control stream cannot be lost");
    let mut core = streamed();
    refused_on(
        &mut core,
        S0,
        gone(3),
        "stream 3 from the target, which never joined",
    );
}

#[test]
fn frames_on_a_gone_stream_are_refused() {
    let mut core = streamed();
    core.stream_lost(S1);
    assert_eq!(drain_transmit(&mut core), [gone(1)]);
    assert!(!core.is_stream_live(S1));
    refused_on(&mut core, S1, want(0), "after that stream was gone");
    // The target's answer is taken, once.
    let mut core = streamed();
    core.stream_lost(S1);
    drain_transmit(&mut core);
    accepted_on(&mut core, S0, gone(1));
    assert_eq!(drain_transmit(&mut core), []);
}

#[test]
fn a_lost_stream_s_asks_are_uncounted_before_stream_gone_goes_out() {
    let mut core = streamed();
    accepted_on(&mut core, S1, want(0));
    accepted_on(&mut core, S1, want(0));
    accepted_on(&mut core, S2, want(1));
    accepted_on(&mut core, S2, want(1));
    accepted_on(&mut core, S0, gone(1));
    assert_eq!(drain_transmit(&mut core), [gone(1)]);
    // The work still queued for stream 1 is dropped; stream 2's stays.
    let left: Vec<(u64, StreamId)> = works(&mut core)
        .iter()
        .map(|w| (w.index, w.stream))
        .collect();
    assert_eq!(left, [(1, S2), (1, S2)]);
    // File 0 may be asked again (twice) on a live stream; file 1 may not.
    accepted_on(&mut core, S2, want(0));
    accepted_on(&mut core, S0, want(0));
    refused_on(&mut core, S2, want(1), "asked for twice already");
}

#[test]
fn a_lost_stream_s_signatures_are_released() {
    let mut core = streamed();
    accepted_on(&mut core, S1, want_delta(0));
    accepted_on(&mut core, S1, piece(0, 60, true));
    accepted_on(&mut core, S1, want_delta(1));
    accepted_on(&mut core, S1, piece(1, 40, false));
    accepted_on(&mut core, S2, want_delta(2));
    accepted_on(&mut core, S2, piece(2, 30, true));
    let handed = works(&mut core);
    assert_eq!(core.signature_bytes(), 130);
    core.stream_lost(S1);
    assert_eq!(
        core.signature_bytes(),
        30,
        "stream 2's signature stays held"
    );
    // A sender of stream 1's work that answers late releases nothing twice.
    core.handle_answered(handed[0].id);
    assert_eq!(core.signature_bytes(), 30);
    core.handle_answered(handed[1].id);
    assert_eq!(core.signature_bytes(), 0);
    // File 1's signature stopped coming: it may be asked again, on a live stream.
    accepted_on(&mut core, S2, want_delta(1));
    accepted_on(&mut core, S2, piece(1, 40, true));
}

#[test]
fn a_file_asked_on_a_lost_stream_still_resolves_as_wanted() {
    let mut core = streamed();
    accepted_on(&mut core, S1, want(0));
    core.stream_lost(S1);
    accepted_on(&mut core, S0, gone(1));
    drain_transmit(&mut core);
    accepted_on(&mut core, S0, ack(1));
    match &events(&mut core)[..] {
        [ferry_proto::session::source::SourceEvent::Resolved(resolved)] => {
            assert!(resolved.files[0].wanted)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_re_ask_before_the_source_heard_of_the_loss_is_refused() {
    // The target may ask again only after both StreamGones: before the source's, the old
    // ask still counts and its signature is still coming.
    let mut core = streamed();
    accepted_on(&mut core, S1, want_delta(0));
    accepted_on(&mut core, S1, piece(0, 10, false));
    refused_on(
        &mut core,
        S2,
        want_delta(0),
        "again while its signature was still coming",
    );
    let mut core = streamed();
    accepted_on(&mut core, S1, want(0));
    accepted_on(&mut core, S1, want(0));
    refused_on(&mut core, S2, want(0), "asked for twice already");
    // After the loss, the same asks are taken.
    let mut core = streamed();
    accepted_on(&mut core, S1, want_delta(0));
    accepted_on(&mut core, S1, piece(0, 10, false));
    core.stream_lost(S1);
    accepted_on(&mut core, S2, want_delta(0));
    accepted_on(&mut core, S2, piece(0, 10, true));
}

#[test]
#[should_panic(expected = "stream 16 joined")]
fn no_session_has_more_streams_than_the_limit() {
    let mut core: Core = SourceCore::new(limits(), SENDERS, Meta::default()).with_streams(100);
    core.stream_joined(StreamId(15));
    core.stream_joined(StreamId(16));
}
