//! The source's session core: every rule a target can break at the source, and the
//! listing window, as a state machine without I/O.
//!
//! It decides what goes out (`Root`, the `List` frames, `ListEnd`), which files a sender
//! must read and how (whole, as a delta against the target's signature, resumed after
//! a prefix, or one range of a large file), and what to report (entries the target
//! resolved, its changes and errors, its `Done`). It never reads a file, walks a tree,
//! hashes, or touches the connection: the engine's source driver does that and tells the
//! core what happened.
//!
//! ```text
//!  walker ── list(frame) / list_end ──┐                 ┌─▶ poll_transmit: Root, List, ListEnd
//!  target ── handle_message ──────────┼─▶ SourceCore<F> ├─▶ poll_work: file N whole / delta / resume / range
//!  senders ─ handle_answered(work) ───┘                 └─▶ poll_event: resolved, reports, Done
//! ```
//!
//! Must not import: anything that does I/O (see [`crate::session`]).

mod files;
mod listed;
mod ranges;
mod signatures;
mod streams;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::limits::Limits;
use crate::message::{Message, TargetStats};
use crate::model::{Content, Entry, Meta};
use crate::session::live::LiveStreams;
pub use crate::session::stream::MIN_RANGED;
use crate::session::stream::{is_multi_stream_frame, StreamId};
use crate::session::SessionError;
pub use files::{FilesFrame, FILES_FRAME_BYTES, SMALL_FILE};
use listed::Listed;
use signatures::Signatures;

/// Signatures a target may be sending at once, each up to [`Limits::max_signature`]: a
/// target computes two at a time, so more is a peer making the source buffer without
/// bound.
pub const SIGNATURES_IN_FLIGHT: usize = 4;

/// What a sender must do for one file the target asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ask {
    /// Send it whole (data and holes).
    Whole,
    /// Send it as a delta against the target's basis, whose serialized signature this
    /// is (not parsed here: the sender parses it, bounded by [`Limits::max_signature`]).
    Delta(Vec<u8>),
    /// The target holds its first `offset` bytes, whose BLAKE3 is `hash`: send the rest
    /// if that matches this side's prefix, else the whole file. `offset` is the peer's
    /// claim, unchecked against the file's size.
    Resume { offset: u64, hash: [u8; 32] },
    /// Send the range `offset..offset + len` (checked against the listed size: aligned
    /// to [`crate::RANGE`], within the file, `len` its range's length), then its
    /// `RangeEnd`. With `have`, the target holds those bytes with this chaining value:
    /// answer `same` without data if this side's are equal.
    Range {
        offset: u64,
        len: u64,
        have: Option<[u8; 32]>,
    },
}

/// Names one piece of work, to say when it is answered ([`SourceCore::handle_answered`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkId(u64);

/// A file to send: entry `index`, asked for as `ask` on `stream`, with the payload it was
/// listed with. Its frames go out on `stream` (stream 0 in a session over one stream).
#[derive(Debug)]
pub struct Work<F> {
    pub id: WorkId,
    pub index: u64,
    pub ask: Ask,
    pub file: F,
    pub stream: StreamId,
}

impl<F> Work<F> {
    /// Whether this work holds a signature the core counts against its memory bound
    /// until [`SourceCore::handle_answered`] releases it.
    pub fn holds_signature(&self) -> bool {
        matches!(self.ask, Ask::Delta(_))
    }
}

/// What the driver reports.
#[derive(Debug, PartialEq)]
pub enum SourceEvent<F> {
    /// An `Ack` resolved these entries (the target has them in place, unchanged, or
    /// failed them): the regular files among them with their payloads, and how many hard
    /// links.
    Resolved(Resolved<F>),
    /// Something the target reports to show: a `Change`, `FileError` or `NotApplied`,
    /// as it came (its words are the peer's: escape them to show them).
    Report(Message),
    /// The target finished, with its account. The session is over.
    Done(TargetStats),
}

/// The entries one `Ack` resolved.
#[derive(Debug, PartialEq)]
pub struct Resolved<F> {
    /// The new watermark: every entry below it is resolved.
    pub through: u64,
    /// The regular files among them, in index order.
    pub files: Vec<ResolvedFile<F>>,
    /// Hard links among them.
    pub links: u64,
}

/// A regular file the target resolved.
#[derive(Debug, PartialEq)]
pub struct ResolvedFile<F> {
    pub index: u64,
    /// The target asked for its content (else it had it already).
    pub wanted: bool,
    pub file: F,
}

/// Where the session is, named for what it waits for.
#[derive(Debug)]
enum State {
    /// Listing the tree: frames go out as the window allows; the target's wants and
    /// acks come in.
    Listing,
    /// `ListEnd` is out with `entries`: waiting for the target's acks through all of
    /// them, then its `Done`.
    ExpectDone { entries: u64 },
    /// The target said `Done`.
    Done,
    /// A rule was broken, or the target stopped: every later input gets this again.
    Failed(SessionError),
}

/// The source's session core, generic over `F`, what the driver keeps per listed
/// regular file (its path and size, say) and gets back with each piece of work and
/// with each resolved file.
///
/// Call order: create it (it queues `Root`), then, until [`SourceCore::is_done`] or an
/// error, feed it what happens and drain all three queues after each call:
/// * [`list`](SourceCore::list) one frame of a directory's listing, at most
///   [`list_room`](SourceCore::list_room) entries (the window past the target's last
///   `Ack`); then [`list_end`](SourceCore::list_end) once the walk is over;
/// * [`handle_message`](SourceCore::handle_message) for each message from the target;
///   an `Err` ends the session (tell the target with `Error{Protocol}` if it is
///   [`SessionError::Protocol`]);
/// * [`handle_answered`](SourceCore::handle_answered) when a sender has sent a piece of
///   work's `FileEnd` or `FileFailed`;
/// * over several streams ([`with_streams`](SourceCore::with_streams)):
///   [`handle_message_on`](SourceCore::handle_message_on) with the stream each message came
///   on (`handle_message` is stream 0's), [`stream_joined`](SourceCore::stream_joined) and
///   [`stream_lost`](SourceCore::stream_lost); each [`Work`] says its stream;
/// * [`poll_transmit`](SourceCore::poll_transmit) to the connection (stream 0),
///   [`poll_work`](SourceCore::poll_work) to the senders,
///   [`poll_event`](SourceCore::poll_event) to the report.
///
/// ```
/// use ferry_proto::session::source::{Ask, SourceCore, SourceEvent};
/// use ferry_proto::{Content, Entry, Limits, Message, Meta, TargetStats};
///
/// let file = Entry {
///     name: b"a".to_vec(),
///     meta: Meta::default(),
///     content: Content::File { size: 3, checksum: None },
/// };
/// let mut core = SourceCore::new(Limits::default(), 2, Meta::default());
/// assert!(matches!(core.poll_transmit(), Some(Message::Root { .. })));
/// assert!(core.list_room() >= 1);
/// core.list(Vec::new(), vec![(file, Some("payload for a"))], true, true);
/// core.list_end(0);
/// assert!(matches!(core.poll_transmit(), Some(Message::List { first: 0, .. })));
/// assert!(matches!(core.poll_transmit(), Some(Message::ListEnd { entries: 1, .. })));
///
/// core.handle_message(Message::Want { index: 0, delta: false }).unwrap();
/// let work = core.poll_work().unwrap();
/// assert_eq!((work.index, work.ask, work.file), (0, Ask::Whole, "payload for a"));
/// // ... a sender sends the file, then:
/// core.handle_answered(work.id);
///
/// core.handle_message(Message::Ack { through: 1 }).unwrap();
/// assert!(matches!(core.poll_event(), Some(SourceEvent::Resolved(_))));
/// core.handle_message(Message::Done { stats: TargetStats::default() }).unwrap();
/// assert!(matches!(core.poll_event(), Some(SourceEvent::Done(_))));
/// assert!(core.is_done());
/// ```
pub struct SourceCore<F> {
    state: State,
    window: u64,
    max_entries_per_frame: usize,
    max_wants_per_frame: usize,
    max_streams: u16,
    /// Entries listed so far: the index the next one gets.
    listed: u64,
    /// The target's watermark: every entry below it is resolved.
    acked: u64,
    /// Regular files listed and not yet resolved.
    files: BTreeMap<u64, Listed<F>>,
    /// Hard links listed and not yet resolved (counted as files in progress).
    links: BTreeSet<u64>,
    signatures: Signatures<F>,
    next_work: u64,
    transmit: VecDeque<Message>,
    work: VecDeque<Work<F>>,
    events: VecDeque<SourceEvent<F>>,
    /// The session's streams: stream 0 alone unless [`SourceCore::with_streams`].
    streams: LiveStreams,
}

impl<F: Clone> SourceCore<F> {
    /// A session about to list a tree whose root has `root` attributes; `senders` is how
    /// many sender threads may be finishing a file as the next signature arrives (the
    /// source holds that many signatures more than the target's window).
    pub fn new(limits: Limits, senders: usize, root: Meta) -> Self {
        SourceCore {
            state: State::Listing,
            window: limits.window,
            max_entries_per_frame: limits.max_entries_per_frame,
            max_wants_per_frame: limits.max_wants_per_frame,
            max_streams: limits.max_streams,
            listed: 0,
            acked: 0,
            files: BTreeMap::new(),
            links: BTreeSet::new(),
            signatures: Signatures::new(&limits, senders),
            next_work: 0,
            transmit: VecDeque::from([Message::Root { meta: root }]),
            work: VecDeque::new(),
            events: VecDeque::new(),
            streams: LiveStreams::default(),
        }
    }

    /// How many entries may be listed now: the window past the target's last `Ack`
    /// ([`Limits::window`]); 0 once the listing ended or the session is over.
    pub fn list_room(&self) -> u64 {
        match self.state {
            State::Listing => (self.acked + self.window).saturating_sub(self.listed),
            _ => 0,
        }
    }

    /// Entries listed so far: the index the next one listed gets.
    pub fn listed(&self) -> u64 {
        self.listed
    }

    /// The target's watermark: every entry below it is resolved.
    pub fn acked(&self) -> u64 {
        self.acked
    }

    /// Bytes of signatures held: being received, or handed to a sender that has not
    /// answered. At most [`Limits::signature_window`] plus one
    /// [`Limits::max_signature`] per sender.
    pub fn signature_bytes(&self) -> usize {
        self.signatures.held()
    }

    /// Whether the target said `Done`.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// Lists one frame of directory `dir`'s children (a relative path, empty for the
    /// root), numbered from [`listed`](Self::listed) on, each with its payload: `Some`
    /// for every regular file (only those can be asked for), `None` for the rest.
    /// `dir_done` marks the directory's last frame, `dir_complete` false says the source
    /// could not read all of it.
    ///
    /// # Panics
    /// With more entries than [`list_room`](Self::list_room) or
    /// [`Limits::max_entries_per_frame`], or a regular file without its payload: the
    /// driver's bugs, never the peer's. After a failure it does nothing.
    pub fn list(
        &mut self,
        dir: Vec<u8>,
        entries: Vec<(Entry, Option<F>)>,
        dir_done: bool,
        dir_complete: bool,
    ) {
        if let State::Failed(_) = self.state {
            return;
        }
        let count = entries.len() as u64;
        assert!(
            count <= self.list_room(),
            "listed {count} entries with room for {} (state {:?}): check list_room() first",
            self.list_room(),
            self.state
        );
        assert!(
            entries.len() <= self.max_entries_per_frame,
            "listed {count} entries in one frame, over the limit of {}",
            self.max_entries_per_frame
        );
        let first = self.listed;
        let mut listed = Vec::with_capacity(entries.len());
        for (k, (entry, file)) in entries.into_iter().enumerate() {
            let index = first + k as u64;
            match (&entry.content, file) {
                (Content::File { size, .. }, Some(file)) => {
                    self.files.insert(index, Listed::new(file, *size));
                }
                (Content::File { .. }, None) => {
                    panic!("regular file {index} listed without its payload")
                }
                (Content::HardLink { .. }, _) => {
                    self.links.insert(index);
                }
                _ => {}
            }
            listed.push(entry);
        }
        self.listed += count;
        self.transmit.push_back(Message::List {
            dir,
            first,
            entries: listed,
            dir_done,
            dir_complete,
        });
    }

    /// The walk is over: `read_errors` entries or directories could not be read. Queues
    /// `ListEnd`; from here on the core waits for the target's acks and `Done`.
    ///
    /// # Panics
    /// When called twice. After a failure it does nothing.
    pub fn list_end(&mut self, read_errors: u64) {
        match self.state {
            State::Listing => {}
            State::Failed(_) => return,
            ref other => panic!("list_end in state {other:?}"),
        }
        self.state = State::ExpectDone {
            entries: self.listed,
        };
        self.transmit.push_back(Message::ListEnd {
            entries: self.listed,
            read_errors,
        });
    }

    /// A sender has answered work `id` (sent its `FileEnd` or `FileFailed`, or given up):
    /// the signature it held is released. Only work that holds a signature
    /// ([`Work::holds_signature`]) needs answering; for other work this does nothing, so a
    /// driver may skip the round trip.
    pub fn handle_answered(&mut self, id: WorkId) {
        self.signatures.answered(id);
    }

    /// One message from the target, on stream 0 (a session over one stream). An error
    /// ends the session: every later call returns it again.
    pub fn handle_message(&mut self, message: Message) -> Result<(), SessionError> {
        self.handle_message_on(StreamId::CONTROL, message)
    }

    /// One message from the target that came on `stream`: refused on a stream the
    /// session does not have or lost, a control frame (`Ack`, `Done`, a report, `Error`,
    /// `StreamGone`) on any but stream 0, a `Signature` on another stream than its
    /// `Want`. An error ends the session: every later call returns it again.
    pub fn handle_message_on(
        &mut self,
        stream: StreamId,
        message: Message,
    ) -> Result<(), SessionError> {
        if let State::Failed(e) = &self.state {
            return Err(e.clone());
        }
        let handled = self
            .check_stream(stream, &message)
            .and_then(|()| self.handle(stream, message));
        if let Err(e) = &handled {
            self.state = State::Failed(e.clone());
        }
        handled
    }

    /// The next message to send to the target.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Message> {
        self.transmit.pop_front()
    }

    /// The next file for a sender.
    #[must_use]
    pub fn poll_work(&mut self) -> Option<Work<F>> {
        self.work.pop_front()
    }

    /// The next thing to report.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<SourceEvent<F>> {
        self.events.pop_front()
    }

    fn handle(&mut self, stream: StreamId, message: Message) -> Result<(), SessionError> {
        if let State::Done = self.state {
            return match message {
                Message::Heartbeat => Ok(()),
                Message::Error { class, message } => {
                    Err(SessionError::from_peer("target says", class, &message))
                }
                other => Err(SessionError::protocol(format!(
                    "{} from the target after its Done",
                    other.name()
                ))),
            };
        }
        match message {
            Message::Want { index, delta } => self.want(index, delta, stream),
            Message::Resume {
                index,
                offset,
                hash,
            } => {
                let file = self.ask(index, "asked to resume", stream)?;
                self.queue(index, Ask::Resume { offset, hash }, file, stream);
                Ok(())
            }
            Message::Signature { index, bytes, last } => {
                if let Some((file, signature)) =
                    self.signatures.piece(index, &bytes, last, stream)?
                {
                    let len = signature.len();
                    let id = self.queue(index, Ask::Delta(signature), file, stream);
                    self.signatures.hand_over(id, len, stream);
                }
                Ok(())
            }
            Message::Ack { through } => self.ack(through),
            report @ (Message::Change { .. }
            | Message::FileError { .. }
            | Message::NotApplied { .. }) => {
                self.events.push_back(SourceEvent::Report(report));
                Ok(())
            }
            Message::Done { stats } => self.done(stats),
            Message::Error { class, message } => {
                Err(SessionError::from_peer("target says", class, &message))
            }
            Message::Heartbeat => Ok(()),
            multi if is_multi_stream_frame(&multi) => self.multi_stream_frame(stream, multi),
            other => Err(SessionError::protocol(format!(
                "unexpected {} from the target",
                other.name()
            ))),
        }
    }

    fn want(&mut self, index: u64, delta: bool, stream: StreamId) -> Result<(), SessionError> {
        if !delta {
            let file = self.ask(index, "asked for", stream)?;
            self.queue(index, Ask::Whole, file, stream);
            return Ok(());
        }
        self.check_ask(index, "asked for")?;
        let file = self.files[&index].file.clone();
        self.signatures.start(index, file, stream)?;
        let listed = self.files.get_mut(&index).expect("checked");
        listed.asks.add(stream);
        listed.wanted = true;
        Ok(())
    }

    /// Counts one more ask for file `index`, on `stream`, and returns its payload.
    fn ask(&mut self, index: u64, what: &str, stream: StreamId) -> Result<F, SessionError> {
        self.check_ask(index, what)?;
        let listed = self.files.get_mut(&index).expect("checked");
        listed.asks.add(stream);
        listed.wanted = true;
        Ok(listed.file.clone())
    }

    /// Whether the target may ask for file `index` now.
    fn check_ask(&self, index: u64, what: &str) -> Result<(), SessionError> {
        match self.files.get(&index) {
            Some(listed) if listed.asks.has_room() => {}
            _ => {
                return Err(SessionError::protocol(format!(
                    "target {what} entry {index}, which is not a listed, unresolved file \
                     (or was asked for twice already)"
                )))
            }
        }
        if self.signatures.is_coming(index) {
            return Err(SessionError::protocol(format!(
                "target {what} entry {index} again while its signature was still coming"
            )));
        }
        Ok(())
    }

    fn queue(&mut self, index: u64, ask: Ask, file: F, stream: StreamId) -> WorkId {
        let id = WorkId(self.next_work);
        self.next_work += 1;
        self.work.push_back(Work {
            id,
            index,
            ask,
            file,
            stream,
        });
        id
    }

    fn ack(&mut self, through: u64) -> Result<(), SessionError> {
        if through < self.acked || through > self.listed {
            return Err(SessionError::protocol(format!(
                "target acknowledged entries through {through}, but {} were listed and {} \
                 acknowledged before",
                self.listed, self.acked
            )));
        }
        if through == self.acked {
            return Ok(());
        }
        let rest = self.files.split_off(&through);
        let files = std::mem::replace(&mut self.files, rest)
            .into_iter()
            .map(|(index, listed)| ResolvedFile {
                index,
                wanted: listed.wanted,
                file: listed.file,
            })
            .collect();
        let rest = self.links.split_off(&through);
        let links = std::mem::replace(&mut self.links, rest).len() as u64;
        self.acked = through;
        self.events.push_back(SourceEvent::Resolved(Resolved {
            through,
            files,
            links,
        }));
        Ok(())
    }

    fn done(&mut self, stats: TargetStats) -> Result<(), SessionError> {
        match self.state {
            State::ExpectDone { entries } if self.acked == entries => {
                self.state = State::Done;
                self.events.push_back(SourceEvent::Done(stats));
                Ok(())
            }
            State::ExpectDone { entries } => Err(SessionError::protocol(format!(
                "target said Done with entries {}..{entries} unacknowledged (its last Ack \
                 was through {} of {entries} listed)",
                self.acked, self.acked
            ))),
            _ => Err(SessionError::protocol(format!(
                "target said Done before the listing ended ({} entries listed so far)",
                self.listed
            ))),
        }
    }
}

#[cfg(test)]
mod tests;
