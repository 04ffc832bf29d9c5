//! A hostile source of large files asked in ranges (`WantRange`/`RangeEnd`, protocol
//! 6.14): the target asks every file of at least `4 × RANGE` bytes in ranges on streams
//! of its choice, and the raw source here answers each range as the case says.
//!
//! * A range answered wrong once (wrong bytes with the right value, the right bytes
//!   with a wrong value, or bytes where a hole comes the second time) is asked again
//!   and the file arrives whole; `Done` counts the re-send. Wrong twice, the file fails
//!   alone (`FileError`, exit 23), nothing of it stays, and the other files arrive.
//! * `FileFailed` for a range ends that file only; ranges asked on a cut stream are
//!   asked again on another (not a re-send); a piece of no bytes where the last range
//!   ended is nothing.
//! * A range's frames that break its rules (a piece past its end, on another stream,
//!   after its end, not where the last ended, a `RangeEnd` early, of another length, on
//!   another stream, where no range is, or `same` without `have`, `FileFailed` where no
//!   range is, a `FileEnd`, `Delta` or `Files` entry for a file in ranges) end the
//!   session with a protocol error naming the rule (exit 12), nothing outside the
//!   volume, no final name, and at most a verified prefix under the partial name.
//! * Ranges held open on every stream and never ended: the target asks no more than its
//!   streams' credit, and its memory stays within the flood bound of `memory`.
//!
//! [`Multi::serve`] plays the source: it answers each ask as the case says, until the
//! target ends the session.

use std::collections::HashMap;

use blake3::hazmat::HasherExt;
use bytes::Bytes;
use ferry_proto::{Limits, TargetStats, RANGE};

use super::*;

/// The least size of a file asked in ranges (`MIN_RANGED`).
const RANGED: u64 = 4 * RANGE;

/// How long one served session may take before the test gives up (each takes a few
/// seconds).
const SESSION_GUARD: Duration = Duration::from_secs(20);

/// A range the target asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct RangeAsk {
    stream: u16,
    index: u64,
    offset: u64,
    len: u64,
    have: bool,
}

/// The value of a range's bytes (`RangeEnd.cv`), computed as docs/protocol.md 6.14 says.
fn range_cv(offset: u64, bytes: &[u8]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    hasher.set_input_offset(offset);
    hasher.update(bytes);
    hasher.finalize_non_root()
}

/// `bytes` from `offset` as `Data` pieces of `data_chunk` bytes at most.
fn pieces(index: u64, offset: u64, bytes: &[u8]) -> Vec<Message> {
    let chunk = Limits::default().data_chunk;
    bytes
        .chunks(chunk)
        .enumerate()
        .map(|(k, piece)| Message::Data {
            index,
            offset: offset + (k * chunk) as u64,
            bytes: Bytes::copy_from_slice(piece),
        })
        .collect()
}

/// The honest answer to `ask` of a file whose content is `file`: its bytes, then
/// `RangeEnd` with their value.
fn honest(ask: &RangeAsk, file: &[u8]) -> Vec<Message> {
    let bytes = range_bytes(ask, file);
    let mut frames = pieces(ask.index, ask.offset, bytes);
    frames.push(range_end(ask, range_cv(ask.offset, bytes)));
    frames
}

fn range_bytes<'a>(ask: &RangeAsk, file: &'a [u8]) -> &'a [u8] {
    &file[ask.offset as usize..(ask.offset + ask.len) as usize]
}

fn range_end(ask: &RangeAsk, cv: [u8; 32]) -> Message {
    Message::RangeEnd {
        index: ask.index,
        offset: ask.offset,
        len: ask.len,
        same: false,
        cv,
    }
}

/// How a session served by [`Multi::serve`] ended.
struct Served {
    /// Stream 0's frames but heartbeats and acks, the session's end last.
    seen: Vec<Recv>,
    /// Every range the target asked for, in the order the source read them.
    asks: Vec<RangeAsk>,
}

impl Served {
    fn times_asked(&self, index: u64, offset: u64) -> usize {
        self.asks
            .iter()
            .filter(|a| a.index == index && a.offset == offset)
            .count()
    }

    fn stats(&self, ended: &Ended) -> TargetStats {
        match self.seen.last() {
            Some(Recv::Msg(Message::Done { stats })) => stats.clone(),
            other => panic!(
                "the session did not end with Done: {other:?}\n{}",
                ended.server.dump()
            ),
        }
    }

    fn file_errors(&self) -> Vec<(String, String)> {
        self.seen
            .iter()
            .filter_map(|r| match r {
                Recv::Msg(Message::FileError { path, message }) => {
                    Some((String::from_utf8_lossy(path).into_owned(), message.clone()))
                }
                _ => None,
            })
            .collect()
    }
}

impl Multi {
    /// Polls every stream in turn until the target has asked for `count` ranges, answering
    /// nothing; other asks fail the test.
    fn range_asks(&mut self, count: usize) -> Vec<RangeAsk> {
        let start = Instant::now();
        let mut asks = Vec::new();
        while asks.len() < count {
            assert!(
                start.elapsed() < ASKS_GUARD,
                "the target asked for {asks:?} within {ASKS_GUARD:?}, not {count} ranges"
            );
            for stream in 0..self.streams.len() as u16 {
                let Some(client) = self.streams[usize::from(stream)].as_mut() else {
                    continue;
                };
                match client.try_recv(Duration::from_millis(5)) {
                    None => {}
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
                    Some(Recv::Msg(Message::Heartbeat | Message::Ack { .. })) => {}
                    Some(other) => panic!("on stream {stream}, waiting for ranges: {other:?}"),
                }
            }
        }
        asks
    }

    /// Plays the source until the target ends the session: a file asked whole (`Want`,
    /// `Wants`) gets its bytes from `files` and its `FileEnd`; a range gets what `answer`
    /// says, given the ask and how many times that range was asked before, each frame on
    /// the stream it names (`StreamGone{s}` on stream 0: the source cuts stream `s`
    /// first). A frame the target no longer takes (it ended the session) is not an error
    /// here: stream 0 says how the session ended.
    fn serve(
        &mut self,
        files: &HashMap<u64, Vec<u8>>,
        mut answer: impl FnMut(&RangeAsk, usize) -> Vec<(u16, Message)>,
    ) -> Served {
        let start = Instant::now();
        let mut seen = Vec::new();
        let mut asks: Vec<RangeAsk> = Vec::new();
        let mut closed = vec![false; self.streams.len()];
        loop {
            if start.elapsed() > SESSION_GUARD {
                // The caller's checks fail on this, with the server's log.
                let hung = format!("the session did not end within {SESSION_GUARD:?}");
                seen.push(Recv::Failed(hung));
                return Served { seen, asks };
            }
            for stream in 0..self.streams.len() as u16 {
                let s = usize::from(stream);
                if closed[s] {
                    continue;
                }
                let Some(client) = self.streams[s].as_mut() else {
                    continue;
                };
                let Some(recv) = client.try_recv(Duration::from_millis(5)) else {
                    continue;
                };
                let message = match recv {
                    Recv::Msg(Message::Heartbeat | Message::Ack { .. }) => continue,
                    Recv::Msg(message) => message,
                    Recv::Eof | Recv::Failed(_) if stream != 0 => {
                        closed[s] = true;
                        continue;
                    }
                    ending => {
                        seen.push(ending);
                        return Served { seen, asks };
                    }
                };
                let replies: Vec<(u16, Message)> = match message {
                    Message::WantRange {
                        index,
                        offset,
                        len,
                        have,
                        ..
                    } => {
                        let ask = RangeAsk {
                            stream,
                            index,
                            offset,
                            len,
                            have,
                        };
                        let before = asks
                            .iter()
                            .filter(|a| a.index == index && a.offset == offset)
                            .count();
                        asks.push(ask);
                        answer(&ask, before)
                    }
                    Message::Want {
                        index,
                        delta: false,
                    } => whole(stream, index, files),
                    Message::Wants { indices } => indices
                        .into_iter()
                        .flat_map(|index| whole(stream, index, files))
                        .collect(),
                    other if stream == 0 => {
                        let end = matches!(other, Message::Error { .. } | Message::Done { .. });
                        seen.push(Recv::Msg(other));
                        if end {
                            return Served { seen, asks };
                        }
                        continue;
                    }
                    other => panic!("on stream {stream}: {other:?}"),
                };
                for (on, reply) in replies {
                    if let (0, Message::StreamGone { stream: cut }) = (on, &reply) {
                        // The source cuts a stream before it says so.
                        self.streams[usize::from(*cut)] = None;
                    }
                    if let Some(client) = self.streams[usize::from(on)].as_mut() {
                        // The target may have ended the session under this send.
                        let _ = client.send(&reply);
                    }
                }
            }
        }
    }
}

/// The frames of file `index` of `files`, whole, on `stream`.
fn whole(stream: u16, index: u64, files: &HashMap<u64, Vec<u8>>) -> Vec<(u16, Message)> {
    let bytes = files
        .get(&index)
        .unwrap_or_else(|| panic!("entry {index} asked whole is not one of the test's"));
    let mut frames = pieces(index, 0, bytes);
    frames.push(Message::FileEnd {
        index,
        size: bytes.len() as u64,
        hash: *blake3::hash(bytes).as_bytes(),
    });
    frames.into_iter().map(|f| (stream, f)).collect()
}

fn on(stream: u16, frames: Vec<Message>) -> Vec<(u16, Message)> {
    frames.into_iter().map(|f| (stream, f)).collect()
}

impl Finished {
    /// No temp or partial file (`.ferry.*`) is left in the volume.
    fn assert_no_ferry_files(&self) {
        let left: Vec<String> = std::fs::read_dir(&self.vol)
            .expect("read the volume")
            .map(|e| e.expect("a volume entry").file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".ferry."))
            .collect();
        assert!(left.is_empty(), "left in the volume: {left:?}");
    }

    /// What stays of `name` under its partial name, if anything, is a verified prefix of
    /// `content`: whole ranges from offset 0.
    fn assert_partial_is_a_verified_prefix(&self, name: &str, content: &[u8]) {
        let path = self.vol.join(format!(".ferry.{name}.partial"));
        let Ok(kept) = std::fs::read(&path) else {
            return;
        };
        assert!(
            (kept.len() as u64).is_multiple_of(RANGE) && content.starts_with(&kept),
            "{} holds {} bytes that are not whole ranges of the file from offset 0",
            path.display(),
            kept.len()
        );
    }

    fn assert_holds(&self, name: &str, content: &[u8]) {
        let path = self.vol.join(name);
        let got = std::fs::read(&path).unwrap_or_default();
        assert!(
            got == content,
            "{} is not the file sent ({} bytes of {})",
            path.display(),
            got.len(),
            content.len()
        );
    }
}

/// One byte of `bytes` changed.
fn spoiled(bytes: &[u8]) -> Vec<u8> {
    let mut bytes = bytes.to_vec();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x5a;
    bytes
}

/// How the first answer to the spoiled range is wrong.
#[derive(Clone, Copy)]
enum Wrong {
    /// A byte differs; the value is that of the right bytes.
    Bytes,
    /// The bytes are right; the value is another.
    Value,
}

/// The range at `offset` of `ask`'s file answered wrong as `wrong` says.
fn wrong_answer(ask: &RangeAsk, file: &[u8], wrong: Wrong) -> Vec<Message> {
    let right = range_bytes(ask, file);
    let cv = range_cv(ask.offset, right);
    let (bytes, cv) = match wrong {
        Wrong::Bytes => (spoiled(right), cv),
        Wrong::Value => {
            let mut other = cv;
            other[0] ^= 1;
            (right.to_vec(), other)
        }
    };
    let mut frames = pieces(ask.index, ask.offset, &bytes);
    frames.push(range_end(ask, cv));
    frames
}

/// A large file and a small one; the large one's second range is answered wrong
/// (`wrong`) the first time it is asked.
fn wrong_once_then_right(wrong: Wrong) {
    let big = content(RANGED);
    let small = content(5);
    let mut multi = Multi::start(1, |_| {});
    multi.list(vec![file("big", RANGED), file("small", 5)]);
    let files = HashMap::from([(0, big.clone()), (1, small.clone())]);
    let served = multi.serve(&files, |ask, before| {
        assert_eq!(ask.index, 0, "a range of another file than big: {ask:?}");
        let frames = match (ask.offset, before) {
            (RANGE, 0) => wrong_answer(ask, &big, wrong),
            _ => honest(ask, &big),
        };
        on(ask.stream, frames)
    });
    let (ended, finished) = multi.finish();
    let stats = served.stats(&ended);
    assert_eq!(ended.server.code, Some(0), "{}", ended.server.dump());
    assert_eq!(served.file_errors(), [], "files failed");
    assert_eq!(stats.resent, 1, "Done does not count the range sent again");
    assert_eq!(stats.file_errors, 0);
    assert_eq!(stats.files_transferred, 2);
    assert_eq!(served.times_asked(0, RANGE), 2, "{:?}", served.asks);
    for offset in [0, 2 * RANGE, 3 * RANGE] {
        assert_eq!(
            served.times_asked(0, offset),
            1,
            "a right range asked again: {:?}",
            served.asks
        );
    }
    assert!(
        served.asks.iter().all(|a| !a.have && a.len == RANGE),
        "{:?}",
        served.asks
    );
    finished.assert_holds("big", &big);
    finished.assert_holds("small", &small);
    finished.assert_no_ferry_files();
    finished.assert_contained_and_absent(&[]);
}

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

/// A large file listed over stream 0 and one joined stream; `breach` gets the first
/// range asked and the file's content and says what to send on which stream. The target
/// must end the session with a protocol error holding `needle(ask)`.
fn refused(
    breach: impl FnOnce(&RangeAsk, &[u8]) -> Vec<(u16, Message)>,
    needle: impl FnOnce(&RangeAsk) -> String,
) {
    refused_over(
        1,
        1,
        |asks, big| breach(&asks[0], big),
        |asks| needle(&asks[0]),
    );
}

/// [`refused`] over stream 0 and `joins` joined streams, once the target asked `asks`
/// ranges; `breach` and `needle` get them all.
fn refused_over(
    joins: u16,
    asks: usize,
    breach: impl FnOnce(&[RangeAsk], &[u8]) -> Vec<(u16, Message)>,
    needle: impl FnOnce(&[RangeAsk]) -> String,
) {
    let big = content(RANGED);
    let mut multi = Multi::start(joins, |_| {});
    multi.list(vec![file("big", RANGED)]);
    let asks = multi.range_asks(asks);
    for ask in &asks {
        assert_eq!((ask.index, ask.len, ask.have), (0, RANGE, false), "{ask:?}");
    }
    for (stream, frame) in breach(&asks, &big) {
        multi.send(stream, &frame).expect("send");
    }
    let seen = multi.until_end(|_, _| {});
    let (ended, finished) = multi.finish();
    ended.assert_protocol_error(&seen, &needle(&asks));
    finished.assert_contained_and_absent(&["big"]);
    finished.assert_partial_is_a_verified_prefix("big", &big);
}

/// The stream of the session's two that `ask` was not asked on.
fn other_stream(ask: &RangeAsk) -> u16 {
    1 - ask.stream
}

#[test]
fn a_piece_past_the_end_of_its_range_is_refused() {
    const HALF: usize = 128 << 10;
    refused(
        |ask, big| {
            // Up to half a piece before the range's end, then a whole piece.
            let bytes = range_bytes(ask, big);
            let mut frames = pieces(ask.index, ask.offset, &bytes[..bytes.len() - HALF]);
            let at = ask.offset + ask.len - HALF as u64;
            let over = &big[at as usize..at as usize + 2 * HALF];
            frames.extend(pieces(ask.index, at, over));
            on(ask.stream, frames)
        },
        |ask| {
            format!(
                "Data for entry 0 at offset {} of {} bytes goes past the end of its range at {}",
                ask.offset + ask.len - HALF as u64,
                2 * HALF,
                ask.offset + ask.len
            )
        },
    );
}

#[test]
fn a_hole_whose_end_overflows_is_refused() {
    refused(
        |ask, _| {
            let hole = Message::Hole {
                index: ask.index,
                offset: ask.offset,
                len: u64::MAX,
            };
            vec![(ask.stream, hole)]
        },
        |ask| {
            format!(
                "Hole for entry 0 at offset {} of {} bytes goes past the end of its range at {}",
                ask.offset,
                u64::MAX,
                ask.offset + ask.len
            )
        },
    );
}

#[test]
fn a_piece_on_another_stream_than_its_range_is_refused() {
    refused(
        |ask, big| {
            let first = pieces(ask.index, ask.offset, &range_bytes(ask, big)[..1024]);
            on(other_stream(ask), first)
        },
        |ask| {
            format!(
                "Data for entry 0 at offset {} on stream {}; its range was asked on stream {}",
                ask.offset,
                other_stream(ask),
                ask.stream
            )
        },
    );
}

#[test]
fn a_range_end_before_all_its_bytes_is_refused() {
    const SENT: usize = 1 << 20;
    refused(
        |ask, big| {
            let bytes = range_bytes(ask, big);
            let mut frames = pieces(ask.index, ask.offset, &bytes[..SENT]);
            frames.push(range_end(ask, range_cv(ask.offset, bytes)));
            on(ask.stream, frames)
        },
        |ask| {
            format!(
                "RangeEnd for entry 0 at offset {} after {SENT} of its {} bytes",
                ask.offset, ask.len
            )
        },
    );
}

#[test]
fn a_range_end_of_another_length_is_refused() {
    refused(
        |ask, big| {
            let mut frames = honest(ask, big);
            let Some(Message::RangeEnd { len, .. }) = frames.last_mut() else {
                unreachable!("an honest answer ends with RangeEnd")
            };
            *len -= 1;
            on(ask.stream, frames)
        },
        |ask| {
            format!(
                "RangeEnd for entry 0 at offset {} says {} bytes; the range asked has {}",
                ask.offset,
                ask.len - 1,
                ask.len
            )
        },
    );
}

#[test]
fn a_range_end_saying_same_where_the_target_held_nothing_is_refused() {
    refused(
        |ask, big| {
            let end = Message::RangeEnd {
                index: ask.index,
                offset: ask.offset,
                len: ask.len,
                same: true,
                cv: range_cv(ask.offset, range_bytes(ask, big)),
            };
            vec![(ask.stream, end)]
        },
        |ask| {
            format!(
                "RangeEnd for entry 0 at offset {} says the target's bytes are the source's, \
                 but the target did not say it held these",
                ask.offset
            )
        },
    );
}

#[test]
fn a_file_end_for_a_file_asked_in_ranges_is_refused() {
    refused(
        |ask, big| {
            let mut frames = pieces(ask.index, ask.offset, range_bytes(ask, big));
            frames.push(Message::FileEnd {
                index: ask.index,
                size: RANGED,
                hash: *blake3::hash(big).as_bytes(),
            });
            on(ask.stream, frames)
        },
        |_| "FileEnd for entry 0, which was asked in ranges".to_string(),
    );
}

#[test]
fn a_piece_of_a_range_after_its_range_end_is_refused() {
    refused(
        |ask, big| {
            let mut frames = honest(ask, big);
            frames.extend(pieces(
                ask.index,
                ask.offset,
                &range_bytes(ask, big)[..1024],
            ));
            on(ask.stream, frames)
        },
        |ask| {
            format!(
                "Data for entry 0 at offset {}, in none of its ranges asked and not ended",
                ask.offset
            )
        },
    );
}

#[test]
fn a_piece_that_skips_bytes_of_its_range_is_refused() {
    const SKIP: u64 = 256 << 10;
    refused(
        |ask, big| {
            let at = (ask.offset + SKIP) as usize;
            on(
                ask.stream,
                pieces(ask.index, at as u64, &big[at..at + 1024]),
            )
        },
        |ask| {
            format!(
                "Data for entry 0 at offset {}, expected {}",
                ask.offset + SKIP,
                ask.offset
            )
        },
    );
}

#[test]
fn a_range_end_on_another_stream_than_its_range_is_refused() {
    refused(
        |ask, big| {
            let mut frames = honest(ask, big);
            let end = frames.pop().expect("an honest answer ends with RangeEnd");
            let mut sends = on(ask.stream, frames);
            sends.push((other_stream(ask), end));
            sends
        },
        |ask| {
            format!(
                "RangeEnd for entry 0 at offset {} on stream {}; the range was asked on stream {}",
                ask.offset,
                other_stream(ask),
                ask.stream
            )
        },
    );
}

#[test]
fn a_range_end_where_no_range_was_asked_is_refused() {
    const OFF: u64 = 4096;
    refused(
        |ask, _| {
            let end = Message::RangeEnd {
                index: ask.index,
                offset: ask.offset + OFF,
                len: RANGE - OFF,
                same: false,
                cv: [0; 32],
            };
            vec![(ask.stream, end)]
        },
        |ask| {
            format!(
                "RangeEnd for entry 0 at offset {}, where no range of it is asked and not ended",
                ask.offset + OFF
            )
        },
    );
}

#[test]
fn file_failed_on_a_stream_where_none_of_the_files_ranges_is_open_is_refused() {
    // Five streams, four ranges: each on a stream of its own, one stream without.
    let idle = |asks: &[RangeAsk]| {
        (0..5u16)
            .find(|s| asks.iter().all(|a| a.stream != *s))
            .expect("a stream without a range of the file")
    };
    refused_over(
        4,
        4,
        |asks, _| {
            let failed = Message::FileFailed {
                index: 0,
                reason: ferry_proto::FileFailure::Changed,
                message: "changed while read".into(),
            };
            vec![(idle(asks), failed)]
        },
        |asks| {
            format!(
                "FileFailed for entry 0 on stream {}, where none of its ranges is open",
                idle(asks)
            )
        },
    );
}

#[test]
fn a_delta_for_a_file_asked_in_ranges_is_refused() {
    refused(
        |ask, _| {
            let delta = Message::Delta {
                index: ask.index,
                offset: ask.offset,
                len: 1,
                bytes: Bytes::from_static(&[0x72, 0x73, 0x02, 0x36, 0x01, 0x00, 0x00]),
            };
            vec![(ask.stream, delta)]
        },
        |_| "Delta for entry 0, which was asked in ranges".to_string(),
    );
}

/// A `Files` entry for a file asked in ranges, on `stream` of the session's two.
fn files_entry_for_a_ranged_file(stream: u16) {
    refused_over(
        1,
        2,
        |asks, big| {
            assert!(
                asks.iter().any(|a| a.stream == stream),
                "no range asked on stream {stream}: {asks:?}"
            );
            let files = Message::Files {
                files: vec![ferry_proto::SmallFile {
                    index: 0,
                    hash: *blake3::hash(&big[..1024]).as_bytes(),
                    bytes: Bytes::copy_from_slice(&big[..1024]),
                }],
            };
            vec![(stream, files)]
        },
        |_| "Files entry for entry 0, which was asked in ranges".to_string(),
    );
}

#[test]
fn a_files_entry_for_a_file_asked_in_ranges_is_refused_on_stream_0() {
    files_entry_for_a_ranged_file(0);
}

/// Stream 1 has a range of the file open: the rule broken is the same.
#[test]
fn a_files_entry_for_a_file_asked_in_ranges_is_refused_on_a_joined_stream() {
    files_entry_for_a_ranged_file(1);
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
