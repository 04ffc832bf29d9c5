//! The target's side of the pair: a fake volume planned against as Ferry's planner does
//! (same content: unchanged; else wanted, as a delta when a basis is there), receivers
//! that assemble and verify files, links made once their leader is in place, deletions
//! at the end, then `Done`.

use std::collections::{BTreeSet, HashMap};

use ferry_proto::session::target::{
    Asked, FileOutcome, PlanOutcome, TargetCore, TargetWork, Verdict,
};
use ferry_proto::{Content, Filter, Limits, Message, SessionError, TargetStats};

use super::tree::{hash, Node, Tree};

pub struct Target {
    pub core: TargetCore,
    pub tree: Tree,
    /// Paths of entries planned and not yet in place, by index.
    paths: HashMap<u64, String>,
    /// Leader paths of planned hard links.
    leaders: HashMap<u64, String>,
    /// Files being received: their bytes so far.
    receiving: HashMap<u64, Vec<u8>>,
    /// Entries to delete at the end (not listed by the source).
    extras: BTreeSet<String>,
    /// Paths listed so far in the directory being listed.
    listed_so_far: BTreeSet<String>,
    pub outbox: Vec<Message>,
    pub done: bool,
    pub file_errors: u64,
    /// Files asked for (`Want`s sent).
    pub wants: u64,
}

/// A checked path as the fake tree keys it (the pair's names are ASCII).
fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("the pair's names are ASCII")
}

impl Target {
    pub fn new(tree: Tree, limits: &Limits) -> Target {
        Target {
            core: TargetCore::new(Filter::default(), limits.clone(), Default::default()),
            tree,
            paths: HashMap::new(),
            leaders: HashMap::new(),
            receiving: HashMap::new(),
            extras: BTreeSet::new(),
            listed_so_far: BTreeSet::new(),
            outbox: Vec::new(),
            done: false,
            file_errors: 0,
            wants: 0,
        }
    }

    pub fn handle(&mut self, message: Message) -> Result<(), SessionError> {
        self.core.handle_message(message)?;
        self.work();
        Ok(())
    }

    /// Does what the core asks, then sends its Acks, and `Done` once it is settled.
    pub fn work(&mut self) {
        while let Some(work) = self.core.poll_work() {
            match work {
                TargetWork::Plan(frame) => {
                    let mut outcome = PlanOutcome::default();
                    let mut asks = Vec::new();
                    for e in frame.entries {
                        let path = text(e.path.as_bytes());
                        self.listed_so_far.insert(path.clone());
                        match e.entry.content {
                            Content::Dir => {
                                if self.tree.0.get(&path) != Some(&Node::Dir) {
                                    self.tree.remove(&path);
                                    self.tree.0.insert(path, Node::Dir);
                                }
                            }
                            Content::Symlink { target } => {
                                self.tree.remove(&path);
                                self.tree.0.insert(path, Node::Symlink(target));
                            }
                            Content::File { size, checksum } => {
                                let have = match self.tree.0.get(&path) {
                                    Some(Node::File(bytes)) => Some(bytes.len() as u64),
                                    _ => None,
                                };
                                // Compared by content, as `--checksum` does: the pair's
                                // entries carry no times to compare.
                                let same = have == Some(size)
                                    && self.tree.content(&path).map(|c| hash(&c)) == checksum;
                                if !same {
                                    outcome.wants.push(e.index);
                                    let asked = match have {
                                        Some(_) => Asked::Delta,
                                        None => Asked::Whole,
                                    };
                                    asks.push((e.index, asked));
                                    self.paths.insert(e.index, path);
                                }
                            }
                            Content::HardLink { .. } => {
                                outcome.links.push(e.index);
                                let leader = text(e.leader_path.expect("checked").as_bytes());
                                self.leaders.insert(e.index, leader);
                                self.paths.insert(e.index, path);
                            }
                            Content::Special { .. } => {}
                        }
                    }
                    if frame.dir_done {
                        let listed = std::mem::take(&mut self.listed_so_far);
                        let dir = text(frame.dir.as_bytes());
                        for (_, path) in self.tree.children(&dir) {
                            if !listed.contains(&path) {
                                outcome.has_extras = true;
                                self.extras.insert(path);
                            }
                        }
                    }
                    self.core.handle_planned(outcome);
                    for (index, asked) in asks {
                        self.core.handle_asked(index, asked);
                        let delta = asked == Asked::Delta;
                        self.wants += 1;
                        self.outbox.push(Message::Want { index, delta });
                        if delta {
                            self.outbox.push(Message::Signature {
                                index,
                                bytes: bytes::Bytes::from_static(b"sig"),
                                last: true,
                            });
                        }
                    }
                }
                TargetWork::Receive { index, frame } => self.receive(index, frame),
                TargetWork::MakeLinks(links) => {
                    for index in links {
                        let leader = &self.leaders[&index];
                        let made = match self.tree.content(leader) {
                            Some(content) => {
                                let path = self.paths.remove(&index).expect("planned");
                                self.tree.remove(&path);
                                self.tree.0.insert(path, Node::File(content));
                                true
                            }
                            None => false,
                        };
                        self.core.handle_link(index, made);
                    }
                }
                TargetWork::FailLinks(links) => {
                    for index in links {
                        self.paths.remove(&index);
                        self.file_errors += 1;
                        self.core.handle_link(index, false);
                    }
                }
                TargetWork::FinishDirs(_) => {}
            }
        }
        while let Some(ack) = self.core.poll_transmit() {
            self.outbox.push(ack);
        }
        if self.core.is_settled() && !self.done {
            if self.core.delete_ok() {
                for path in std::mem::take(&mut self.extras) {
                    self.tree.remove(&path);
                }
            }
            let _ = self.core.take_remaining_dirs();
            self.done = true;
            self.outbox.push(Message::Done {
                stats: TargetStats::default(),
            });
        }
    }

    fn receive(&mut self, index: u64, frame: Message) {
        let buffer = self.receiving.entry(index).or_default();
        match frame {
            Message::Data { offset, bytes, .. } => {
                if offset == 0 {
                    buffer.clear();
                }
                buffer.extend_from_slice(&bytes);
            }
            Message::Hole { len, .. } => buffer.resize(buffer.len() + len as usize, 0),
            Message::FileEnd { hash: h, .. } => {
                let bytes = self.receiving.remove(&index).unwrap_or_default();
                let outcome = match hash(&bytes) == h {
                    true => {
                        let path = self.paths[&index].clone();
                        self.tree.remove(&path);
                        self.tree.0.insert(path, Node::File(bytes));
                        FileOutcome::Committed
                    }
                    false => FileOutcome::Mismatch,
                };
                match self.core.handle_file(index, outcome) {
                    Verdict::Resend => {
                        self.core.handle_asked(index, Asked::Whole);
                        self.outbox.push(Message::Want {
                            index,
                            delta: false,
                        });
                    }
                    Verdict::Failed => self.file_errors += 1,
                    Verdict::Done => {}
                }
            }
            Message::FileFailed { .. } => {
                self.receiving.remove(&index);
                let _ = self.core.handle_file(index, FileOutcome::Aborted);
            }
            _ => {}
        }
    }
}
