//! The source's side of the pair: a walker over a fake tree that lists as the window
//! allows, and senders that answer the core's work a few bytes a frame, interleaved, on
//! the stream each file was asked on; over several streams, some small whole files go in
//! `Files` frames instead.

use std::collections::{HashMap, VecDeque};

use ferry_proto::session::source::{Ask, FilesFrame, SourceCore, SourceEvent, WorkId};
use ferry_proto::{Content, Entry, Limits, Message, Meta, SessionError, StreamId};

use super::tree::{hash, Node, Tree};
use super::Dice;

/// One directory's listing, not yet listed.
struct Pending {
    dir: String,
    entries: VecDeque<(Entry, Option<String>)>,
}

/// A file (or a `Files` frame of several) being sent on `stream`: its frames still to go.
struct Sending {
    ids: Vec<WorkId>,
    stream: StreamId,
    frames: VecDeque<Message>,
}

pub struct Source {
    pub core: SourceCore<String>,
    tree: Tree,
    listings: VecDeque<Pending>,
    list_ended: bool,
    sending: Vec<Sending>,
    pub done: bool,
    pub reports: Vec<Message>,
    max_frame: usize,
    limits: Limits,
    /// The session has the `streams` option.
    streams: bool,
    /// `Files` frames put together.
    pub files_frames: u64,
}

impl Source {
    pub fn new(tree: Tree, limits: &Limits, max_frame: usize, streams: u16) -> Source {
        // Index of each path in listing order, for hard links' leaders.
        let order = tree.walk_order();
        let index: HashMap<&String, u64> = order.iter().zip(0u64..).collect();
        let listings = tree
            .dirs_in_walk_order()
            .into_iter()
            .map(|dir| Pending {
                entries: tree
                    .children(&dir)
                    .into_iter()
                    .map(|(name, path)| {
                        let (content, payload) = match &tree.0[&path] {
                            Node::Dir => (Content::Dir, None),
                            Node::Symlink(target) => (
                                Content::Symlink {
                                    target: target.clone(),
                                },
                                None,
                            ),
                            Node::File(bytes) => (
                                Content::File {
                                    size: bytes.len() as u64,
                                    checksum: Some(hash(bytes)),
                                },
                                Some(path.clone()),
                            ),
                            Node::Link(leader) => (
                                Content::HardLink {
                                    leader: index[leader],
                                    path: leader.clone().into_bytes(),
                                },
                                None,
                            ),
                        };
                        let entry = Entry {
                            name: name.into_bytes(),
                            meta: Meta::default(),
                            content,
                        };
                        (entry, payload)
                    })
                    .collect(),
                dir,
            })
            .collect();
        let mut core = SourceCore::new(limits.clone(), 2, Meta::default());
        if streams > 1 {
            core = core.with_streams(streams);
            for k in 1..streams {
                core.stream_joined(StreamId(k));
            }
        }
        Source {
            core,
            tree,
            listings,
            list_ended: false,
            sending: Vec::new(),
            done: false,
            reports: Vec::new(),
            max_frame,
            limits: limits.clone(),
            streams: streams > 1,
            files_frames: 0,
        }
    }

    /// Lists the next frame if the window has room; true if it did anything.
    pub fn list_some(&mut self, rng: &mut Dice) -> bool {
        let room = self.core.list_room();
        let Some(pending) = self.listings.front_mut() else {
            if !self.list_ended {
                self.list_ended = true;
                self.core.list_end(0);
                return true;
            }
            return false;
        };
        let want = 1 + rng.below(self.max_frame as u64) as usize;
        let count = want.min(pending.entries.len()).min(room as usize);
        if count == 0 && !pending.entries.is_empty() {
            return false;
        }
        let entries: Vec<_> = pending.entries.drain(..count).collect();
        let done = pending.entries.is_empty();
        let dir = pending.dir.clone().into_bytes();
        if done {
            self.listings.pop_front();
        }
        self.core.list(dir, entries, done, true);
        true
    }

    /// Takes the core's new work: each file becomes frames a few bytes each.
    pub fn take_work(&mut self, rng: &mut Dice) {
        let mut batches: HashMap<StreamId, (FilesFrame, Vec<WorkId>)> = HashMap::new();
        while let Some(work) = self.core.poll_work() {
            let content = self.tree.content(&work.file).unwrap_or_default();
            let (batch, ids) = batches
                .entry(work.stream)
                .or_insert_with(|| (FilesFrame::new(&self.limits), Vec::new()));
            if self.streams
                && work.ask == Ask::Whole
                && batch.takes(content.len() as u64)
                && rng.below(2) == 0
            {
                let (hash, bytes) = (hash(&content), bytes::Bytes::from(content));
                if let Err(file) = batch.push(work.index, hash, bytes) {
                    let frame = batch.take().expect("a full frame has entries");
                    self.files_frames += 1;
                    self.sending.push(Sending {
                        ids: std::mem::take(ids),
                        stream: work.stream,
                        frames: VecDeque::from([frame]),
                    });
                    batch
                        .push(file.index, file.hash, file.bytes)
                        .expect("an empty frame");
                }
                ids.push(work.id);
                continue;
            }
            if let Ask::Range { offset, len, have } = work.ask {
                // The pair's files are far below a range's size, so its target asks for
                // none; were one asked, its frames would be these, the pair's hash
                // standing for the range's chaining value.
                let (from, to) = (offset as usize, (offset + len) as usize);
                let range = content.get(from..to.min(content.len())).unwrap_or_default();
                let cv = hash(range);
                let same = have == Some(cv);
                let mut frames = VecDeque::new();
                if !same && !range.is_empty() {
                    frames.push_back(Message::Data {
                        index: work.index,
                        offset,
                        bytes: bytes::Bytes::copy_from_slice(range),
                    });
                }
                frames.push_back(Message::RangeEnd {
                    index: work.index,
                    offset,
                    len,
                    same,
                    cv,
                });
                self.sending.push(Sending {
                    ids: vec![work.id],
                    stream: work.stream,
                    frames,
                });
                continue;
            }
            let start = match work.ask {
                // The pair's source has no delta search: it answers a delta ask with
                // data, which the protocol allows.
                Ask::Whole | Ask::Delta(_) => 0,
                Ask::Range { .. } => unreachable!("sent above"),
                Ask::Resume { offset, hash: h } => {
                    let prefix = content.get(..offset as usize);
                    match prefix {
                        Some(p) if hash(p) == h => offset,
                        _ => 0,
                    }
                }
            };
            let mut frames = VecDeque::new();
            let mut at = start as usize;
            while at < content.len() {
                let n = (1 + rng.below(8) as usize).min(content.len() - at);
                frames.push_back(Message::Data {
                    index: work.index,
                    offset: at as u64,
                    bytes: bytes::Bytes::copy_from_slice(&content[at..at + n]),
                });
                at += n;
            }
            frames.push_back(Message::FileEnd {
                index: work.index,
                size: content.len() as u64,
                hash: hash(&content),
            });
            self.sending.push(Sending {
                ids: vec![work.id],
                stream: work.stream,
                frames,
            });
        }
        for (stream, (mut batch, ids)) in batches {
            if let Some(frame) = batch.take() {
                self.files_frames += 1;
                self.sending.push(Sending {
                    ids,
                    stream,
                    frames: VecDeque::from([frame]),
                });
            }
        }
    }

    /// The next frame of a file being sent, from a sender picked at random (files
    /// interleave; each file's frames stay in order).
    /// Senders of a lost stream stop (their writes fail) and answer their work.
    pub fn next_data(&mut self, rng: &mut Dice) -> Option<(StreamId, Message)> {
        let core = &mut self.core;
        self.sending.retain(|sending| {
            let live = core.is_stream_live(sending.stream);
            if !live {
                sending.ids.iter().for_each(|&id| core.handle_answered(id));
            }
            live
        });
        if self.sending.is_empty() {
            return None;
        }
        let k = rng.below(self.sending.len() as u64) as usize;
        let stream = self.sending[k].stream;
        let frame = self.sending[k].frames.pop_front();
        if self.sending[k].frames.is_empty() {
            for id in self.sending.swap_remove(k).ids {
                self.core.handle_answered(id);
            }
        }
        frame.map(|frame| (stream, frame))
    }

    /// This side sees data stream `stream` end.
    pub fn lost(&mut self, stream: StreamId) {
        self.core.stream_lost(stream);
    }

    pub fn handle(&mut self, stream: StreamId, message: Message) -> Result<(), SessionError> {
        self.core.handle_message_on(stream, message)?;
        while let Some(event) = self.core.poll_event() {
            match event {
                SourceEvent::Done(_) => self.done = true,
                SourceEvent::Report(report) => self.reports.push(report),
                SourceEvent::Resolved(_) => {}
            }
        }
        Ok(())
    }
}
