//! The target's side of the pair: a fake volume planned against as Ferry's planner does
//! (same content: unchanged; else wanted, as a delta when a basis is there), receivers
//! that assemble and verify files, links made once their leader is in place, deletions
//! at the end, then `Done`. Over several streams each file is asked on a stream picked at
//! random (whole ones often in a `Wants` batch), and the files of a lost stream are asked
//! again on the live ones.

use std::collections::{BTreeSet, HashMap};

use ferry_proto::session::target::{
    Asked, FileOutcome, PlanOutcome, TargetCore, TargetWork, Verdict,
};
use ferry_proto::{Content, Filter, Limits, Message, SessionError, StreamId, TargetStats};

use super::tree::{hash, Node, Tree};
use super::Dice;

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
    /// Frames to send, each with its stream.
    pub outbox: Vec<(StreamId, Message)>,
    pub done: bool,
    pub file_errors: u64,
    /// Files asked for (`Want`s sent).
    pub wants: u64,
    /// Files asked for again after their stream was lost.
    pub reasked: u64,
    /// The session has the `streams` option.
    streams: bool,
    rng: Dice,
}

/// A checked path as the fake tree keys it (the pair's names are ASCII).
fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("the pair's names are ASCII")
}

impl Target {
    pub fn new(tree: Tree, limits: &Limits, streams: u16, seed: u64) -> Target {
        let mut core = TargetCore::new(Filter::default(), limits.clone(), Default::default());
        if streams > 1 {
            core = core.with_streams(streams);
            for k in 1..streams {
                core.stream_joined(StreamId(k));
            }
        }
        Target {
            core,
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
            reasked: 0,
            streams: streams > 1,
            rng: Dice::new(seed),
        }
    }

    pub fn handle(&mut self, stream: StreamId, message: Message) -> Result<(), SessionError> {
        self.core.handle_message_on(stream, message)?;
        self.work();
        Ok(())
    }

    /// This side sees data stream `stream` end.
    pub fn lost(&mut self, stream: StreamId) {
        self.core.stream_lost(stream);
        self.work();
    }

    /// Asks for these files, each on a live stream picked at random (stream 0 in a
    /// session of one), whole ones on a stream sometimes together in one `Wants`.
    fn ask(&mut self, asks: Vec<(u64, Asked)>) {
        let live = self.core.live_streams();
        let mut batches: HashMap<StreamId, Vec<u64>> = HashMap::new();
        for (index, asked) in asks {
            let stream = live[self.rng.below(live.len() as u64) as usize];
            self.wants += 1;
            if self.streams && asked == Asked::Whole && self.rng.below(2) == 0 {
                batches.entry(stream).or_default().push(index);
                continue;
            }
            self.core.handle_asked_on(index, asked, stream);
            let delta = asked == Asked::Delta;
            self.outbox.push((stream, Message::Want { index, delta }));
            if delta {
                // In two pieces, so a stream can be lost between them.
                for (bytes, last) in [(&b"si"[..], false), (&b"g"[..], true)] {
                    let signature = Message::Signature {
                        index,
                        bytes: bytes::Bytes::from_static(bytes),
                        last,
                    };
                    self.outbox.push((stream, signature));
                }
            }
        }
        let mut batches: Vec<_> = batches.into_iter().collect();
        batches.sort();
        for (stream, indices) in batches {
            let wants = self.core.ask_batch(stream, indices);
            self.outbox.push((stream, wants));
        }
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
                    self.ask(asks);
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
        let mut reasks = Vec::new();
        while let Some(reask) = self.core.poll_reask() {
            // What came of it on the lost stream is void.
            self.receiving.remove(&reask.index);
            self.reasked += 1;
            let asked = match reask.asked {
                Asked::Delta => Asked::Delta,
                _ => Asked::Whole,
            };
            reasks.push((reask.index, asked));
        }
        self.ask(reasks);
        while let Some(message) = self.core.poll_transmit() {
            self.outbox.push((StreamId::CONTROL, message));
        }
        if self.core.is_settled() && !self.done {
            if self.core.delete_ok() {
                for path in std::mem::take(&mut self.extras) {
                    self.tree.remove(&path);
                }
            }
            let _ = self.core.take_remaining_dirs();
            self.done = true;
            let done = Message::Done {
                stats: TargetStats::default(),
            };
            self.outbox.push((StreamId::CONTROL, done));
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
                    Verdict::Resend => self.ask(vec![(index, Asked::Whole)]),
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
