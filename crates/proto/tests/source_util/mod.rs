//! The target played by hand against the source core: a core that listed a few
//! entries, the messages a target sends, and the checks that one was accepted or
//! refused with the words a person needs.

#![allow(dead_code)] // Each test file uses its own share.

use ferry_proto::session::source::{SourceCore, SourceEvent, Work};
use ferry_proto::{Content, Entry, Limits, Message, Meta, SessionError, TargetStats};

/// Small bounds, so that each is reached in a few messages.
pub fn limits() -> Limits {
    Limits {
        window: 8,
        max_signature: 100,
        signature_window: 300,
        ..Limits::default()
    }
}

pub const SENDERS: usize = 2;

pub fn entry(name: &str, content: Content) -> Entry {
    Entry {
        name: name.as_bytes().to_vec(),
        meta: Meta::default(),
        content,
    }
}

/// A regular file, its payload its name.
pub fn file(name: &'static str) -> (Entry, Option<&'static str>) {
    let content = Content::File {
        size: 1000,
        checksum: None,
    };
    (entry(name, content), Some(name))
}

pub fn dir(name: &'static str) -> (Entry, Option<&'static str>) {
    (entry(name, Content::Dir), None)
}

pub fn hard_link(name: &'static str, leader: u64) -> (Entry, Option<&'static str>) {
    let content = Content::HardLink {
        leader,
        path: b"f0".to_vec(),
    };
    (entry(name, content), None)
}

pub type Core = SourceCore<&'static str>;

/// A core that listed `entries` in one frame of the root (and drained `Root` and it).
pub fn listed(entries: Vec<(Entry, Option<&'static str>)>) -> Core {
    let mut core = SourceCore::new(limits(), SENDERS, Meta::default());
    core.list(Vec::new(), entries, true, true);
    drain_transmit(&mut core);
    core
}

/// Files f0..f3, a directory d4, a hard link h5 to f0.
pub fn six() -> Core {
    listed(vec![
        file("f0"),
        file("f1"),
        file("f2"),
        file("f3"),
        dir("d4"),
        hard_link("h5", 0),
    ])
}

/// As [`six`], with `ListEnd` sent.
pub fn six_ended() -> Core {
    let mut core = six();
    core.list_end(0);
    drain_transmit(&mut core);
    core
}

pub fn drain_transmit(core: &mut Core) -> Vec<Message> {
    std::iter::from_fn(|| core.poll_transmit()).collect()
}

pub fn works(core: &mut Core) -> Vec<Work<&'static str>> {
    std::iter::from_fn(|| core.poll_work()).collect()
}

pub fn events(core: &mut Core) -> Vec<SourceEvent<&'static str>> {
    std::iter::from_fn(|| core.poll_event()).collect()
}

pub fn want(index: u64) -> Message {
    Message::Want {
        index,
        delta: false,
    }
}

pub fn want_delta(index: u64) -> Message {
    Message::Want { index, delta: true }
}

pub fn resume(index: u64, offset: u64) -> Message {
    Message::Resume {
        index,
        offset,
        hash: [7; 32],
    }
}

pub fn piece(index: u64, len: usize, last: bool) -> Message {
    Message::Signature {
        index,
        bytes: vec![0xab; len].into(),
        last,
    }
}

pub fn ack(through: u64) -> Message {
    Message::Ack { through }
}

pub fn done() -> Message {
    Message::Done {
        stats: TargetStats::default(),
    }
}

/// The protocol error `message` gets, which must say `what`.
#[track_caller]
pub fn refused(core: &mut Core, message: Message, what: &str) -> String {
    match core.handle_message(message) {
        Err(SessionError::Protocol(text)) => {
            assert!(text.contains(what), "{text:?} does not say {what:?}");
            text
        }
        other => panic!("expected a protocol error saying {what:?}, got {other:?}"),
    }
}

#[track_caller]
pub fn accepted(core: &mut Core, message: Message) {
    if let Err(e) = core.handle_message(message) {
        panic!("refused an honest message: {e}");
    }
}
