//! The sender threads: each takes a piece of work the source core handed out (a file,
//! how the target asked for it, and what the listing said of it), sends it with
//! [`send::send_file`](super::send::send_file) straight to the writer, and answers the
//! driver with how it went. File reads, hashing and delta search run here, off the
//! reactor; the threads share nothing but the work queue and the live progress.
//!
//! ```text
//! driver ──Work (queue)──▶ ferry-send-N ──Data/Delta/FileEnd──▶ writer
//!    ▲                          │
//!    └────── Answer{id, sent} ──┘
//! ```

use std::sync::{mpsc as std_mpsc, Arc, Mutex};

use ferry_proto::session::source::{Work, WorkId};
use ferry_proto::Limits;
use ferry_tree::SourceRoot;
use tokio::sync::mpsc;

use super::send::{send_file, FileInfo, Sent};
use crate::error::EngineError;
use crate::framed::FrameSender;
use crate::report::progress::Progress;

/// How one piece of work went: the file was sent (or reported failed to the target),
/// or the sender hit a fatal error (a hostile signature, a dead connection) and stopped.
pub struct Answer {
    pub id: WorkId,
    pub sent: Result<Sent, EngineError>,
}

/// Starts `count` sender threads. They end when the work queue is closed, or after
/// answering with a fatal error.
pub fn spawn(
    count: usize,
    root: &SourceRoot,
    limits: &Limits,
    tx: &FrameSender,
    progress: &Arc<Progress>,
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
            let progress = progress.clone();
            std::thread::Builder::new()
                .name(format!("ferry-send-{i}"))
                .spawn(move || loop {
                    let work = match work_rx.lock().expect("work lock").recv() {
                        Ok(work) => work,
                        Err(_) => return,
                    };
                    let sent = send_file(
                        &root, work.index, &work.file, work.ask, &limits, &tx, &progress,
                    );
                    let fatal = sent.is_err();
                    if answers.send(Answer { id: work.id, sent }).is_err() || fatal {
                        return;
                    }
                })
                .expect("spawn sender thread")
        })
        .collect();
    (work_tx, handles)
}
