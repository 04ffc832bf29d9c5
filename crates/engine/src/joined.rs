//! The joined streams of one session, on either side: each has its reader and its writer
//! task, lives until the session ends, and is closed with it. Joined streams carry only
//! heartbeats yet (files still all go over stream 0); a joined stream that dies
//! mid-session (end of stream, an error, the silence timeout, a frame it may not carry)
//! is reported through `on_lost` and is never a session failure.
//!
//! ```text
//! add(JoinedConn) ─▶ life task: reader ─▶ Heartbeat? keep reading; else ─▶ on_lost(stream, why)
//!                               writer (heartbeat when idle, as stream 0's)
//! close(grace) ─▶ every life task: wait up to `grace` for the peer to close, then close
//! ```
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
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::framed::{BoxedRead, FrameReader, FrameSender, WriterTask};

/// How long a closing stream's writer may take to send what it holds and close.
const WRITER_CLOSE: Duration = Duration::from_secs(5);
/// The largest frame body a joined stream may carry while joined streams carry only
/// heartbeats (a heartbeat's body is its tag): a larger frame loses the stream at its
/// header, so 256 joined streams cannot each hold a frame of `max_frame` (4 MiB) until
/// their session ends. Scheduling files over streams lifts this, under its own credit.
const HEARTBEATS_ONLY_FRAME: usize = 64;

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

struct State {
    /// Joined streams alive now (stream 0 not counted).
    live: AtomicUsize,
    /// The most streams at once, stream 0 included.
    most: AtomicUsize,
    /// The session is ending: streams that end now are not lost.
    closing: AtomicBool,
    on_lost: OnLost,
}

/// The joined streams of one session. Dropping it without [`JoinedStreams::close`] (a
/// session stopped by a signal) aborts them.
pub(crate) struct JoinedStreams {
    state: Arc<State>,
    /// `Some(grace)` once the session ends.
    stop: watch::Sender<Option<Duration>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl JoinedStreams {
    pub fn new(on_lost: OnLost) -> JoinedStreams {
        JoinedStreams {
            state: Arc::new(State {
                live: AtomicUsize::new(0),
                most: AtomicUsize::new(1),
                closing: AtomicBool::new(false),
                on_lost,
            }),
            stop: watch::channel(None).0,
            tasks: Mutex::new(Vec::new()),
        }
    }

    /// Takes a joined connection into the session until it ends.
    pub fn add(&self, conn: JoinedConn) {
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

    /// The session ended: each stream waits up to `grace` for the peer to close it, then
    /// is closed (its writer sends what it holds and shuts the connection down).
    pub async fn close(&self, grace: Duration) {
        self.state.closing.store(true, SeqCst);
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
        for task in self.tasks.get_mut().expect("joined tasks lock").drain(..) {
            task.abort();
        }
    }
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
    reader.limit_frames(HEARTBEATS_ONLY_FRAME);
    let lost = loop {
        tokio::select! {
            message = reader.next() => match message {
                Ok(Some(Message::Heartbeat)) => continue,
                Ok(Some(other)) => break Some(format!(
                    "it carried {} (joined streams carry only heartbeats in this version)",
                    other.name()
                )),
                Ok(None) => break Some("the peer closed the connection".to_owned()),
                Err(e) => break Some(e.to_string()),
            },
            _ = stop.wait_for(Option::is_some) => break None,
        }
    };
    match lost {
        Some(why) => {
            if !state.closing.load(SeqCst) {
                (state.on_lost)(stream, &why);
            }
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
    let mut writer = writer;
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
