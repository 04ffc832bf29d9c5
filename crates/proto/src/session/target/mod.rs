//! The target's session core: every rule a source can break, and the bookkeeping that
//! says when an entry is resolved, how far the source may list, which hard links may be
//! made, and which directories are finished. The driver (the engine's `target` role)
//! does the filesystem work the core asks for and reports back.
//!
//! # States
//! * **ExpectListing**: `Root`, `List` frames and file frames come; `ListEnd` ends it.
//! * **ExpectFiles**: the listing ended; file frames of wanted files come until every
//!   entry is resolved and no failed file is still draining.
//! * **Settled** ([`TargetCore::is_settled`]): the driver deletes extras, finishes what
//!   remains and sends `Done`. Nothing more may come from the source.
//!
//! # Call order
//! ```text
//! loop {
//!     core.handle_message(message)?            // each frame from the source
//!     core.handle_space(frame_space)?          // after a Plan: its writes fit? (may
//!                                              //   ask to delete extras first)
//!     core.handle_planned(outcome)             // after a Plan, what planning found
//!     core.handle_asked(index, asked)          // before sending a file's Want or Resume
//!     core.handle_file(index, outcome)         // a receiver committed or failed a file
//!                                              //   (its Verdict: done, resend, failed)
//!     core.handle_link(index, made)            // after a MakeLinks, each link's result
//!     while let Some(work) = core.poll_work() { .. do it .. }
//!     while let Some(message) = core.poll_transmit() { .. send it .. }  // Ack
//!     if core.is_settled() { break }
//! }
//! ```
//! One `Plan` is outstanding at a time: the driver answers it with `handle_planned`
//! before it hands the core the next frame.
//!
//! Over several streams (protocol 6, [`TargetCore::with_streams`]) the same calls take the
//! stream: `handle_message_on(stream, message)`, `handle_asked_on(index, asked, stream)`
//! (or `ask_batch` for a `Wants`), plus `stream_joined(s)`, `stream_lost(s)` and
//! `poll_reask()`; the calls without a stream are stream 0's (see `streams.rs`).
//!
//! # What a source can make this side hold, and its bound
//! Per listed, unresolved entry (its state, its directory): the listing window
//! ([`Limits::window`]); directories announced and not finished:
//! [`Limits::max_pending_dirs`] and [`Limits::max_pending_dir_bytes`]; failed leaders
//! and re-sent files: one index per file that failed or was re-sent (each reported).

mod dirs;
mod file;
mod leaders;
mod listing;
mod ranges;
mod space;
mod streams;
mod work;

pub use crate::session::stream::MIN_RANGED;
pub use listing::{ListedEntry, ListedFrame};
pub use space::{FrameSpace, FreeSpace, SpaceCheck, SpaceVerdict, Usage, Write};
pub use streams::Reask;
pub use work::{Asked, FileOutcome, PlanOutcome, TargetState, TargetWork, Verdict};

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use crate::filter::Filter;
use crate::limits::Limits;
use crate::message::Message;
use crate::model::{Content, Meta};
use crate::path::RelPath;
use crate::session::live::LiveStreams;
use crate::session::stream::{is_multi_stream_frame, StreamId};
use crate::session::SessionError;
use dirs::DirTracker;
use file::Wanted;
use listing::Listing;
use space::SpaceAccount;

/// The frame whose `Plan` is outstanding.
struct Planning {
    first: u64,
    dir: RelPath,
    dir_done: bool,
    /// The leader each hard link of the frame names.
    leaders: HashMap<u64, u64>,
    /// The size each regular file of the frame was listed with.
    sizes: HashMap<u64, u64>,
}

/// A listed entry not yet resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Open {
    /// In the frame being planned.
    Planning,
    /// A file to fetch.
    Wanted(Wanted),
    /// A hard link waiting for its leader, or being made.
    Link,
}

/// The target's half of a session, after the handshake.
pub struct TargetCore {
    limits: Limits,
    listing: Listing,
    list_ended: bool,
    source_read_errors: u64,
    /// Watermark of the last `Ack` sent.
    acked: u64,
    open: BTreeMap<u64, Open>,
    /// The directory of each open entry that keeps it open.
    parents: HashMap<u64, RelPath>,
    /// The frame being planned.
    planning: Option<Planning>,
    /// Hard links waiting for their leader, by leader.
    waiting_links: HashMap<u64, Vec<u64>>,
    /// Files that failed or were refused: links to them fail too.
    failed: HashSet<u64>,
    /// Files that failed while the source was still sending them, with the stream their
    /// frames come on and how many asks of them end there (a file in ranges may have
    /// several): their frames up to each `FileEnd`, `RangeEnd` or `FileFailed` are
    /// passed on to be dropped, not refused.
    draining: HashMap<(u64, StreamId), u32>,
    /// Files asked for again after a mismatch (once each).
    resent: HashSet<u64>,
    /// The open ranges of each file asked in ranges ([`ranges`]).
    ranged: HashMap<u64, ranges::Ranges>,
    /// Ranges asked for again after a mismatch (once each), by file and offset.
    resent_ranges: HashSet<(u64, u64)>,
    dirs: DirTracker,
    work: VecDeque<TargetWork>,
    /// The pre-flight space check's running account.
    space: SpaceAccount,
    /// The session's streams: stream 0 alone unless [`TargetCore::with_streams`].
    streams: LiveStreams,
    /// Control frames to send before the next `Ack` (`StreamGone`).
    transmit: VecDeque<Message>,
    /// Files to ask for again after their stream was lost ([`TargetCore::poll_reask`]).
    reasks: VecDeque<Reask>,
}

impl TargetCore {
    /// A core for one session: the source's `filter` (it must not list what the filter
    /// excludes), the session's `limits`, and a random key for hard-link leader
    /// fingerprints (a fresh `RandomState`).
    pub fn new(filter: Filter, limits: Limits, leader_key: std::hash::RandomState) -> TargetCore {
        TargetCore {
            listing: Listing::new(limits.clone(), filter, leader_key),
            limits,
            list_ended: false,
            source_read_errors: 0,
            acked: 0,
            open: BTreeMap::new(),
            parents: HashMap::new(),
            planning: None,
            waiting_links: HashMap::new(),
            failed: HashSet::new(),
            draining: HashMap::new(),
            ranged: HashMap::new(),
            resent_ranges: HashSet::new(),
            resent: HashSet::new(),
            dirs: DirTracker::default(),
            work: VecDeque::new(),
            space: SpaceAccount::default(),
            streams: LiveStreams::default(),
            transmit: VecDeque::new(),
            reasks: VecDeque::new(),
        }
    }

    /// Counts what the session's writes take of `free` (the volume's free space when
    /// the session began; `None` if it could not be read) and, as `mode` says, stops a
    /// session that would not fit ([`TargetCore::handle_space`]). Without this call
    /// nothing is checked.
    pub fn with_space(mut self, free: Option<FreeSpace>, mode: SpaceCheck) -> TargetCore {
        self.space = SpaceAccount::new(free, mode);
        self
    }

    /// What planning the outstanding frame found about space; called before
    /// [`TargetCore::handle_planned`], before any of the frame's files is asked for.
    /// Fails with [`SessionError::NoSpace`] as soon as the writes so far need more than
    /// was free; [`SpaceVerdict::DeleteFirst`]: the driver deletes the `--delete`
    /// extras collected so far before it asks for the frame's files.
    pub fn handle_space(&mut self, frame: &FrameSpace) -> Result<SpaceVerdict, SessionError> {
        let may_delete = self.listing.incomplete_dirs == 0 && self.source_read_errors == 0;
        self.space.frame(frame, may_delete)
    }

    /// The most the session's writes needed of the volume's free space at any point.
    pub fn space_needed(&self) -> Usage {
        self.space.needed()
    }

    /// Takes one message from the source on stream 0 (a session over one stream).
    pub fn handle_message(&mut self, message: Message) -> Result<(), SessionError> {
        self.handle_message_on(StreamId::CONTROL, message)
    }

    /// Takes one message from the source that came on `stream`: refused on a stream the
    /// session does not have or lost, a control frame on any but stream 0, a file's frame
    /// on another stream than the one it was asked on.
    pub fn handle_message_on(
        &mut self,
        stream: StreamId,
        message: Message,
    ) -> Result<(), SessionError> {
        self.check_stream(stream, &message)?;
        if self.list_ended
            && matches!(
                message,
                Message::List { .. } | Message::Root { .. } | Message::ListEnd { .. }
            )
        {
            return Err(SessionError::protocol(format!(
                "{} after ListEnd",
                message.name()
            )));
        }
        match message {
            Message::Root { meta } => {
                self.listing.root()?;
                self.dirs.announce(RelPath::root(), meta);
                Ok(())
            }
            Message::List {
                dir,
                first,
                entries,
                dir_done,
                dir_complete,
            } => {
                debug_assert!(self.planning.is_none(), "one Plan at a time");
                let frame =
                    self.listing
                        .frame(dir, first, entries, dir_done, dir_complete, self.acked)?;
                let (mut leaders, mut sizes) = (HashMap::new(), HashMap::new());
                for e in &frame.entries {
                    self.open.insert(e.index, Open::Planning);
                    match e.entry.content {
                        Content::Dir => self.dirs.announce(e.path.clone(), e.entry.meta.clone()),
                        Content::HardLink { leader, .. } => {
                            leaders.insert(e.index, leader);
                        }
                        Content::File { size, .. } => {
                            sizes.insert(e.index, size);
                        }
                        _ => {}
                    }
                }
                self.check_pending_dirs()?;
                self.planning = Some(Planning {
                    first: frame.first,
                    dir: frame.dir.clone(),
                    dir_done: frame.dir_done,
                    leaders,
                    sizes,
                });
                self.work.push_back(TargetWork::Plan(frame));
                Ok(())
            }
            Message::ListEnd {
                entries,
                read_errors,
            } => {
                if entries != self.listing.next {
                    return Err(SessionError::protocol(format!(
                        "ListEnd says {entries} entries, {} were listed",
                        self.listing.next
                    )));
                }
                if !self.listing.finished() {
                    return Err(SessionError::protocol(
                        "ListEnd before every announced directory was listed",
                    ));
                }
                self.list_ended = true;
                self.source_read_errors = read_errors;
                Ok(())
            }
            Message::Data { index, .. }
            | Message::Hole { index, .. }
            | Message::Delta { index, .. }
            | Message::FileEnd { index, .. }
            | Message::FileFailed { index, .. } => self.file_frame(index, stream, message),
            Message::RangeEnd { index, .. } if self.streams.is_enabled() => {
                self.file_frame(index, stream, message)
            }
            Message::Error { class, message } => Err(SessionError::from_peer(
                "the source stopped; it says",
                class,
                &message,
            )),
            Message::Heartbeat => Ok(()),
            multi if is_multi_stream_frame(&multi) => self.multi_stream_frame(stream, multi),
            other => Err(SessionError::protocol(format!(
                "unexpected {} from the source",
                other.name()
            ))),
        }
    }

    fn file_frame(
        &mut self,
        index: u64,
        stream: StreamId,
        frame: Message,
    ) -> Result<(), SessionError> {
        if let Some(left) = self.draining.get_mut(&(index, stream)) {
            let last = matches!(
                frame,
                Message::FileEnd { .. } | Message::FileFailed { .. } | Message::RangeEnd { .. }
            );
            if last {
                *left -= 1;
                if *left == 0 {
                    self.draining.remove(&(index, stream));
                }
            }
            self.work.push_back(TargetWork::Receive { index, frame });
            return Ok(());
        }
        match self.open.get_mut(&index) {
            Some(Open::Wanted(wanted)) => {
                if wanted.ended {
                    return Err(SessionError::protocol(format!(
                        "{} for entry {index}, after its FileEnd or FileFailed",
                        frame.name()
                    )));
                }
                if wanted.asked == Some(Asked::Ranged) {
                    self.range_frame(index, stream, &frame)?;
                    self.work.push_back(TargetWork::Receive { index, frame });
                    return Ok(());
                }
                if let Message::RangeEnd { .. } = frame {
                    return Err(SessionError::protocol(format!(
                        "RangeEnd for entry {index}, which was not asked in ranges"
                    )));
                }
                wanted.check_stream(index, frame.name(), stream)?;
                wanted.take(index, &frame)?;
                self.work.push_back(TargetWork::Receive { index, frame });
                Ok(())
            }
            _ => Err(SessionError::protocol(format!(
                "{} for entry {index}, which the target did not ask for",
                frame.name()
            ))),
        }
    }

    /// Announced directories are resolved entries, so the window does not bound them:
    /// the protocol's own limit does (an honest walker's stack of directories to list).
    fn check_pending_dirs(&self) -> Result<(), SessionError> {
        let (max, max_bytes) = (
            self.limits.max_pending_dirs,
            self.limits.max_pending_dir_bytes,
        );
        if self.dirs.len() > max || self.dirs.bytes() > max_bytes {
            return Err(SessionError::protocol(format!(
                "the source has announced {} directories ({} bytes of paths and attributes) \
                 that are not finished yet, over the limit of {max} ({max_bytes} bytes): it \
                 must list a directory's contents before announcing more",
                self.dirs.len(),
                self.dirs.bytes()
            )));
        }
        Ok(())
    }

    /// What planning the outstanding frame found.
    pub fn handle_planned(&mut self, outcome: PlanOutcome) {
        let planning = self.planning.take().expect("a Plan is outstanding");
        self.failed.extend(outcome.refused.iter().copied());
        for &index in &outcome.wants {
            let Some(&size) = planning.sizes.get(&index) else {
                debug_assert!(false, "entry {index} wanted is not a regular file");
                continue;
            };
            self.open.insert(index, Open::Wanted(Wanted::new(size)));
            self.opened(index, &planning.dir);
        }
        for &index in &outcome.links {
            self.open.insert(index, Open::Link);
            self.opened(index, &planning.dir);
        }
        // Everything of the frame not wanted or linked is resolved.
        let resolved: Vec<u64> = self
            .open
            .range(planning.first..)
            .filter(|(_, state)| **state == Open::Planning)
            .map(|(&index, _)| index)
            .collect();
        for index in resolved {
            self.open.remove(&index);
        }
        let (mut ready, mut doomed) = (Vec::new(), Vec::new());
        for &index in &outcome.links {
            let Some(&leader) = planning.leaders.get(&index) else {
                debug_assert!(false, "entry {index} planned as a link is not one");
                continue;
            };
            if self.failed.contains(&leader) {
                doomed.push(index);
            } else if matches!(self.open.get(&leader), Some(Open::Wanted(_))) {
                self.waiting_links.entry(leader).or_default().push(index);
            } else {
                ready.push(index);
            }
        }
        if !doomed.is_empty() {
            self.work.push_back(TargetWork::FailLinks(doomed));
        }
        if !ready.is_empty() {
            self.work.push_back(TargetWork::MakeLinks(ready));
        }
        if planning.dir_done {
            let finished = self.dirs.listed(&planning.dir, outcome.has_extras);
            self.finish_dirs(finished);
        }
    }

    /// A wanted file's receiver is done with it. A mismatch is asked for again, whole,
    /// once ([`Verdict::Resend`]); a second one fails ([`Verdict::Failed`]).
    pub fn handle_file(&mut self, index: u64, outcome: FileOutcome) -> Verdict {
        let (ended, stream) = match self.open.get(&index) {
            Some(Open::Wanted(w)) => (w.ended, w.stream),
            _ => (false, StreamId::CONTROL),
        };
        match outcome {
            FileOutcome::Committed => {
                if self.ranged.remove(&index).is_some() {
                    self.resent_ranges.retain(|&(i, _)| i != index);
                }
                self.resolved(index);
                Verdict::Done
            }
            FileOutcome::Mismatch => {
                self.end_ranged(index, None);
                if self.resent.insert(index) {
                    if let Some(Open::Wanted(wanted)) = self.open.get_mut(&index) {
                        *wanted = Wanted::new(wanted.size);
                    }
                    Verdict::Resend
                } else {
                    self.failed.insert(index);
                    self.resolved(index);
                    Verdict::Failed
                }
            }
            FileOutcome::Failed { draining } => {
                if self.is_ranged(index) {
                    // Its open ranges are still coming, each up to its end.
                    self.end_ranged(index, None);
                } else if draining && !ended && self.streams.is_live(stream) {
                    // Its frames up to FileEnd are still coming, unless that already came.
                    *self.draining.entry((index, stream)).or_default() += 1;
                }
                self.failed.insert(index);
                self.resolved(index);
                Verdict::Done
            }
            FileOutcome::Aborted => {
                self.end_ranged(index, None);
                self.failed.insert(index);
                self.resolved(index);
                Verdict::Done
            }
        }
    }

    /// The driver asked the source for wanted file `index` (it sends the `Want` or
    /// `Resume` now, on stream 0): its frames may come, checked against `asked`.
    pub fn handle_asked(&mut self, index: u64, asked: Asked) {
        self.handle_asked_on(index, asked, StreamId::CONTROL);
    }

    /// The driver asked the source for wanted file `index` on `stream`, a live stream
    /// (the `Want` or `Resume` goes out on it now, a delta's `Signature` after it): its
    /// frames may come, on that stream only, checked against `asked`.
    pub fn handle_asked_on(&mut self, index: u64, asked: Asked, stream: StreamId) {
        debug_assert!(self.streams.is_live(stream), "asked on {stream}, not live");
        let Some(Open::Wanted(wanted)) = self.open.get_mut(&index) else {
            debug_assert!(false, "entry {index} asked for is not a wanted file");
            return;
        };
        *wanted = Wanted {
            asked: Some(asked),
            pos: match asked {
                Asked::Resume { offset } => offset,
                _ => 0,
            },
            resuming: matches!(asked, Asked::Resume { .. }),
            stream,
            ..Wanted::new(wanted.size)
        };
    }

    /// A hard link asked for by [`TargetWork::MakeLinks`] or [`TargetWork::FailLinks`]
    /// is made (or failed, and reported).
    pub fn handle_link(&mut self, index: u64, made: bool) {
        if !made {
            self.failed.insert(index);
        }
        self.settle(index);
    }

    /// What the driver must do next.
    #[must_use]
    pub fn poll_work(&mut self) -> Option<TargetWork> {
        self.work.pop_front()
    }

    /// The next message for the source, on stream 0: a `StreamGone` (when it is this
    /// side's, stop reading and writing that stream), or the `Ack` watermark when it moved.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Message> {
        if let Some(message) = self.transmit.pop_front() {
            return Some(message);
        }
        let through = self.watermark();
        if through > self.acked {
            self.acked = through;
            return Some(Message::Ack { through });
        }
        None
    }

    /// The lowest unresolved index (every entry below it is resolved, and none drains).
    fn watermark(&self) -> u64 {
        let open = self
            .open
            .keys()
            .next()
            .copied()
            .unwrap_or(self.listing.next);
        // A failed file whose frames still drain is not acknowledged yet: the source may
        // still be answering asks of it (a file in ranges: ranges asked on other streams,
        // which it would refuse for a file the target has acknowledged).
        let draining = self.draining.keys().map(|&(index, _)| index).min();
        draining.map_or(open, |d| open.min(d))
    }

    /// What the target waits for now.
    pub fn state(&self) -> TargetState {
        if !self.list_ended {
            TargetState::ExpectListing
        } else if !self.open.is_empty() || !self.draining.is_empty() {
            TargetState::ExpectFiles
        } else {
            TargetState::Settled
        }
    }

    /// The listing ended, every entry is resolved and no failed file is still being
    /// sent: the driver deletes, finishes the remaining directories and says `Done`.
    pub fn is_settled(&self) -> bool {
        self.state() == TargetState::Settled
    }

    /// Whether `--delete` may run: the source read every entry and directory.
    pub fn delete_ok(&self) -> bool {
        self.source_read_errors == 0 && self.listing.incomplete_dirs == 0
    }

    /// Directories not finished yet, deepest first (those with deletions inside, and
    /// any a session ending early left open), taken out of the core once it is settled.
    pub fn take_remaining_dirs(&mut self) -> Vec<(RelPath, Meta)> {
        std::mem::take(&mut self.dirs).into_remaining()
    }

    /// Entry `index`, in `dir`, is on its way: it keeps its directory open.
    fn opened(&mut self, index: u64, dir: &RelPath) {
        self.dirs.open(dir);
        self.parents.insert(index, dir.clone());
    }

    /// Entry `index` is in place or failed: it no longer holds the watermark or its
    /// directory, whose attributes may now be applied.
    fn settle(&mut self, index: u64) {
        self.open.remove(&index);
        if let Some(parent) = self.parents.remove(&index) {
            let finished = self.dirs.close(&parent);
            self.finish_dirs(finished);
        }
    }

    /// Marks `index` done and releases the hard links that waited for it.
    fn resolved(&mut self, index: u64) {
        self.settle(index);
        if let Some(links) = self.waiting_links.remove(&index) {
            if self.failed.contains(&index) {
                self.work.push_back(TargetWork::FailLinks(links));
            } else {
                self.work.push_back(TargetWork::MakeLinks(links));
            }
        }
    }

    fn finish_dirs(&mut self, finished: Vec<(RelPath, Meta)>) {
        if !finished.is_empty() {
            self.work.push_back(TargetWork::FinishDirs(finished));
        }
    }
}
