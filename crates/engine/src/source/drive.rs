//! The source's driver: one task that owns the source core and does what it asks. It
//! waits on four things at once (a sender's answer, room in the writer's queue, the
//! walker's next listing, the target's next frame), hands each to the core, then drains
//! the core: messages to the writer, work to the senders, events to the counts and the
//! report. The rules are the core's; this module holds no protocol state of its own.
//!
//! It never waits on the writer while the target may be waiting on it: messages wait in
//! `outgoing` until the writer's queue has room, and the target's frames are read
//! meanwhile, so the two directions cannot deadlock. What `outgoing` holds is bounded by
//! the core's listing window.
//!
//! With the streams option it also hears the joined streams (a fifth thing to wait on):
//! a stream that joins gets a sender thread of its own, the asks it carries go to the
//! core as that stream's, and a stream lost is told to the core (which forgets the asks
//! made on it before it says `StreamGone`). Work goes to the queue of the stream it was
//! asked on.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use ferry_proto::session::source::{Ask, SourceCore, SourceEvent, Work};
use ferry_proto::{Limits, Message, TargetStats};
use ferry_tree::Listing;
use tokio::io::AsyncRead;
use tokio::sync::mpsc;

use super::list::{frames, Frame};
use super::report::report_from_target;
use super::send::FileInfo;
use super::senders::{self, Answer, Kit};
use super::Shared;
use crate::error::EngineError;
use crate::exit::ExitCode;
use crate::framed::{FrameReader, FrameSender};
use crate::joined::{
    EarlyGone, Incoming, StreamEvent, Wanted, MORE_STREAMS_BYTES, MORE_STREAMS_FILES,
};
use crate::report::Reporter;
use ferry_proto::session::stream::StreamId;

/// The task that runs one session's source core.
pub(super) struct Driver<'a> {
    pub core: SourceCore<FileInfo>,
    pub shared: &'a Shared,
    pub reporter: &'a Reporter,
    pub limits: &'a Limits,
    pub dry_run: bool,
    /// Where the work goes: each live stream's sender queue, by stream number.
    pub outlets: Vec<Option<std_mpsc::Sender<Work<FileInfo>>>>,
    /// Every sender thread started, to wait for at the end.
    pub threads: Vec<std::thread::JoinHandle<()>>,
    /// What a joined stream's senders are made with.
    pub kit: Kit,
    /// What the joined streams bring (`None` without the streams option).
    pub incoming: Option<Incoming>,
    /// A target's `StreamGone` that came before its stream's join was heard of.
    pub early_gone: EarlyGone,
    pub streams_max: u16,
    /// Asked so far (files, bytes), and the thresholds said so far (files, bytes).
    pub asked: (u64, u64),
    pub said: (bool, bool),
    /// The walker thread, until its listings ended.
    pub walk: Option<std::thread::JoinHandle<()>>,
}

/// What the driver holds between two turns of its loop.
#[derive(Default)]
struct Queues {
    /// Frames of the listing taken from the walker, waiting for room in the window.
    pending: VecDeque<Frame>,
    /// Messages the core queued, waiting for room in the writer's queue.
    outgoing: VecDeque<Message>,
    list_ended: bool,
}

impl Driver<'_> {
    /// Runs the session to the target's `Done`; hands back the sender threads (their
    /// queues closed) to wait for.
    pub async fn run<R: AsyncRead + Unpin>(
        mut self,
        reader: &mut FrameReader<R>,
        tx: &FrameSender,
        listings: mpsc::Receiver<Listing>,
        answers: mpsc::UnboundedReceiver<Answer>,
    ) -> (
        Result<TargetStats, EngineError>,
        Vec<std::thread::JoinHandle<()>>,
    ) {
        let outcome = self.session(reader, tx, listings, answers).await;
        let threads = std::mem::take(&mut self.threads);
        (outcome, threads)
    }

    async fn session<R: AsyncRead + Unpin>(
        &mut self,
        reader: &mut FrameReader<R>,
        tx: &FrameSender,
        mut listings: mpsc::Receiver<Listing>,
        mut answers: mpsc::UnboundedReceiver<Answer>,
    ) -> Result<TargetStats, EngineError> {
        let mut queues = Queues::default();
        // One read outlives the turns of the loop (its silence timer with it).
        let mut next = Box::pin(read(reader));
        loop {
            if let Some(stats) = self.pump(&mut queues)? {
                return Ok(stats);
            }
            let walking = self.walk.is_some();
            let joined = self.incoming.as_mut().map(|incoming| &mut incoming.events);
            tokio::select! {
                biased;
                Some(answer) = answers.recv() => {
                    if let Err(e) = self.answered(answer) {
                        // A connection lost under a sender may be the target ending the
                        // session: its last frames (an Error saying why, such as a full
                        // volume) can still be read, and name the cause better.
                        if e.exit != ExitCode::SocketIo {
                            return Err(e);
                        }
                        return Err(self.why_closed(e, &mut next).await);
                    }
                }
                permit = tx.reserve(), if !queues.outgoing.is_empty() => {
                    let permit = permit.map_err(|_| EngineError::socket("the connection closed"))?;
                    permit.send(queues.outgoing.pop_front().expect("not empty"));
                }
                listing = listings.recv(), if walking && queues.pending.is_empty() => {
                    match listing {
                        Some(listing) => self.take(listing, &mut queues)?,
                        None => {
                            if let Some(walk) = self.walk.take() {
                                let _ = walk.join();
                            }
                        }
                    }
                }
                (reader, message) = &mut next => {
                    // A sender's queued error comes first: it met the cause (a dead
                    // connection, a hostile signature) before this read did.
                    let message = message.map_err(|e| sender_error(&mut answers).unwrap_or(e))?;
                    next = Box::pin(read(reader));
                    if !self.early_gone.holds(&message, self.streams_max) {
                        self.core.handle_message(message)?;
                    }
                }
                Some(event) = next_event(joined) => self.stream_event(event)?,
            }
        }
    }

    /// Lists what the window allows, ends the listing once the walk is over, and drains
    /// the core; returns the target's account once it said `Done`.
    fn pump(&mut self, queues: &mut Queues) -> Result<Option<TargetStats>, EngineError> {
        while let Some(frame) = queues.pending.front() {
            if frame.entries.len() as u64 > self.core.list_room() {
                break;
            }
            let frame = queues.pending.pop_front().expect("just seen");
            self.count_listed(&frame);
            let dir = frame.dir.as_bytes().to_vec();
            self.core
                .list(dir, frame.entries, frame.dir_done, frame.dir_complete);
        }
        if self.walk.is_none() && queues.pending.is_empty() && !queues.list_ended {
            queues.list_ended = true;
            self.shared.live.scan_done();
            let read_errors = self.shared.counts.lock().expect("counts lock").read_errors;
            self.core.list_end(read_errors);
        }
        queues
            .outgoing
            .extend(std::iter::from_fn(|| self.core.poll_transmit()));
        while let Some(work) = self.core.poll_work() {
            self.shared.delivering(&work.file);
            // A delta's bytes on the wire are unknown and usually few.
            self.asked.0 += 1;
            self.asked.1 += match work.ask {
                Ask::Delta(_) => 0,
                Ask::Range { len, .. } => len,
                Ask::Whole | Ask::Resume { .. } => work.file.size,
            };
            let s = usize::from(work.stream.0);
            match self.outlets.get(s).and_then(Option::as_ref) {
                Some(outlet) => outlet
                    .send(work)
                    .map_err(|_| EngineError::file_io("the sender threads stopped"))?,
                // Its stream is gone (the core drops what it still holds for it).
                None => {
                    if work.holds_signature() {
                        self.core.handle_answered(work.id);
                    }
                }
            }
        }
        self.want_more_streams();
        // A stream the target said is gone (its StreamGone came first) sends no more:
        // its senders end once they dropped what is queued for them.
        for (s, outlet) in self.outlets.iter_mut().enumerate().skip(1) {
            if outlet.is_some() && !self.core.is_stream_live(StreamId(s as u16)) {
                *outlet = None;
            }
        }
        let mut done = None;
        while let Some(event) = self.core.poll_event() {
            match event {
                SourceEvent::Resolved(resolved) => self.shared.resolved(&resolved),
                SourceEvent::Report(message) => report_from_target(
                    &message,
                    &self.shared.counts,
                    self.reporter,
                    self.dry_run,
                    true,
                ),
                SourceEvent::Done(stats) => {
                    if let Some(incoming) = &self.incoming {
                        incoming.finishing();
                    }
                    done = Some(stats);
                }
            }
        }
        Ok(done)
    }

    /// Takes one directory's listing from the walker: its read errors are counted and
    /// shown, its entries cut into frames that wait for the window.
    fn take(&mut self, listing: Listing, queues: &mut Queues) -> Result<(), EngineError> {
        for error in &listing.errors {
            self.reporter
                .warning(&listing.dir.to_string(), &error.to_string());
        }
        let errors =
            listing.errors.len() as u64 + u64::from(!listing.complete && listing.errors.is_empty());
        self.shared.counts.lock().expect("counts lock").read_errors += errors;
        queues
            .pending
            .extend(frames(listing, self.core.listed(), self.limits)?);
        Ok(())
    }

    fn count_listed(&self, frame: &Frame) {
        let mut counts = self.shared.counts.lock().expect("counts lock");
        counts.entries_total += frame.entries.len() as u64;
        for (entry, _) in &frame.entries {
            match entry.content {
                ferry_proto::Content::File { size, .. } => {
                    counts.files_total += 1;
                    counts.bytes_total += size;
                    self.shared.live.listed(size);
                }
                ferry_proto::Content::HardLink { .. } => {
                    counts.files_total += 1;
                    self.shared.live.listed(0);
                }
                _ => {}
            }
        }
    }

    /// The target's reason for a connection a sender found closed: the frames still to
    /// read (for at most [`LAST_WORDS`]) are handed to the core, and the target's `Error`
    /// among them wins over the sender's socket error; without one, `lost` stands.
    async fn why_closed<'r, R: AsyncRead + Unpin + 'r>(
        &mut self,
        lost: EngineError,
        next: &mut std::pin::Pin<Box<impl Future<Output = Read<'r, R>>>>,
    ) -> EngineError {
        let deadline = tokio::time::Instant::now() + LAST_WORDS;
        let Ok((reader, mut message)) = tokio::time::timeout_at(deadline, next.as_mut()).await
        else {
            return lost;
        };
        loop {
            match message {
                Ok(message) => {
                    if let Err(e) = self.core.handle_message(message) {
                        return e.into();
                    }
                }
                Err(_) => return lost,
            }
            match tokio::time::timeout_at(deadline, reader.expect("the target's replies")).await {
                Ok(read) => message = read,
                Err(_) => return lost,
            }
        }
    }

    /// Acts on what a joined stream brought.
    fn stream_event(&mut self, event: StreamEvent) -> Result<(), EngineError> {
        match event {
            // A session without the streams option takes no joins.
            StreamEvent::Joined { .. } if self.streams_max < 2 => {}
            StreamEvent::Joined { stream, tx } => {
                self.core.stream_joined(StreamId(stream));
                let senders = senders::spawn(&self.kit, stream, 1, &tx);
                let s = usize::from(stream);
                if self.outlets.len() <= s {
                    self.outlets.resize_with(s + 1, || None);
                }
                self.outlets[s] = Some(senders.work);
                self.threads.extend(senders.threads);
                if let Some(gone) = self.early_gone.joined(stream) {
                    self.core.handle_message(gone)?;
                }
            }
            StreamEvent::Frame {
                stream, message, ..
            } => {
                if self.core.is_stream_live(StreamId(stream)) {
                    self.core.handle_message_on(StreamId(stream), message)?;
                }
            }
            StreamEvent::Lost { stream, .. } => {
                if self.streams_max >= 2 && stream != 0 {
                    self.core.stream_lost(StreamId(stream));
                    // Its senders end once they dropped what is queued for them.
                    if let Some(outlet) = self.outlets.get_mut(usize::from(stream)) {
                        *outlet = None;
                    }
                }
            }
        }
        Ok(())
    }

    /// Once the target has asked for enough to spread, a client opens its joined streams.
    fn want_more_streams(&mut self) {
        let Some(incoming) = &self.incoming else {
            return;
        };
        let (files, bytes) = self.asked;
        if !self.said.0 && files >= MORE_STREAMS_FILES {
            self.said.0 = true;
            incoming.want_more(Wanted::Files);
        }
        if !self.said.1 && bytes >= MORE_STREAMS_BYTES {
            self.said.1 = true;
            incoming.want_more(Wanted::Bytes);
        }
    }

    /// A sender answered: a signature is released, or its fatal error ends the session.
    fn answered(&mut self, answer: Answer) -> Result<(), EngineError> {
        match answer {
            Answer::Released(id) => {
                self.core.handle_answered(id);
                Ok(())
            }
            Answer::Failed(e) => Err(e),
        }
    }
}

/// How long a source whose connection broke under a sender still reads what the target
/// sent before it: its last words arrive at once or not at all.
const LAST_WORDS: Duration = Duration::from_secs(2);

/// A read of the target's next message, with the reader handed back.
type Read<'r, R> = (&'r mut FrameReader<R>, Result<Message, EngineError>);

/// Reads the target's next message, handing the reader back with it.
async fn read<R: AsyncRead + Unpin>(reader: &mut FrameReader<R>) -> Read<'_, R> {
    let message = reader.expect("the target's replies").await;
    (reader, message)
}

/// The next event of the joined streams; never, for a session without them.
async fn next_event(
    events: Option<&mut mpsc::UnboundedReceiver<StreamEvent>>,
) -> Option<StreamEvent> {
    match events {
        Some(events) => events.recv().await,
        None => std::future::pending().await,
    }
}

/// A fatal error a sender has queued, if any.
fn sender_error(answers: &mut mpsc::UnboundedReceiver<Answer>) -> Option<EngineError> {
    std::iter::from_fn(|| answers.try_recv().ok()).find_map(|answer| match answer {
        Answer::Failed(e) => Some(e),
        Answer::Released(_) => None,
    })
}
