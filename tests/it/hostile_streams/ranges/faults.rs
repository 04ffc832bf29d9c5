//! Ranges answered wrong, failed, cut or held open: the file arrives whole after a
//! re-ask, or fails alone; the target's asks and memory stay within their bounds.

use super::*;

#[test]
fn a_range_of_wrong_bytes_is_asked_again_and_the_file_arrives_whole() {
    wrong_once_then_right(Wrong::Bytes);
}

#[test]
fn a_range_with_a_wrong_value_is_asked_again_and_the_file_arrives_whole() {
    wrong_once_then_right(Wrong::Value);
}

#[test]
fn a_range_wrong_twice_fails_its_file_alone_and_leaves_nothing_of_it() {
    let big = content(RANGED);
    let small = content(5);
    let mut multi = Multi::start(1, |_| {});
    multi.list(vec![
        file("a-big", RANGED),
        file("b-big", RANGED),
        file("c-small", 5),
    ]);
    let files = HashMap::from([(2, small.clone())]);
    let served = multi.serve(&files, |ask, _| {
        let frames = match (ask.index, ask.offset) {
            (0, o) if o == 2 * RANGE => wrong_answer(ask, &big, Wrong::Bytes),
            _ => honest(ask, &big),
        };
        on(ask.stream, frames)
    });
    let (ended, finished) = multi.finish();
    let stats = served.stats(&ended);
    assert_eq!(ended.server.code, Some(23), "{}", ended.server.dump());
    let errors = served.file_errors();
    assert!(
        matches!(&errors[..], [(path, message)] if path == "a-big"
            && message.contains(&format!("the range at byte {} did not match the source's BLAKE3 twice", 2 * RANGE))),
        "expected one FileError for a-big naming its range, got {errors:?}"
    );
    assert_eq!(stats.file_errors, 1);
    assert_eq!(stats.files_transferred, 2);
    assert_eq!(stats.resent, 1, "the first mismatch is a re-send");
    assert_eq!(served.times_asked(0, 2 * RANGE), 2, "{:?}", served.asks);
    finished.assert_holds("b-big", &big);
    finished.assert_holds("c-small", &small);
    finished.assert_no_ferry_files();
    finished.assert_contained_and_absent(&["a-big"]);
}

#[test]
fn a_range_asked_again_reads_as_zeros_where_its_second_answer_is_a_hole() {
    let mut big = content(RANGED);
    big[RANGE as usize..2 * RANGE as usize].fill(0);
    let zeros_cv = range_cv(RANGE, &big[RANGE as usize..2 * RANGE as usize]);
    let mut multi = Multi::start(1, |_| {});
    multi.list(vec![file("big", RANGED)]);
    let served = multi.serve(&HashMap::new(), |ask, before| {
        let frames = match (ask.offset, before) {
            // Bytes that are not zeros, with the value of the zeros: asked again.
            (RANGE, 0) => {
                let mut frames = pieces(ask.index, ask.offset, &vec![0xff; RANGE as usize]);
                frames.push(range_end(ask, zeros_cv));
                frames
            }
            (RANGE, _) => vec![
                Message::Hole {
                    index: ask.index,
                    offset: ask.offset,
                    len: ask.len,
                },
                range_end(ask, zeros_cv),
            ],
            _ => honest(ask, &big),
        };
        on(ask.stream, frames)
    });
    let (ended, finished) = multi.finish();
    let stats = served.stats(&ended);
    assert_eq!(ended.server.code, Some(0), "{}", ended.server.dump());
    assert_eq!(stats.resent, 1);
    assert_eq!(stats.file_errors, 0);
    assert_eq!(served.times_asked(0, RANGE), 2, "{:?}", served.asks);
    finished.assert_holds("big", &big);
    finished.assert_no_ferry_files();
}

#[test]
fn file_failed_for_a_range_ends_that_file_only() {
    let big = content(RANGED);
    let small = content(5);
    let mut multi = Multi::start(1, |_| {});
    // a-big fails in its first range, its other open ranges draining; b-big in its last
    // range, asked once its others went out: neither may hold back c-big and d-small.
    multi.list(vec![
        file("a-big", RANGED),
        file("b-big", RANGED),
        file("c-big", RANGED),
        file("d-small", 5),
    ]);
    let files = HashMap::from([(3, small.clone())]);
    let served = multi.serve(&files, |ask, _| {
        let fails =
            matches!((ask.index, ask.offset), (0, 0)) || (ask.index, ask.offset) == (1, 3 * RANGE);
        let frames = match fails {
            true => {
                let mut frames = pieces(ask.index, ask.offset, &range_bytes(ask, &big)[..1 << 20]);
                frames.push(Message::FileFailed {
                    index: ask.index,
                    reason: ferry_proto::FileFailure::Changed,
                    message: "changed while read".into(),
                });
                frames
            }
            false => honest(ask, &big),
        };
        on(ask.stream, frames)
    });
    let (ended, finished) = multi.finish();
    let stats = served.stats(&ended);
    // The source's failure is the source's to report (protocol 6.6): not the target's.
    assert_eq!(ended.server.code, Some(0), "{}", ended.server.dump());
    assert_eq!(
        served.file_errors(),
        [],
        "the target reports the source's failures"
    );
    assert_eq!(stats.file_errors, 0);
    assert_eq!(stats.files_transferred, 2);
    for ask in &served.asks {
        assert_eq!(
            served.times_asked(ask.index, ask.offset),
            1,
            "{:?}",
            served.asks
        );
    }
    finished.assert_holds("c-big", &big);
    finished.assert_holds("d-small", &small);
    finished.assert_no_ferry_files();
    finished.assert_contained_and_absent(&["a-big", "b-big"]);
}

#[test]
fn ranges_held_open_on_every_stream_stay_within_the_credit_and_the_memory_bound() {
    const FILES: u64 = 10;
    // Two ranges fill a stream's credit.
    const PER_STREAM: usize = (CREDIT / RANGE) as usize;
    let big = content(RANGED);
    let mut multi = Multi::start(15, |_| {});
    let names: Vec<String> = (0..FILES).map(|i| format!("f{i:02}")).collect();
    multi.list(names.iter().map(|n| file(n, RANGED)).collect());
    let mut asks = multi.range_asks(16 * PER_STREAM);
    // Every byte of each range but its last piece, and never its RangeEnd.
    let chunk = Limits::default().data_chunk;
    for ask in &asks {
        let bytes = range_bytes(ask, &big);
        for frame in pieces(ask.index, ask.offset, &bytes[..bytes.len() - chunk]) {
            multi.send(ask.stream, &frame).expect("send Data");
        }
    }
    // Whatever else the target asks meanwhile.
    let quiet = Instant::now();
    while quiet.elapsed() < Duration::from_secs(1) {
        for stream in 0..16u16 {
            match multi.stream(stream).try_recv(Duration::from_millis(5)) {
                Some(Recv::Msg(Message::WantRange {
                    index,
                    offset,
                    len,
                    have,
                    ..
                })) => asks.push(RangeAsk {
                    stream,
                    index,
                    offset,
                    len,
                    have,
                }),
                None | Some(Recv::Msg(Message::Heartbeat | Message::Ack { .. })) => {}
                Some(other) => panic!("on stream {stream}, holding ranges open: {other:?}"),
            }
        }
    }
    // The source gives up: stream 0 goes.
    drop(multi.take(0));
    let (ended, finished) = multi.finish();
    for stream in 0..16u16 {
        let on_it = asks.iter().filter(|a| a.stream == stream).count();
        assert!(
            on_it <= PER_STREAM,
            "{on_it} ranges asked on stream {stream} with none ended, over its credit: {asks:?}"
        );
    }
    assert_eq!(asks.len(), 16 * PER_STREAM, "{asks:?}");
    // Stream 0 lost: a socket failure.
    assert_eq!(ended.server.code, Some(10), "{}", ended.server.dump());
    for name in &names {
        finished.assert_partial_is_a_verified_prefix(name, &big);
        let partial = finished.vol.join(format!(".ferry.{name}.partial"));
        let kept = std::fs::metadata(&partial).map(|m| m.len()).unwrap_or(0);
        assert_eq!(
            kept,
            0,
            "{} keeps bytes no RangeEnd verified",
            partial.display()
        );
    }
    finished.assert_contained_and_absent(&names.iter().map(String::as_str).collect::<Vec<_>>());
    let growth = ended.growth_kib();
    eprintln!(
        "ranges held open: serve's resident memory {} KiB before, peak {} KiB, growth {growth} KiB",
        ended.baseline_kib, ended.peak_kib
    );
    assert!(
        growth <= super::memory::GROWTH_BOUND_KIB,
        "serve grew by {growth} KiB holding ranges open, over {} KiB",
        super::memory::GROWTH_BOUND_KIB
    );
}

/// A piece of no bytes where the last range's pieces ended (the file's end, a multiple
/// of `RANGE`): within the range and where its last piece ended, so taken as nothing;
/// the file arrives whole.
fn empty_piece_at_the_files_end(empty: impl Fn(u64) -> Message) {
    let big = content(RANGED);
    let mut multi = Multi::start(1, |_| {});
    multi.list(vec![file("big", RANGED)]);
    let served = multi.serve(&HashMap::new(), |ask, _| {
        let mut frames = honest(ask, &big);
        if ask.offset + ask.len == RANGED {
            let end = frames.pop().expect("an honest answer ends with RangeEnd");
            frames.push(empty(RANGED));
            frames.push(end);
        }
        on(ask.stream, frames)
    });
    let (ended, finished) = multi.finish();
    let stats = served.stats(&ended);
    assert_eq!(ended.server.code, Some(0), "{}", ended.server.dump());
    assert_eq!((stats.files_transferred, stats.file_errors), (1, 0));
    finished.assert_holds("big", &big);
    finished.assert_no_ferry_files();
}

#[test]
fn a_hole_of_no_bytes_at_the_end_of_a_files_last_range_is_taken_as_nothing() {
    empty_piece_at_the_files_end(|offset| Message::Hole {
        index: 0,
        offset,
        len: 0,
    });
}

#[test]
fn data_of_no_bytes_at_the_end_of_a_files_last_range_is_taken_as_nothing() {
    empty_piece_at_the_files_end(|offset| Message::Data {
        index: 0,
        offset,
        bytes: Bytes::new(),
    });
}

#[test]
fn ranges_asked_on_a_cut_stream_are_asked_again_on_another_and_the_file_arrives_whole() {
    let big = content(RANGED);
    let mut multi = Multi::start(1, |_| {});
    multi.list(vec![file("big", RANGED)]);
    let mut cut = None;
    let served = multi.serve(&HashMap::new(), |ask, _| {
        if ask.stream != 1 || cut.is_some() {
            return on(ask.stream, honest(ask, &big));
        }
        // Half the range on stream 1, then stream 1 is gone.
        cut = Some(*ask);
        let half = &range_bytes(ask, &big)[..(RANGE / 2) as usize];
        let mut sends = on(1, pieces(ask.index, ask.offset, half));
        sends.push((0, Message::StreamGone { stream: 1 }));
        sends
    });
    let (ended, finished) = multi.finish();
    let stats = served.stats(&ended);
    let cut = cut.expect("a range was asked on stream 1");
    assert_eq!(ended.server.code, Some(0), "{}", ended.server.dump());
    assert!(
        served
            .seen
            .iter()
            .any(|r| matches!(r, Recv::Msg(Message::StreamGone { stream: 1 }))),
        "the target did not say StreamGone{{1}}: {:?}",
        served.seen
    );
    let again: Vec<_> = served
        .asks
        .iter()
        .filter(|a| a.offset == cut.offset)
        .collect();
    assert!(
        matches!(&again[..], [first, second] if first.stream == 1 && second.stream == 0),
        "the cut range was not asked again on stream 0: {:?}",
        served.asks
    );
    assert_eq!(
        stats.resent, 0,
        "a range asked again after a lost stream is no re-send"
    );
    assert_eq!((stats.files_transferred, stats.file_errors), (1, 0));
    finished.assert_holds("big", &big);
    finished.assert_no_ferry_files();
}

#[test]
fn every_range_wrong_once_is_asked_again_and_the_file_arrives_whole() {
    let big = content(RANGED);
    let mut multi = Multi::start(1, |_| {});
    multi.list(vec![file("big", RANGED)]);
    let served = multi.serve(&HashMap::new(), |ask, before| {
        let frames = match before {
            0 => wrong_answer(ask, &big, Wrong::Bytes),
            _ => honest(ask, &big),
        };
        on(ask.stream, frames)
    });
    let (ended, finished) = multi.finish();
    let stats = served.stats(&ended);
    assert_eq!(ended.server.code, Some(0), "{}", ended.server.dump());
    assert_eq!(stats.resent, 4, "each range's re-send counts");
    assert_eq!((stats.files_transferred, stats.file_errors), (1, 0));
    for k in 0..4 {
        assert_eq!(served.times_asked(0, k * RANGE), 2, "{:?}", served.asks);
    }
    finished.assert_holds("big", &big);
    finished.assert_no_ferry_files();
}

#[test]
fn two_ranges_of_one_file_wrong_twice_fail_it_once() {
    let big = content(RANGED);
    let small = content(5);
    let mut multi = Multi::start(1, |_| {});
    multi.list(vec![file("a-big", RANGED), file("b-small", 5)]);
    let files = HashMap::from([(1, small.clone())]);
    let served = multi.serve(&files, |ask, _| {
        let frames = match ask.offset {
            o if o == RANGE || o == 2 * RANGE => wrong_answer(ask, &big, Wrong::Value),
            _ => honest(ask, &big),
        };
        on(ask.stream, frames)
    });
    let (ended, finished) = multi.finish();
    let stats = served.stats(&ended);
    assert_eq!(ended.server.code, Some(23), "{}", ended.server.dump());
    let errors = served.file_errors();
    assert!(
        matches!(&errors[..], [(path, message)] if path == "a-big"
            && message.contains("did not match the source's BLAKE3 twice")),
        "expected one FileError for a-big, got {errors:?}"
    );
    assert_eq!(stats.file_errors, 1);
    assert_eq!(stats.files_transferred, 1);
    finished.assert_holds("b-small", &small);
    finished.assert_no_ferry_files();
    finished.assert_contained_and_absent(&["a-big"]);
}

#[test]
fn file_failed_while_a_range_is_asked_again_ends_the_file_without_a_file_error() {
    let big = content(RANGED);
    let small = content(5);
    let mut multi = Multi::start(1, |_| {});
    multi.list(vec![file("a-big", RANGED), file("b-small", 5)]);
    let files = HashMap::from([(1, small.clone())]);
    let served = multi.serve(&files, |ask, before| {
        let frames = match (ask.offset, before) {
            (RANGE, 0) => wrong_answer(ask, &big, Wrong::Bytes),
            (o, _) if o == 3 * RANGE => vec![Message::FileFailed {
                index: 0,
                reason: ferry_proto::FileFailure::Vanished,
                message: "gone".into(),
            }],
            _ => honest(ask, &big),
        };
        on(ask.stream, frames)
    });
    let (ended, finished) = multi.finish();
    let stats = served.stats(&ended);
    assert_eq!(ended.server.code, Some(0), "{}", ended.server.dump());
    assert_eq!(served.file_errors(), [], "the source's failure is its own");
    assert_eq!((stats.files_transferred, stats.file_errors), (1, 0));
    finished.assert_holds("b-small", &small);
    finished.assert_no_ferry_files();
    finished.assert_contained_and_absent(&["a-big"]);
}
