//! A puller's live progress, read off the frames going by: the source's listing gives
//! the totals, its content frames the bytes received, and the local target's own `Want`s
//! and `Ack`s which files are resolved (those never wanted were unchanged).
//!
//! ```text
//! readers ── List / ListEnd / Data / Hole / Delta / Files ──▶ Tracker::incoming ─┐
//! tee, joined writers ── Want / Wants / Resume / Ack ──────▶ Tracker::outgoing ─┴▶ Progress
//! ```
//!
//! Holds only the files listed beyond the target's watermark: the source lists at most a
//! window ahead of it, so memory stays flat however large the tree.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use ferry_proto::{Content, Message};

use crate::report::progress::Progress;

pub struct Tracker {
    progress: Arc<Progress>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Files (and hard links, size 0) listed and not yet acknowledged: (index, size).
    listed: VecDeque<(u64, u64)>,
    /// Of those, the ones the target asked content for.
    wanted: HashSet<u64>,
    /// Files the target asked to resume, with the length of its partial: once the
    /// source's first frame starts there, that prefix counts as done.
    resumed: HashMap<u64, u64>,
    /// Files (and their bytes) asked for and then acknowledged: committed, unless they
    /// failed (a cut attempt's are carried into the next one's count).
    resolved_wanted: (u64, u64),
}

impl Tracker {
    pub fn new(progress: Arc<Progress>) -> Tracker {
        Tracker {
            progress,
            state: Mutex::new(State::default()),
        }
    }

    /// A message from the source.
    pub fn incoming(&self, message: &Message) {
        match message {
            Message::List { first, entries, .. } => {
                let mut state = self.state.lock().expect("tracker lock");
                for (k, entry) in entries.iter().enumerate() {
                    let size = match entry.content {
                        Content::File { size, .. } => size,
                        Content::HardLink { .. } => 0,
                        _ => continue,
                    };
                    self.progress.listed(size);
                    state.listed.push_back((first + k as u64, size));
                }
            }
            Message::ListEnd { .. } => self.progress.scan_done(),
            Message::Data {
                index,
                offset,
                bytes,
            } => self.received(*index, *offset, bytes.len() as u64),
            Message::Files { files } => {
                for file in files {
                    self.received(file.index, 0, file.bytes.len() as u64);
                }
            }
            Message::Hole { index, offset, len }
            | Message::Delta {
                index, offset, len, ..
            } => self.received(*index, *offset, *len),
            // A partial as long as the file: the source accepted it and sent no data.
            Message::FileEnd { index, size, .. } => {
                let mut state = self.state.lock().expect("tracker lock");
                if let Some(partial) = state.resumed.remove(index) {
                    self.progress.sent(partial.min(*size));
                }
            }
            _ => {}
        }
    }

    /// `len` bytes of file `index` at `offset` arrived.
    fn received(&self, index: u64, offset: u64, len: u64) {
        let mut state = self.state.lock().expect("tracker lock");
        if let Some(partial) = state.resumed.remove(&index) {
            // The source sends from the partial's end if its prefix matched, else from 0.
            if offset == partial {
                self.progress.sent(partial);
            }
        }
        self.progress.sent(len);
    }

    /// Files and bytes asked for and acknowledged so far.
    pub fn resolved_wanted(&self) -> (u64, u64) {
        self.state.lock().expect("tracker lock").resolved_wanted
    }

    /// A message from the local target to the source.
    pub fn outgoing(&self, message: &Message) {
        match message {
            Message::Want { index, .. } => {
                self.state
                    .lock()
                    .expect("tracker lock")
                    .wanted
                    .insert(*index);
            }
            Message::Wants { indices } => {
                let mut state = self.state.lock().expect("tracker lock");
                state.wanted.extend(indices.iter().copied());
            }
            Message::Resume { index, offset, .. } => {
                let mut state = self.state.lock().expect("tracker lock");
                state.wanted.insert(*index);
                state.resumed.insert(*index, *offset);
            }
            Message::Ack { through } => {
                let mut state = self.state.lock().expect("tracker lock");
                let (mut files, mut skipped) = (0, 0);
                while let Some(&(index, size)) = state.listed.front() {
                    if index >= *through {
                        break;
                    }
                    state.listed.pop_front();
                    files += 1;
                    if state.wanted.remove(&index) {
                        state.resolved_wanted.0 += 1;
                        state.resolved_wanted.1 += size;
                    } else {
                        skipped += size;
                    }
                }
                self.progress.resolved(files, skipped);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_net::WireCounter;
    use ferry_proto::{Entry, Meta};

    fn file(name: &str, size: u64) -> Entry {
        Entry {
            name: name.as_bytes().to_vec(),
            meta: Meta::default(),
            content: Content::File {
                size,
                checksum: None,
            },
        }
    }

    #[test]
    fn acknowledged_files_count_as_done_and_unwanted_ones_as_skipped() {
        let progress = Arc::new(Progress::new(WireCounter::default(), false));
        let tracker = Tracker::new(progress.clone());
        let dir = Entry {
            name: b"d".to_vec(),
            meta: Meta::default(),
            content: Content::Dir,
        };
        tracker.incoming(&Message::List {
            dir: Vec::new(),
            first: 0,
            entries: vec![file("a", 100), dir, file("b", 50), file("c", 7)],
            dir_done: true,
            dir_complete: true,
        });
        tracker.incoming(&Message::ListEnd {
            entries: 4,
            read_errors: 0,
        });
        tracker.outgoing(&Message::Want {
            index: 2,
            delta: false,
        });
        tracker.incoming(&Message::Data {
            index: 2,
            offset: 0,
            bytes: bytes::Bytes::from(vec![0u8; 50]),
        });
        tracker.outgoing(&Message::Ack { through: 3 });
        let seen = progress.snapshot();
        assert_eq!((seen.files_total, seen.bytes_total), (3, 157));
        assert!(seen.totals_final);
        // a (unchanged, 100 bytes skipped) and b (50 received) are done; c is not yet.
        assert_eq!((seen.files_done, seen.bytes_done), (2, 150));
        tracker.outgoing(&Message::Ack { through: 4 });
        let seen = progress.snapshot();
        assert_eq!((seen.files_done, seen.bytes_done), (3, 157));
        assert!(tracker.state.lock().unwrap().listed.is_empty());
    }

    #[test]
    fn a_resumed_prefix_counts_once_the_source_sends_from_its_end() {
        let progress = Arc::new(Progress::new(WireCounter::default(), false));
        let tracker = Tracker::new(progress.clone());
        tracker.incoming(&Message::List {
            dir: Vec::new(),
            first: 0,
            entries: vec![file("a", 100), file("b", 100)],
            dir_done: true,
            dir_complete: true,
        });
        for index in [0, 1] {
            tracker.outgoing(&Message::Resume {
                index,
                offset: 60,
                hash: [0; 32],
            });
        }
        // a: the prefix matched, the rest follows; b: it did not, all of it follows.
        let data = |index, offset, len: usize| Message::Data {
            index,
            offset,
            bytes: bytes::Bytes::from(vec![0u8; len]),
        };
        tracker.incoming(&data(0, 60, 40));
        tracker.incoming(&data(1, 0, 100));
        assert_eq!(progress.snapshot().bytes_done, 200);
    }
}
