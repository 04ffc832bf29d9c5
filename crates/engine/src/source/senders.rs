//! The sender threads: each takes a piece of work the source core handed out (a file,
//! how the target asked for it, and what the listing said of it), sends it with
//! [`send::send_file`](super::send::send_file) straight to the writer, and counts what
//! it sent. File reads, hashing and delta search run here, off the reactor; the threads
//! share nothing but the work queue, the counts and the live progress.
//!
//! ```text
//! driver ──Work (queue)──▶ ferry-send-N ──Data/Delta/FileEnd──▶ writer
//!    ▲                          │
//!    └── Answer ────────────────┘  (a delta's signature released, or a fatal error)
//! ```
//!
//! A sender answers the driver only when the driver must act: a delta's signature leaves
//! the core's memory bound, or the session must end. Whole files (nearly all of a first
//! copy) go out without waking it: a wake-up per file had doubled the pusher's futex
//! calls on the benchmark's mixed tree.

use std::sync::{mpsc as std_mpsc, Arc, Mutex};

use ferry_proto::session::source::{Work, WorkId};
use ferry_proto::Limits;
use ferry_tree::SourceRoot;
use tokio::sync::mpsc;

use super::send::{send_file, FileInfo};
use super::Shared;
use crate::error::EngineError;
use crate::framed::FrameSender;

/// What a sender tells the driver.
pub enum Answer {
    /// Work that held a signature is done (sent, or reported failed to the target): the
    /// core may release the signature.
    Released(WorkId),
    /// The sender hit a fatal error (a hostile signature, a dead connection) and stopped.
    Failed(EngineError),
}

/// Starts `count` sender threads. They end when the work queue is closed, or after
/// answering with a fatal error.
pub fn spawn(
    count: usize,
    root: &SourceRoot,
    limits: &Limits,
    tx: &FrameSender,
    shared: &Arc<Shared>,
    answers: mpsc::UnboundedSender<Answer>,
) -> (
    std_mpsc::Sender<Work<FileInfo>>,
    Vec<std::thread::JoinHandle<()>>,
) {
    let (work_tx, work_rx) = std_mpsc::channel::<Work<FileInfo>>();
    let work_rx = Arc::new(Mutex::new(work_rx));
    let handles = (0..count)
        .map(|i| {
            let work_rx = work_rx.clone();
            let limits = limits.clone();
            let tx = tx.clone();
            let answers = answers.clone();
            let root = root.clone();
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("ferry-send-{i}"))
                .spawn(move || loop {
                    let work = match work_rx.lock().expect("work lock").recv() {
                        Ok(work) => work,
                        Err(_) => return,
                    };
                    let (id, releases) = (work.id, work.holds_signature());
                    let sent = send_file(
                        &root,
                        work.index,
                        &work.file,
                        work.ask,
                        &limits,
                        &tx,
                        &shared.live,
                    );
                    let answer = match sent {
                        Ok(sent) => {
                            shared.sent(&sent);
                            if !releases {
                                continue;
                            }
                            Answer::Released(id)
                        }
                        Err(e) => Answer::Failed(e),
                    };
                    let fatal = matches!(answer, Answer::Failed(_));
                    if answers.send(answer).is_err() || fatal {
                        return;
                    }
                })
                .expect("spawn sender thread")
        })
        .collect();
    (work_tx, handles)
}
