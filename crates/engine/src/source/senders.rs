//! The sender threads: each takes a piece of work the source core handed out (a file,
//! how the target asked for it, and what the listing said of it) for its stream, sends
//! it with [`send::send_file`](super::send::send_file) straight to that stream's writer,
//! and counts what it sent. File reads, hashing and delta search run here, off the
//! reactor; the threads share nothing but their stream's work queue, the counts and the
//! live progress.
//!
//! ```text
//! driver ──Work (stream s's queue)──▶ ferry-send-s-N ──frames──▶ stream s's writer
//!    ▲                                     │   (Data, Hole, Delta, FileEnd, Files, RangeEnd)
//!    └── Answer ───────────────────────────┘
//!        (a delta's signature released, or a fatal error)
//! ```
//!
//! In a session with the streams option, small files asked whole go out in `Files`
//! frames (a range never does: it is not asked whole): a sender adds them while its
//! queue has more, and sends the frame when the queue is empty, the frame is full, or
//! other work comes.
//!
//! A sender answers the driver only when the driver must act: a delta's signature leaves
//! the core's memory bound, or the session must end. Whole files (nearly all of a first
//! copy) go out without waking it: a wake-up per file had doubled the pusher's futex
//! calls on the benchmark's mixed tree. A joined stream whose connection is gone is not
//! an error here: its work is dropped (the target asks for it again on another stream).

use std::sync::mpsc::{self as std_mpsc, TryRecvError};
use std::sync::{Arc, Mutex};

use ferry_proto::session::source::{Ask, FilesFrame, Work, WorkId};
use ferry_proto::{Limits, Message};
use ferry_tree::SourceRoot;
use tokio::sync::mpsc;

use super::send::{send_file, FileInfo, Sent};
use super::small::{read_small, Small};
use super::Shared;
use crate::error::EngineError;
use crate::exit::ExitCode;
use crate::framed::FrameSender;

/// What a sender tells the driver.
pub enum Answer {
    /// Work that held a signature is done (sent, or reported failed to the target, or
    /// dropped with its lost stream): the core may release the signature.
    Released(WorkId),
    /// The sender hit a fatal error (a hostile signature, a dead stream 0) and stopped.
    Failed(EngineError),
}

/// What every stream's senders share.
#[derive(Clone)]
pub struct Kit {
    pub root: SourceRoot,
    pub limits: Limits,
    pub shared: Arc<Shared>,
    pub answers: mpsc::UnboundedSender<Answer>,
    /// Whether small files go in `Files` frames (the session has the streams option).
    pub batching: bool,
}

/// One stream's senders: their queue and their threads.
pub struct StreamSenders {
    pub work: std_mpsc::Sender<Work<FileInfo>>,
    pub threads: Vec<std::thread::JoinHandle<()>>,
}

/// Starts `count` sender threads for stream `stream`, writing to `tx`. They end when the
/// queue is closed, or after answering with a fatal error.
pub fn spawn(kit: &Kit, stream: u16, count: usize, tx: &FrameSender) -> StreamSenders {
    let (work_tx, work_rx) = std_mpsc::channel::<Work<FileInfo>>();
    let work_rx = Arc::new(Mutex::new(work_rx));
    let threads = (0..count)
        .map(|i| {
            let sender = Sender {
                kit: kit.clone(),
                stream,
                tx: tx.clone(),
                frame: FilesFrame::new(&kit.limits),
            };
            let work_rx = work_rx.clone();
            std::thread::Builder::new()
                .name(format!("ferry-send-{stream}-{i}"))
                .spawn(move || sender.run(&work_rx))
                .expect("spawn sender thread")
        })
        .collect();
    StreamSenders {
        work: work_tx,
        threads,
    }
}

struct Sender {
    kit: Kit,
    stream: u16,
    tx: FrameSender,
    /// Small files read and not sent yet.
    frame: FilesFrame,
}

/// Why a sender stops.
enum Stop {
    /// Its queue closed: the session is over (or its stream gone).
    Closed,
    /// A fatal error, answered.
    Failed,
}

impl Sender {
    fn run(mut self, queue: &Mutex<std_mpsc::Receiver<Work<FileInfo>>>) {
        loop {
            let next = match self.frame.is_empty() {
                true => {
                    let queue = queue.lock().expect("work lock");
                    queue.recv().map_err(|_| TryRecvError::Disconnected)
                }
                // With a frame to send, never wait: a queue another sender holds is one
                // it waits on, empty.
                false => match queue.try_lock() {
                    Ok(queue) => queue.try_recv(),
                    Err(std::sync::TryLockError::WouldBlock) => Err(TryRecvError::Empty),
                    Err(std::sync::TryLockError::Poisoned(_)) => panic!("work lock poisoned"),
                },
            };
            let work = match next {
                Ok(work) => work,
                // Nothing more queued now: what is read goes out.
                Err(TryRecvError::Empty) => {
                    if self.flush().is_err() {
                        return;
                    }
                    continue;
                }
                Err(TryRecvError::Disconnected) => {
                    let _ = self.flush();
                    return;
                }
            };
            match self.work(work) {
                Ok(()) => {}
                Err(Stop::Closed | Stop::Failed) => return,
            }
        }
    }

    fn work(&mut self, work: Work<FileInfo>) -> Result<(), Stop> {
        if self.kit.batching && work.ask == Ask::Whole && self.frame.takes(work.file.size) {
            match read_small(&self.kit.root, &work.file) {
                Small::Read { hash, bytes } => return self.batch(work.index, hash, bytes),
                Small::Failed(reason, message) => {
                    self.kit.shared.sent(&Sent {
                        failure: Some(reason),
                        ..Sent::default()
                    });
                    let failed = Message::FileFailed {
                        index: work.index,
                        reason,
                        message,
                    };
                    return self.send(failed);
                }
                Small::HasHoles => {}
            }
        }
        self.flush()?;
        let (id, releases) = (work.id, work.holds_signature());
        let ranged = matches!(work.ask, Ask::Range { .. });
        let kit = &self.kit;
        let sent = send_file(
            &kit.root,
            work.index,
            &work.file,
            work.ask,
            &kit.limits,
            &self.tx,
            &kit.shared.live,
        );
        match sent {
            Ok(sent) if ranged => kit.shared.sent_range(work.index, &sent),
            Ok(sent) => kit.shared.sent(&sent),
            Err(e) => self.lost_or_failed(e)?,
        }
        if releases && self.kit.answers.send(Answer::Released(id)).is_err() {
            return Err(Stop::Closed);
        }
        Ok(())
    }

    /// Adds a small file to the `Files` frame, sending the frame first when it is full.
    fn batch(&mut self, index: u64, hash: [u8; 32], bytes: bytes::Bytes) -> Result<(), Stop> {
        let size = bytes.len() as u64;
        if let Err(file) = self.frame.push(index, hash, bytes) {
            self.flush()?;
            self.frame
                .push(index, hash, file.bytes)
                .map_err(|_| ())
                .expect("an empty frame takes a file it said it takes");
        }
        self.kit.shared.live.sent(size);
        let mut sent = Sent::default();
        sent.stats.literal = size;
        self.kit.shared.sent(&sent);
        if self.frame.is_full() {
            self.flush()?;
        }
        Ok(())
    }

    /// Sends the `Files` frame, if it holds any.
    fn flush(&mut self) -> Result<(), Stop> {
        match self.frame.take() {
            Some(frame) => self.send(frame),
            None => Ok(()),
        }
    }

    fn send(&mut self, message: Message) -> Result<(), Stop> {
        match self.tx.blocking_send(message) {
            Ok(()) => Ok(()),
            Err(_) => self.lost_or_failed(EngineError::socket(
                "the connection closed while sending a file",
            )),
        }
    }

    /// A send failed: on a joined stream whose connection is gone that is its loss (the
    /// driver hears of it from the stream's reader, the target asks for its files again)
    /// and the work is dropped; anything else ends the session.
    fn lost_or_failed(&mut self, e: EngineError) -> Result<(), Stop> {
        if self.stream != 0 && e.exit == ExitCode::SocketIo {
            return Ok(());
        }
        let _ = self.kit.answers.send(Answer::Failed(e));
        Err(Stop::Failed)
    }
}
