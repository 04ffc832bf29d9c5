//! The source's side of the pair: a walker over a fake tree that lists as the window
//! allows, and senders that answer the core's work a few bytes a frame, interleaved.

use std::collections::{HashMap, VecDeque};

use ferry_proto::session::source::{Ask, SourceCore, SourceEvent, WorkId};
use ferry_proto::{Content, Entry, Limits, Message, Meta, SessionError};

use super::tree::{hash, Node, Tree};
use super::Dice;

/// One directory's listing, not yet listed.
struct Pending {
    dir: String,
    entries: VecDeque<(Entry, Option<String>)>,
}

/// A file being sent: its frames still to go.
struct Sending {
    id: WorkId,
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
}

impl Source {
    pub fn new(tree: Tree, limits: &Limits, max_frame: usize) -> Source {
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
        Source {
            core: SourceCore::new(limits.clone(), 2, Meta::default()),
            tree,
            listings,
            list_ended: false,
            sending: Vec::new(),
            done: false,
            reports: Vec::new(),
            max_frame,
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
        while let Some(work) = self.core.poll_work() {
            let content = self.tree.content(&work.file).unwrap_or_default();
            let start = match work.ask {
                // The pair's source has no delta search: it answers a delta ask with
                // data, which the protocol allows.
                Ask::Whole | Ask::Delta(_) => 0,
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
                id: work.id,
                frames,
            });
        }
    }

    /// The next frame of a file being sent, from a sender picked at random (files
    /// interleave; each file's frames stay in order).
    pub fn next_data(&mut self, rng: &mut Dice) -> Option<Message> {
        if self.sending.is_empty() {
            return None;
        }
        let k = rng.below(self.sending.len() as u64) as usize;
        let frame = self.sending[k].frames.pop_front();
        if self.sending[k].frames.is_empty() {
            let id = self.sending.swap_remove(k).id;
            self.core.handle_answered(id);
        }
        frame
    }

    pub fn handle(&mut self, message: Message) -> Result<(), SessionError> {
        self.core.handle_message(message)?;
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
