//! The target's session core, played against by hand: a test is the source (it sends
//! frames) and the driver (it answers the core's work as an honest target would). Every
//! rule a source can break is tried both ways, honest and broken, in milliseconds.

mod content;
mod honest;
mod hostile;
mod property;
mod ranges;
mod space;
mod streams;

use std::collections::{HashMap, VecDeque};

use ferry_proto::session::target::{
    Asked, FileOutcome, PlanOutcome, TargetCore, TargetWork, Verdict,
};
use ferry_proto::{Content, Entry, Filter, Limits, Message, Meta, SessionError};

pub fn file(name: &str, size: u64) -> Entry {
    Entry {
        name: name.as_bytes().to_vec(),
        meta: Meta::default(),
        content: Content::File {
            size,
            checksum: None,
        },
    }
}

pub fn dir(name: &str) -> Entry {
    Entry {
        name: name.as_bytes().to_vec(),
        meta: Meta::default(),
        content: Content::Dir,
    }
}

pub fn symlink(name: &str) -> Entry {
    Entry {
        name: name.as_bytes().to_vec(),
        meta: Meta::default(),
        content: Content::Symlink {
            target: b"elsewhere".to_vec(),
        },
    }
}

pub fn link(name: &str, leader: u64, leader_path: &str) -> Entry {
    Entry {
        name: name.as_bytes().to_vec(),
        meta: Meta::default(),
        content: Content::HardLink {
            leader,
            path: leader_path.as_bytes().to_vec(),
        },
    }
}

pub fn list(dir: &str, first: u64, entries: Vec<Entry>, dir_done: bool) -> Message {
    Message::List {
        dir: dir.as_bytes().to_vec(),
        first,
        entries,
        dir_done,
        dir_complete: true,
    }
}

pub fn root() -> Message {
    Message::Root {
        meta: Meta::default(),
    }
}

pub fn list_end(entries: u64) -> Message {
    Message::ListEnd {
        entries,
        read_errors: 0,
    }
}

pub fn data(index: u64) -> Message {
    data_at(index, 0, 1)
}

pub fn data_at(index: u64, offset: u64, len: usize) -> Message {
    Message::Data {
        index,
        offset,
        bytes: bytes::Bytes::from(vec![b'x'; len]),
    }
}

pub fn file_end(index: u64) -> Message {
    end_at(index, 1)
}

pub fn end_at(index: u64, size: u64) -> Message {
    Message::FileEnd {
        index,
        size,
        hash: [0; 32],
    }
}

/// A target driven by hand: the core, the work it asked for and not yet taken, and the
/// messages it sent.
pub struct Target {
    pub core: TargetCore,
    /// Work the test has not looked at yet (plans are answered as they come).
    pub work: VecDeque<TargetWork>,
    pub acks: Vec<u64>,
    /// Files wanted so far, in order.
    pub wanted: Vec<u64>,
    /// Links the core said to make, and to fail.
    pub made: Vec<u64>,
    pub failed_links: Vec<u64>,
    /// Directories finished, in order.
    pub finished: Vec<String>,
    /// Frames passed to receivers: (index, message name).
    pub received: Vec<(u64, &'static str)>,
    /// Files whose plan the test refuses (too large, say).
    pub refuse: Vec<u64>,
    /// How to ask for a file, when not whole.
    pub ask_as: HashMap<u64, Asked>,
}

impl Default for Target {
    fn default() -> Self {
        Target::with(Limits::default(), Filter::default())
    }
}

impl Target {
    pub fn new() -> Target {
        Target::default()
    }

    /// A target whose listing window is `window` entries.
    pub fn windowed(window: u64) -> Target {
        let limits = Limits {
            window,
            ..Limits::default()
        };
        Target::with(limits, Filter::default())
    }

    pub fn with(limits: Limits, filter: Filter) -> Target {
        Target {
            core: TargetCore::new(filter, limits, std::hash::RandomState::new()),
            work: VecDeque::new(),
            acks: Vec::new(),
            wanted: Vec::new(),
            made: Vec::new(),
            failed_links: Vec::new(),
            finished: Vec::new(),
            received: Vec::new(),
            refuse: Vec::new(),
            ask_as: HashMap::new(),
        }
    }

    /// Sends one message from the source; plans come back answered as an honest
    /// target's planner would (every file wanted, every hard link to be made).
    pub fn send(&mut self, message: Message) -> Result<(), SessionError> {
        self.core.handle_message(message)?;
        self.pump();
        Ok(())
    }

    /// Does the core's work and collects its Acks.
    pub fn pump(&mut self) {
        while let Some(work) = self.core.poll_work() {
            match work {
                TargetWork::Plan(frame) => {
                    let mut outcome = PlanOutcome::default();
                    for e in &frame.entries {
                        match e.entry.content {
                            Content::File { .. } if self.refuse.contains(&e.index) => {
                                outcome.refused.push(e.index)
                            }
                            Content::File { .. } => outcome.wants.push(e.index),
                            Content::HardLink { .. } => outcome.links.push(e.index),
                            _ => {}
                        }
                    }
                    self.wanted.extend(&outcome.wants);
                    let wants = outcome.wants.clone();
                    self.core.handle_planned(outcome);
                    for index in wants {
                        let asked = self.ask_as.get(&index).copied().unwrap_or(Asked::Whole);
                        self.core.handle_asked(index, asked);
                    }
                }
                TargetWork::MakeLinks(links) => {
                    for index in links {
                        self.made.push(index);
                        self.core.handle_link(index, true);
                    }
                }
                TargetWork::FailLinks(links) => {
                    for index in links {
                        self.failed_links.push(index);
                        self.core.handle_link(index, false);
                    }
                }
                TargetWork::FinishDirs(dirs) => self
                    .finished
                    .extend(dirs.into_iter().map(|(path, _)| path.to_string())),
                TargetWork::Receive { index, frame } => self.received.push((index, frame.name())),
            }
        }
        while let Some(message) = self.core.poll_transmit() {
            match message {
                Message::Ack { through } => self.acks.push(through),
                other => panic!("the core sent {}", other.name()),
            }
        }
    }

    /// A receiver reports on file `index`.
    pub fn file_done(&mut self, index: u64, outcome: FileOutcome) -> Verdict {
        let verdict = self.core.handle_file(index, outcome);
        if verdict == Verdict::Resend {
            self.core.handle_asked(index, Asked::Whole);
        }
        self.pump();
        verdict
    }

    /// Sends a file's content as an honest source does, and commits it.
    pub fn deliver(&mut self, index: u64) {
        self.send(data(index)).expect("data for a wanted file");
        self.send(file_end(index))
            .expect("FileEnd for a wanted file");
        assert_eq!(self.file_done(index, FileOutcome::Committed), Verdict::Done);
    }

    pub fn last_ack(&self) -> u64 {
        self.acks.last().copied().unwrap_or(0)
    }
}

/// The protocol error a broken rule gives, with its text.
pub fn refused(result: Result<(), SessionError>) -> String {
    match result {
        Err(SessionError::Protocol(message)) => message,
        other => panic!("expected a protocol error, got {other:?}"),
    }
}
