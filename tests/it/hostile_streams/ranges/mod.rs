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

mod faults;
mod refusals;
