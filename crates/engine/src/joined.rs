//! The joined streams of one session, on either side: each has its reader and its writer
//! task and lives until the session ends. What a joined stream brings (that it joined,
//! each frame it carries, that it was lost) reaches the session's driver as a
//! [`StreamEvent`] on one channel ([`Incoming`]); the driver sends on a stream through
//! the [`FrameSender`] its `Joined` event hands over. A joined stream that dies
//! mid-session (end of stream, an error, the silence timeout) is reported through
//! `on_lost` and a `Lost` event, and is never a session failure by itself: the driver's
//! core asks again for what was on it.
//!
//! ```text
//! add(JoinedConn) ─▶ life task: Joined{tx} ─▶ reader ─▶ Frame{message, held} ─▶ Incoming ─▶ driver
//!                               writer (heartbeat when idle)      └ end ─▶ Lost{why} + on_lost
//! close(grace) ─▶ every life task: wait up to `grace` for the peer to close, then close
//! ```
//!
//! What the streams may queue for the driver is bounded: a frame takes its bytes of
//! [`INCOMING_BYTES`] before it is queued and gives them back once the driver dropped it
//! (`held`), so when the driver is slow every joined reader stops and TCP pushes back on
//! each stream. Each reader holds at most one frame (`Limits::max_frame`) on top.
//!
//! Streams are opened lazily: a client's driver calls [`Incoming::want_more`] once the
//! session has enough work to spread (a no-change pass never pays for joins), and the
//! opener waiting in [`JoinedStreams::wanted`] joins them then.
//!
//! The client closes its joined streams first, at the end of its session (`grace` zero);
//! the server waits for that (`grace` a few seconds), so a stream the peer closes while
//! the session still runs is really lost, never the end of the session seen early.
//!
//! Must not import a command (`push`, `pull`, `serve`) or a role (`source`, `target`).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry_proto::Message;
use tokio::sync::{mpsc, watch, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

use crate::framed::{BoxedRead, FrameReader, FrameSender, WriterTask};

/// How long a closing stream's writer may take to send what it holds and close.
const WRITER_CLOSE: Duration = Duration::from_secs(5);

/// Once a session has asked for this many bytes (whole or resumed; a delta's wire bytes
/// are unknown and usually few, so it counts as a file only) or [`MORE_STREAMS_FILES`]
/// files, it has work enough to spread: a client opens its joined streams then. Both
/// ends count (the target its asks, a pushing source the asks it gets). A no-change pass
/// asks for nothing and never pays for a join.
pub const MORE_STREAMS_BYTES: u64 = 1 << 20;
pub const MORE_STREAMS_FILES: u64 = 128;

/// Bytes of frames the joined streams of one session may have queued for its driver.
pub const INCOMING_BYTES: usize = 16 << 20;

/// One connection that joined a session, its handshake (`Join`, `Joined`) done.
pub(crate) struct JoinedConn {
    pub stream: u16,
    pub reader: FrameReader<BoxedRead>,
    pub tx: FrameSender,
    pub writer: WriterTask,
    /// Held for as long as the stream lives (the server's count of joined streams).
    pub slot: Option<JoinSlot>,
}

/// One joined stream counted in a server-wide count; dropping it uncounts it.
pub(crate) struct JoinSlot(pub Arc<AtomicUsize>);

impl Drop for JoinSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, SeqCst);
    }
}

/// What a side does when a joined stream dies while the session runs: its number and why.
pub(crate) type OnLost = Box<dyn Fn(u16, &str) + Send + Sync>;

/// What a joined stream tells its session's driver, in the order it happened.
pub(crate) enum StreamEvent {
    /// Stream `stream` joined; frames go to it through `tx`.
    Joined { stream: u16, tx: FrameSender },
    /// A frame it carried (heartbeats are not passed on); `_held` is its share of
    /// [`INCOMING_BYTES`], given back when the event is dropped.
    Frame {
        stream: u16,
        message: Message,
        _held: OwnedSemaphorePermit,
    },
    /// It ended while the session ran (`on_lost` said why).
    Lost { stream: u16 },
}

/// The driver's end of its session's joined streams.
pub(crate) struct Incoming {
    pub events: mpsc::UnboundedReceiver<StreamEvent>,
    more: Arc<MoreWanted>,
    state: Arc<State>,
}

/// Why a session wants more streams: which threshold its asks passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wanted {
    /// [`MORE_STREAMS_FILES`] files: many files, where more streams spread per-file work
    /// even on a LAN.
    Files,
    /// [`MORE_STREAMS_BYTES`] bytes: bulk, which more streams speed up only where one
    /// stream's window is the bound (a long link).
    Bytes,
}

/// The driver's word that it has work to spread, and what kind.
#[derive(Default)]
pub(crate) struct MoreWanted {
    notify: Notify,
    /// Set once many files were asked (else only bytes).
    files: AtomicBool,
}

impl MoreWanted {
    fn notify_one_more(&self) {
        self.notify.notify_one();
    }

    /// Waits for the driver's next word; says whether many files were asked by then.
    pub async fn next(&self) -> Wanted {
        self.notify.notified().await;
        match self.files.load(SeqCst) {
            true => Wanted::Files,
            false => Wanted::Bytes,
        }
    }
}

impl Incoming {
    /// The session has work enough to spread over more streams: a client opens them now
    /// (a server has nothing to open; the call does nothing there).
    pub fn want_more(&self, why: Wanted) {
        if why == Wanted::Files {
            self.more.files.store(true, SeqCst);
        }
        self.more.notify_one_more();
    }

    /// The session is finishing (its `Done` is said): a join refused or failed from now
    /// on is no news (the server's session may be over already) and is not reported, nor
    /// a stream the peer closes (the session's end seen early).
    pub fn finishing(&self) {
        self.state.closing.store(true, SeqCst);
    }
}

/// The streams a session runs over, as its driver gets them: how many it may have and
/// what the joined ones bring. `streams_max` 1 is a session of one stream (no streams
/// option: protocol 5's sequence of frames).
pub(crate) struct SessionStreams {
    pub streams_max: u16,
    pub incoming: Option<Incoming>,
}

impl SessionStreams {
    /// A session over stream 0 alone.
    pub fn one() -> SessionStreams {
        SessionStreams {
            streams_max: 1,
            incoming: None,
        }
    }

    /// A session of `streams_max` streams whose joined ones `joined` holds.
    pub fn of(streams_max: u16, joined: &JoinedStreams) -> SessionStreams {
        SessionStreams {
            streams_max,
            incoming: joined.take_incoming(),
        }
    }

    /// Whether the session has the streams option (and so `Wants`, `Files`, joins).
    pub fn is_multi(&self) -> bool {
        self.streams_max > 1
    }
}

struct State {
    /// Joined streams alive now (stream 0 not counted).
    live: AtomicUsize,
    /// The most streams at once, stream 0 included.
    most: AtomicUsize,
    /// The session is ending: streams that end now are not lost.
    closing: AtomicBool,
    on_lost: OnLost,
    events: mpsc::UnboundedSender<StreamEvent>,
    budget: Arc<Semaphore>,
}

/// The joined streams of one session. Dropping it without [`JoinedStreams::close`] (a
/// session stopped by a signal) aborts them.
pub(crate) struct JoinedStreams {
    state: Arc<State>,
    /// `Some(grace)` once the session ends.
    stop: watch::Sender<Option<Duration>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// The driver's end, until it takes it.
    incoming: Mutex<Option<Incoming>>,
    more: Arc<MoreWanted>,
    /// A client's task that opens the streams once they are wanted.
    opener: Mutex<Option<JoinHandle<()>>>,
}

impl JoinedStreams {
    pub fn new(on_lost: OnLost) -> JoinedStreams {
        let (events, rx) = mpsc::unbounded_channel();
        let more = Arc::new(MoreWanted::default());
        let state = Arc::new(State {
            live: AtomicUsize::new(0),
            most: AtomicUsize::new(1),
            closing: AtomicBool::new(false),
            on_lost,
            events,
            budget: Arc::new(Semaphore::new(INCOMING_BYTES)),
        });
        JoinedStreams {
            state: state.clone(),
            stop: watch::channel(None).0,
            tasks: Mutex::new(Vec::new()),
            incoming: Mutex::new(Some(Incoming {
                events: rx,
                more: more.clone(),
                state: state.clone(),
            })),
            more,
            opener: Mutex::new(None),
        }
    }

    /// The driver's end of the streams (once: `None` after the first call).
    pub fn take_incoming(&self) -> Option<Incoming> {
        self.incoming.lock().expect("incoming lock").take()
    }

    /// What says the driver wants more streams ([`Incoming::want_more`]): a client's
    /// opener waits on it (holding it, not the streams).
    pub fn wanted_signal(&self) -> Arc<MoreWanted> {
        self.more.clone()
    }

    /// The session is finishing (its `Done` passed): a stream the peer closes from now
    /// on is the session's end seen early, not a loss.
    pub fn finishing(&self) {
        self.state.closing.store(true, SeqCst);
    }

    /// Whether the session is finishing (or closed): a join that does not make it now
    /// is no news.
    pub fn is_finishing(&self) -> bool {
        self.state.closing.load(SeqCst)
    }

    /// Keeps the task that opens this session's streams; it is stopped when they close.
    pub fn set_opener(&self, opener: JoinHandle<()>) {
        if let Some(old) = self.opener.lock().expect("opener lock").replace(opener) {
            old.abort();
        }
    }

    /// Takes a joined connection into the session until it ends.
    pub fn add(&self, conn: JoinedConn) {
        if self.state.closing.load(SeqCst) {
            return;
        }
        let live = self.state.live.fetch_add(1, SeqCst) + 1;
        self.state.most.fetch_max(live + 1, SeqCst);
        // In the caller's span: the server's log names the session a stream was lost from.
        let life = life(conn, self.state.clone(), self.stop.subscribe());
        let task = tokio::spawn(tracing::Instrument::in_current_span(life));
        self.tasks.lock().expect("joined tasks lock").push(task);
    }

    /// The most streams the session ran at once, stream 0 included (1 if none joined).
    pub fn most(&self) -> usize {
        self.state.most.load(SeqCst)
    }

    /// Joined streams alive now (stream 0 not counted).
    #[cfg(test)]
    pub fn live(&self) -> usize {
        self.state.live.load(SeqCst)
    }

    /// The session ended: no more streams open, and each stream waits up to `grace` for
    /// the peer to close it, then is closed (its writer sends what it holds and shuts
    /// the connection down).
    pub async fn close(&self, grace: Duration) {
        self.state.closing.store(true, SeqCst);
        let opener = self.opener.lock().expect("opener lock").take();
        if let Some(opener) = opener {
            opener.abort();
            let _ = opener.await;
        }
        self.stop.send_replace(Some(grace));
        let tasks = std::mem::take(&mut *self.tasks.lock().expect("joined tasks lock"));
        for task in tasks {
            let _ = task.await;
        }
    }
}

impl Drop for JoinedStreams {
    fn drop(&mut self) {
        self.state.closing.store(true, SeqCst);
        if let Some(opener) = self.opener.get_mut().expect("opener lock").take() {
            opener.abort();
        }
        for task in self.tasks.get_mut().expect("joined tasks lock").drain(..) {
            task.abort();
        }
    }
}

/// A peer's `StreamGone` for a stream whose `Joined` event has not reached this side's
/// driver yet (the peer joined and lost it at once, and its word on stream 0 overtook
/// this side's own news of the join): held until the join is heard of, so the core never
/// sees a stream lost before it joined.
#[derive(Default)]
pub(crate) struct EarlyGone {
    joined: u32,
    held: u32,
}

impl EarlyGone {
    /// Whether `message` must wait for its stream's join (it is then held here): a
    /// `StreamGone` for a stream the session may have (`1..streams_max`) not joined yet.
    pub fn holds(&mut self, message: &Message, streams_max: u16) -> bool {
        let Message::StreamGone { stream } = *message else {
            return false;
        };
        if stream == 0 || stream >= streams_max.min(32) || self.joined & (1 << stream) != 0 {
            return false;
        }
        self.held |= 1 << stream;
        true
    }

    /// Stream `stream` joined: the `StreamGone` held for it, to handle now.
    pub fn joined(&mut self, stream: u16) -> Option<Message> {
        if stream >= 32 {
            return None;
        }
        self.joined |= 1 << stream;
        let held = self.held & (1 << stream) != 0;
        self.held &= !(1 << stream);
        held.then_some(Message::StreamGone { stream })
    }
}

/// What a frame takes of [`INCOMING_BYTES`] while queued: what it holds in memory, at
/// least a little. File data and asks are counted as they are (the frames a joined
/// stream carries by the thousand); any other frame (a listing, a path, a message: a
/// joined stream carries few or none) is charged its encoded size, and a listing each
/// entry's own, so no frame is queued for less than it holds: a `List` of 4 MiB of
/// extended attributes charged 64 bytes let a flood queue gigabytes while the driver
/// waited.
fn frame_cost(message: &Message) -> u32 {
    let bytes = match message {
        Message::Data { bytes, .. }
        | Message::Delta { bytes, .. }
        | Message::Signature { bytes, .. } => bytes.len(),
        Message::Files { files } => files.iter().map(|f| f.bytes.len() + 44).sum(),
        Message::Wants { indices } => indices.len() * 8,
        Message::Hole { .. } | Message::FileEnd { .. } | Message::StreamGone { .. } => 0,
        other => {
            let mut encoded = bytes::BytesMut::new();
            ferry_proto::encode(other, &mut encoded);
            let entries = match other {
                Message::List { entries, .. } => entries.len(),
                _ => 0,
            };
            encoded.len() + entries * std::mem::size_of::<ferry_proto::Entry>()
        }
    };
    u32::try_from(bytes.clamp(64, INCOMING_BYTES)).unwrap_or(u32::MAX)
}

/// One joined stream from its join to its end.
async fn life(conn: JoinedConn, state: Arc<State>, mut stop: watch::Receiver<Option<Duration>>) {
    let JoinedConn {
        stream,
        mut reader,
        tx,
        writer,
        slot,
    } = conn;
    let _ = state.events.send(StreamEvent::Joined {
        stream,
        tx: tx.clone(),
    });
    let lost = loop {
        let message = tokio::select! {
            message = reader.next() => message,
            _ = stop.wait_for(Option::is_some) => break None,
        };
        let message = match message {
            Ok(Some(Message::Heartbeat)) => continue,
            Ok(Some(message)) => message,
            Ok(None) => break Some("the peer closed the connection".to_owned()),
            Err(e) => break Some(e.to_string()),
        };
        let held = tokio::select! {
            held = state.budget.clone().acquire_many_owned(frame_cost(&message)) => held,
            _ = stop.wait_for(Option::is_some) => break None,
        };
        let Ok(held) = held else { break None };
        let event = StreamEvent::Frame {
            stream,
            message,
            _held: held,
        };
        if state.events.send(event).is_err() {
            // The session's driver is gone: the session is ending.
            break None;
        }
    };
    let mut writer = writer;
    match lost {
        Some(why) => {
            if !state.closing.load(SeqCst) {
                (state.on_lost)(stream, &why);
                let _ = state.events.send(StreamEvent::Lost { stream });
            }
            // The connection is dead: what the driver still sends it goes nowhere.
            writer.abort();
        }
        None => {
            let grace = (*stop.borrow()).unwrap_or_default();
            if !grace.is_zero() {
                // The peer closes its end when its session is over; what it sends until
                // then does not matter any more.
                let _ = tokio::time::timeout(grace, async {
                    while let Ok(Some(_)) = reader.next().await {}
                })
                .await;
            }
        }
    }
    state.live.fetch_sub(1, SeqCst);
    drop(tx);
    if tokio::time::timeout(WRITER_CLOSE, &mut writer)
        .await
        .is_err()
    {
        writer.abort();
    }
    drop(slot);
}

#[cfg(test)]
#[path = "joined_tests.rs"]
mod tests;
