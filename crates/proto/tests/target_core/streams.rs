//! The target core in a session over several streams (the `streams` option): a file's
//! frames only on the stream it was asked on, control frames only on stream 0, `Files`
//! entries checked as `Data` + `FileEnd` of a file asked whole there, and a lost stream
//! whose files are asked again only once both sides said `StreamGone`.

use super::*;
use ferry_proto::session::target::Reask;
use ferry_proto::{SmallFile, StreamId};

const S0: StreamId = StreamId(0);
const S1: StreamId = StreamId(1);
const S2: StreamId = StreamId(2);

/// A target of a session with up to 4 streams, 1 and 2 joined, that listed files f0..f3
/// of `size` bytes (all wanted; asked on stream 0 until a test asks them elsewhere).
pub(super) fn streamed(size: u64) -> Target {
    let mut t = Target::new();
    t.core = TargetCore::new(
        Filter::default(),
        Limits::default(),
        std::hash::RandomState::new(),
    )
    .with_streams(4);
    t.core.stream_joined(S1);
    t.core.stream_joined(S2);
    t.send(root()).unwrap();
    let files = (0..4).map(|k| file(&format!("f{k}"), size)).collect();
    t.send(list("", 0, files, true)).unwrap();
    t.send(list_end(4)).unwrap();
    t
}

pub(super) fn on(t: &mut Target, stream: StreamId, message: Message) -> Result<(), SessionError> {
    t.core.handle_message_on(stream, message)?;
    t.pump_keeping_transmit();
    Ok(())
}

fn small(index: u64, len: usize) -> SmallFile {
    SmallFile {
        index,
        hash: [3; 32],
        bytes: vec![b'y'; len].into(),
    }
}

fn files(entries: Vec<SmallFile>) -> Message {
    Message::Files { files: entries }
}

pub(super) fn transmit(t: &mut Target) -> Vec<Message> {
    std::iter::from_fn(|| t.core.poll_transmit())
        .filter(|m| !matches!(m, Message::Ack { .. }))
        .collect()
}

pub(super) fn reasks(t: &mut Target) -> Vec<Reask> {
    std::iter::from_fn(|| t.core.poll_reask()).collect()
}

impl Target {
    /// Does the core's work but leaves what it transmits to the test.
    fn pump_keeping_transmit(&mut self) {
        while let Some(work) = self.core.poll_work() {
            if let TargetWork::Receive { index, frame } = work {
                self.received.push((index, frame.name()));
            }
        }
    }
}

// --- Which stream a frame may come on ---

#[test]
fn a_file_s_frames_come_only_on_the_stream_it_was_asked_on() {
    let mut t = streamed(1);
    t.core.handle_asked_on(0, Asked::Whole, S1);
    let text = refused(on(&mut t, S2, data(0)));
    assert!(
        text.contains("Data for entry 0 on stream 2; it was asked on stream 1"),
        "{text}"
    );
    let mut t = streamed(1);
    t.core.handle_asked_on(0, Asked::Whole, S1);
    on(&mut t, S1, data(0)).unwrap();
    let text = refused(on(&mut t, S0, file_end(0)));
    assert!(
        text.contains("on stream 0; it was asked on stream 1"),
        "{text}"
    );
}

#[test]
fn the_same_frames_on_the_asked_stream_are_taken() {
    let mut t = streamed(1);
    t.core.handle_asked_on(0, Asked::Whole, S2);
    on(&mut t, S2, data(0)).unwrap();
    on(&mut t, S2, file_end(0)).unwrap();
    assert_eq!(t.received, [(0, "Data"), (0, "FileEnd")]);
}

#[test]
fn a_control_frame_on_a_data_stream_is_refused() {
    let mut t = Target::new();
    t.core = TargetCore::new(
        Filter::default(),
        Limits::default(),
        std::hash::RandomState::new(),
    )
    .with_streams(2);
    t.core.stream_joined(S1);
    let text = refused(on(&mut t, S1, root()));
    assert!(
        text.contains("Root from the source on stream 1: only stream 0"),
        "{text}"
    );
    t.send(root()).unwrap();
    for message in [list("", 0, vec![file("a", 1)], true), list_end(0)] {
        let name = message.name();
        let text = refused(on(&mut t, S1, message));
        assert!(
            text.contains(&format!("{name} from the source on stream 1")),
            "{text}"
        );
    }
    let text = refused(on(&mut t, S1, Message::StreamGone { stream: 1 }));
    assert!(text.contains("only stream 0"), "{text}");
}

#[test]
fn frames_on_a_stream_that_never_joined_are_refused() {
    let mut t = streamed(1);
    let text = refused(on(&mut t, StreamId(3), Message::Heartbeat));
    assert!(
        text.contains("stream 3, which is not a stream of this session"),
        "{text}"
    );
    let text = refused(on(&mut t, StreamId(9), data(0)));
    assert!(text.contains("not a stream of this session"), "{text}");
}

#[test]
fn without_the_streams_option_only_stream_zero_exists_and_files_are_refused() {
    let mut t = Target::new();
    t.send(root()).unwrap();
    t.send(list("", 0, vec![file("a", 1)], true)).unwrap();
    let text = refused(on(&mut t, S1, data(0)));
    assert!(text.contains("not a stream of this session"), "{text}");
    let text = refused(t.send(files(vec![small(0, 1)])));
    assert!(text.contains("Files is not part of this session"), "{text}");
}

// --- Wants and Files ---

#[test]
fn a_batch_of_asks_is_one_wants_frame_and_files_answer_it_as_data_and_file_end() {
    let mut t = streamed(5);
    let wants = t.core.ask_batch(S1, vec![0, 2, 3]);
    assert_eq!(
        wants,
        Message::Wants {
            indices: vec![0, 2, 3]
        }
    );
    on(&mut t, S1, files(vec![small(2, 5), small(0, 5)])).unwrap();
    assert_eq!(
        t.received,
        [(2, "Data"), (2, "FileEnd"), (0, "Data"), (0, "FileEnd")]
    );
    // A Files entry and a file's own frames may answer the same batch.
    on(&mut t, S1, data_at(3, 0, 5)).unwrap();
    on(&mut t, S1, end_at(3, 5)).unwrap();
    assert_eq!(t.file_done(0, FileOutcome::Committed), Verdict::Done);
}

#[test]
fn a_files_entry_is_the_whole_file_with_its_hash() {
    let mut t = streamed(2);
    let _ = t.core.ask_batch(S1, vec![1]);
    t.core
        .handle_message_on(S1, files(vec![small(1, 2)]))
        .unwrap();
    let mut got = Vec::new();
    while let Some(work) = t.core.poll_work() {
        if let TargetWork::Receive { frame, .. } = work {
            got.push(frame);
        }
    }
    assert_eq!(
        got,
        [
            data_at_y(1, 2),
            Message::FileEnd {
                index: 1,
                size: 2,
                hash: [3; 32]
            }
        ]
    );
}

fn data_at_y(index: u64, len: usize) -> Message {
    Message::Data {
        index,
        offset: 0,
        bytes: vec![b'y'; len].into(),
    }
}

#[test]
fn files_for_a_file_asked_on_another_stream_is_refused() {
    let mut t = streamed(1);
    let _ = t.core.ask_batch(S1, vec![0]);
    let text = refused(on(&mut t, S2, files(vec![small(0, 1)])));
    assert!(
        text.contains("Files entry for entry 0 on stream 2; it was asked on stream 1"),
        "{text}"
    );
}

#[test]
fn files_for_a_file_asked_as_a_delta_or_to_resume_is_refused() {
    let mut t = streamed(1);
    t.core.handle_asked_on(0, Asked::Delta, S1);
    let text = refused(on(&mut t, S1, files(vec![small(0, 1)])));
    assert!(text.contains("asked for as a delta"), "{text}");
    let mut t = streamed(1);
    t.core.handle_asked_on(0, Asked::Resume { offset: 0 }, S1);
    let text = refused(on(&mut t, S1, files(vec![small(0, 1)])));
    assert!(text.contains("asked to resume"), "{text}");
}

#[test]
fn files_for_a_file_twice_is_refused_in_one_frame_or_two() {
    let mut t = streamed(1);
    let _ = t.core.ask_batch(S1, vec![0, 1]);
    let text = refused(on(&mut t, S1, files(vec![small(0, 1), small(0, 1)])));
    assert!(text.contains("of which a frame came already"), "{text}");
    let mut t = streamed(1);
    let _ = t.core.ask_batch(S1, vec![0, 1]);
    on(&mut t, S1, files(vec![small(0, 1)])).unwrap();
    let text = refused(on(&mut t, S1, files(vec![small(0, 1)])));
    assert!(text.contains("of which a frame came already"), "{text}");
}

#[test]
fn files_after_a_data_frame_of_the_file_is_refused() {
    let mut t = streamed(4);
    let _ = t.core.ask_batch(S1, vec![0]);
    on(&mut t, S1, data_at(0, 0, 2)).unwrap();
    let text = refused(on(&mut t, S1, files(vec![small(0, 4)])));
    assert!(text.contains("of which a frame came already"), "{text}");
}

#[test]
fn files_of_the_wrong_length_is_refused() {
    let mut t = streamed(3);
    let _ = t.core.ask_batch(S1, vec![0]);
    let text = refused(on(&mut t, S1, files(vec![small(0, 2)])));
    assert!(
        text.contains("carries 2 bytes, but it was listed with 3 bytes"),
        "{text}"
    );
}

#[test]
fn files_for_a_file_not_asked_for_is_refused() {
    let mut t = streamed(1);
    t.deliver(0);
    let text = refused(on(&mut t, S0, files(vec![small(0, 1)])));
    assert!(
        text.contains("entry 0, which the target did not ask for"),
        "{text}"
    );
    let text = refused(on(&mut t, S0, files(vec![small(17, 1)])));
    assert!(
        text.contains("entry 17, which the target did not ask for"),
        "{text}"
    );
}

#[test]
fn files_over_the_per_frame_limit_or_empty_is_refused() {
    let limits = Limits {
        max_files_per_frame: 2,
        ..Limits::default()
    };
    let mut t = Target::with(limits.clone(), Filter::default());
    t.core =
        TargetCore::new(Filter::default(), limits, std::hash::RandomState::new()).with_streams(2);
    t.send(root()).unwrap();
    let entries = (0..3).map(|k| file(&format!("f{k}"), 1)).collect();
    t.send(list("", 0, entries, true)).unwrap();
    let text = refused(on(
        &mut t,
        S0,
        files(vec![small(0, 1), small(1, 1), small(2, 1)]),
    ));
    assert!(
        text.contains("Files with 3 entries: a frame carries 1 to 2"),
        "{text}"
    );
    let text = refused(on(&mut t, S0, files(vec![])));
    assert!(text.contains("Files with 0 entries"), "{text}");
}

#[test]
fn a_range_end_for_a_file_not_asked_in_ranges_is_refused() {
    let mut t = streamed(1);
    let range_end = Message::RangeEnd {
        index: 0,
        offset: 0,
        len: 1,
        same: false,
        cv: [0; 32],
    };
    let text = refused(on(&mut t, S0, range_end));
    assert!(text.contains("which was not asked in ranges"), "{text}");
}

// --- A lost stream ---

#[test]
fn stream_gone_twice_is_refused() {
    let mut t = streamed(1);
    on(&mut t, S0, Message::StreamGone { stream: 1 }).unwrap();
    assert_eq!(transmit(&mut t), [Message::StreamGone { stream: 1 }]);
    let text = refused(on(&mut t, S0, Message::StreamGone { stream: 1 }));
    assert!(
        text.contains("StreamGone for stream 1 from the source twice"),
        "{text}"
    );
}

#[test]
fn stream_gone_for_stream_zero_or_an_unjoined_stream_is_refused() {
    let mut t = streamed(1);
    let text = refused(on(&mut t, S0, Message::StreamGone { stream: 0 }));
    assert!(text.contains("the control stream cannot be lost"), "{text}");
    let mut t = streamed(1);
    let text = refused(on(&mut t, S0, Message::StreamGone { stream: 3 }));
    assert!(
        text.contains("stream 3 from the source, which never joined"),
        "{text}"
    );
    let text = refused(on(&mut t, S0, Message::StreamGone { stream: 400 }));
    assert!(text.contains("never joined"), "{text}");
}

#[test]
fn a_lost_stream_s_files_are_asked_again_only_after_both_stream_gones() {
    let mut t = streamed(4);
    t.core.handle_asked_on(0, Asked::Whole, S1);
    t.core.handle_asked_on(1, Asked::Delta, S1);
    t.core.handle_asked_on(2, Asked::Whole, S1);
    t.core.handle_asked_on(3, Asked::Whole, S2);
    // File 2 came whole before the loss: nothing of it is asked again.
    on(&mut t, S1, data_at(2, 0, 4)).unwrap();
    on(&mut t, S1, end_at(2, 4)).unwrap();
    on(&mut t, S1, data_at(0, 0, 2)).unwrap();

    t.core.stream_lost(S1);
    assert_eq!(transmit(&mut t), [Message::StreamGone { stream: 1 }]);
    assert_eq!(
        reasks(&mut t),
        [],
        "no re-ask before the source's StreamGone"
    );
    assert!(!t.core.is_stream_live(S1));

    on(&mut t, S0, Message::StreamGone { stream: 1 }).unwrap();
    assert_eq!(transmit(&mut t), [], "this side said it once already");
    assert_eq!(
        reasks(&mut t),
        [
            Reask {
                index: 0,
                asked: Asked::Whole,
                lost: S1,
                range: None
            },
            Reask {
                index: 1,
                asked: Asked::Delta,
                lost: S1,
                range: None
            },
        ]
    );
    // Asked again on a live stream, file 0 starts over from offset 0 there.
    t.core.handle_asked_on(0, Asked::Whole, S2);
    on(&mut t, S2, data_at(0, 0, 4)).unwrap();
    on(&mut t, S2, end_at(0, 4)).unwrap();
    assert_eq!(t.core.live_streams(), [S0, S2]);
}

#[test]
fn the_source_saying_it_first_is_answered_and_then_asked_again() {
    let mut t = streamed(1);
    t.core.handle_asked_on(3, Asked::Whole, S2);
    on(&mut t, S0, Message::StreamGone { stream: 2 }).unwrap();
    assert_eq!(transmit(&mut t), [Message::StreamGone { stream: 2 }]);
    assert_eq!(
        reasks(&mut t),
        [Reask {
            index: 3,
            asked: Asked::Whole,
            lost: S2,
            range: None
        }]
    );
    // The driver's own notice after that changes nothing.
    t.core.stream_lost(S2);
    assert_eq!((transmit(&mut t), reasks(&mut t)), (vec![], vec![]));
}

#[test]
fn frames_on_a_gone_stream_are_refused() {
    let mut t = streamed(4);
    t.core.handle_asked_on(0, Asked::Whole, S1);
    t.core.stream_lost(S1);
    let text = refused(on(&mut t, S1, data_at(0, 0, 4)));
    assert!(text.contains("after that stream was gone"), "{text}");
    let text = refused(on(&mut t, S1, Message::Heartbeat));
    assert!(
        text.contains("stream 1, after that stream was gone"),
        "{text}"
    );
}

#[test]
fn a_failed_file_draining_on_a_lost_stream_no_longer_holds_the_session() {
    let mut t = streamed(4);
    for index in 0..4 {
        t.core
            .handle_asked_on(index, Asked::Whole, if index == 0 { S1 } else { S2 });
    }
    on(&mut t, S1, data_at(0, 0, 1)).unwrap();
    assert_eq!(
        t.core
            .handle_file(0, FileOutcome::Failed { draining: true }),
        Verdict::Done
    );
    for index in 1..4 {
        on(&mut t, S2, data_at(index, 0, 4)).unwrap();
        on(&mut t, S2, end_at(index, 4)).unwrap();
        assert_eq!(
            t.core.handle_file(index, FileOutcome::Committed),
            Verdict::Done
        );
    }
    assert!(!t.core.is_settled(), "file 0's frames are still coming");
    t.core.stream_lost(S1);
    assert!(t.core.is_settled());
    assert_eq!(reasks(&mut t), []);
}

#[test]
#[should_panic(expected = "stream 16 joined")]
fn no_session_has_more_streams_than_the_limit() {
    let mut core = TargetCore::new(
        Filter::default(),
        Limits::default(),
        std::hash::RandomState::new(),
    )
    .with_streams(100);
    core.stream_joined(StreamId(15));
    core.stream_joined(StreamId(16));
}

#[test]
#[should_panic(expected = "stream 0's loss ends the session")]
fn losing_stream_zero_is_not_the_core_s_to_handle() {
    let mut t = streamed(1);
    t.core.stream_lost(S0);
}
