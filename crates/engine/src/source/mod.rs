//! The source's part of a session, on a connection whose handshake is done: the one a
//! push runs, and the one `ferry serve` runs to answer a pull. Lists the tree, answers
//! the target's wants from sender threads, and shows what the target reports.
//!
//! ```text
//!            ┌─ walker thread ─▶ lister task ─┐
//! SRC tree ──┤                                ├─▶ writer ─▶ TLS ─▶ target
//!            └─ sender threads (read, hash, ◀─┤
//!               delta) ◀── Want/Signature ────┴── read_replies ◀─ TLS
//! ```
//!
//! The reader never blocks on the writer, so the two directions cannot deadlock: wants
//! go to an unbounded queue whose length the target bounds by its window (a want for a
//! file not listed or not unresolved is refused), and the signatures they carry are
//! bounded in bytes by [`Limits::signature_window`] (more is refused).

mod list;
mod send;

pub(crate) use list::Shared;

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{mpsc as std_mpsc, Arc, Mutex};

use ferry_proto::{
    escape, peer_text, ChangeKind, EntryKind, ErrorClass, FileFailure, Limits, Message, Meta,
    TargetStats,
};
use ferry_tree::{SourceRoot, Walker};
use tokio::io::AsyncRead;

use crate::error::EngineError;
use crate::exit::ExitCode;
use crate::framed::{FrameReader, FrameSender};
use crate::report::summary::{NotAppliedExample, SourceCounts};
use crate::report::Reporter;
use send::Ask;

/// Sender threads: file reads, hashing and delta search run here.
const SENDERS: usize = 2;
/// Signatures a target may be sending at once, each up to `Limits::max_signature`: a
/// target computes two at a time, so more is a peer making the source buffer without
/// bound.
const SIGNATURES_IN_FLIGHT: usize = 4;

/// The source's part of one session, on a connection whose handshake is done.
pub(crate) struct Source<'a> {
    /// The tree to send (`walker` walks it).
    pub root: SourceRoot,
    pub walker: Walker,
    pub root_meta: Meta,
    pub limits: &'a Limits,
    pub shared: &'a Arc<Shared>,
    pub reporter: &'a Reporter,
    pub dry_run: bool,
}

/// Runs the source's part of a session (a push's, or a pull that `ferry serve` answers):
/// sends the root and the listing and answers the target's wants until its `Done`.
/// Returns when every sender has stopped and `tx` is dropped; the caller owns the writer.
pub(crate) async fn source_session<R: AsyncRead + Unpin>(
    source: Source<'_>,
    reader: &mut FrameReader<R>,
    tx: FrameSender,
) -> Result<TargetStats, EngineError> {
    let Source {
        root,
        walker,
        root_meta,
        limits,
        shared,
        reporter,
        dry_run,
    } = source;
    tx.send(Message::Root { meta: root_meta })
        .await
        .map_err(|_| EngineError::socket("the connection closed"))?;

    let lister = tokio::spawn(list::run_lister(
        walker,
        limits.clone(),
        shared.clone(),
        tx.clone(),
        reporter.clone(),
    ));
    let (fatal_tx, mut fatal) = tokio::sync::mpsc::unbounded_channel();
    let (work_tx, senders) = spawn_senders(&root, shared, limits, &tx, fatal_tx);
    // A sender that hits a fatal error (a hostile signature, a dead connection) ends the
    // session at once instead of leaving the reader waiting for replies.
    let outcome = tokio::select! {
        biased;
        Some(e) = fatal.recv() => Err(e),
        outcome = read_replies(reader, shared, limits, &work_tx, reporter, dry_run) => {
            // `biased` only orders the branches of one poll: while this one works through
            // the frames it has, a sender can queue its error, its Error can reach the
            // peer and the peer hang up, and the hang-up is read here first (1 run in 70
            // of the hostile-target tests). A queued sender error is the cause.
            outcome.map_err(|e| fatal.try_recv().unwrap_or(e))
        }
    };
    drop(work_tx);
    let outcome = match outcome {
        Ok(stats) => match lister.await {
            Ok(Ok(())) => Ok(stats),
            Ok(Err(e)) => Err(e),
            Err(e) => Err(EngineError::file_io(format!("the lister failed: {e}"))),
        },
        Err(e) => {
            lister.abort();
            if e.exit == ExitCode::Protocol {
                let _ = tx.try_send(Message::Error {
                    class: ErrorClass::Protocol,
                    message: e.message.clone(),
                });
            }
            Err(e)
        }
    };
    drop(tx);
    for sender in senders {
        let _ = tokio::task::spawn_blocking(move || sender.join()).await;
    }
    outcome
}

/// A file to send, and how the target asked for it.
struct Work {
    index: u64,
    ask: Ask,
}

fn spawn_senders(
    root: &SourceRoot,
    shared: &Arc<Shared>,
    limits: &Limits,
    tx: &FrameSender,
    fatal: tokio::sync::mpsc::UnboundedSender<EngineError>,
) -> (std_mpsc::Sender<Work>, Vec<std::thread::JoinHandle<()>>) {
    let (work_tx, work_rx) = std_mpsc::channel::<Work>();
    let work_rx = Arc::new(Mutex::new(work_rx));
    let handles = (0..SENDERS)
        .map(|i| {
            let work_rx = work_rx.clone();
            let shared = shared.clone();
            let limits = limits.clone();
            let tx = tx.clone();
            let fatal = fatal.clone();
            let root = root.clone();
            std::thread::Builder::new()
                .name(format!("ferry-send-{i}"))
                .spawn(move || loop {
                    let work = match work_rx.lock().expect("work lock").recv() {
                        Ok(work) => work,
                        Err(_) => return,
                    };
                    // The signature leaves the source's memory when this work is done.
                    let signature = match &work.ask {
                        Ask::Delta(signature) => signature.len(),
                        _ => 0,
                    };
                    let done = || shared.signature_bytes.fetch_sub(signature, Relaxed);
                    let Some(info) = shared.file(work.index) else {
                        done();
                        continue;
                    };
                    // Recorded before its FileEnd can go out, so the target's Ack (which
                    // removes it) can never arrive first and leave it behind.
                    shared
                        .delivered
                        .lock()
                        .expect("delivered lock")
                        .insert(info.path.as_bytes().to_vec(), info.size);
                    let progress = &shared.live;
                    let sent =
                        send::send_file(&root, work.index, &info, work.ask, &limits, &tx, progress);
                    done();
                    match sent {
                        Ok(sent) => {
                            let mut counts = shared.counts.lock().expect("counts lock");
                            counts.bytes_literal += sent.stats.literal;
                            counts.bytes_matched += sent.stats.copied;
                            counts.files_delta += u64::from(sent.as_delta);
                            counts.bytes_resumed += sent.resumed;
                            match sent.failure {
                                Some(FileFailure::Vanished | FileFailure::Changed) => {
                                    counts.vanished += 1
                                }
                                Some(FileFailure::ReadError) => counts.read_errors += 1,
                                None => {}
                            }
                        }
                        Err(e) => {
                            // The session learns first, so that the peer hanging up on
                            // our Error cannot be mistaken for the cause.
                            let protocol =
                                (e.exit == ExitCode::Protocol).then(|| e.message.clone());
                            let _ = fatal.send(e);
                            if let Some(message) = protocol {
                                let _ = tx.blocking_send(Message::Error {
                                    class: ErrorClass::Protocol,
                                    message,
                                });
                            }
                            return;
                        }
                    }
                })
                .expect("spawn sender thread")
        })
        .collect();
    (work_tx, handles)
}

/// Handles the target's replies until `Done`.
async fn read_replies<R: AsyncRead + Unpin>(
    reader: &mut FrameReader<R>,
    shared: &Shared,
    limits: &Limits,
    work_tx: &std_mpsc::Sender<Work>,
    reporter: &Reporter,
    dry_run: bool,
) -> Result<TargetStats, EngineError> {
    let mut signatures: HashMap<u64, Vec<u8>> = HashMap::new();
    let queue = |work: Work| {
        work_tx
            .send(work)
            .map_err(|_| EngineError::file_io("the sender threads stopped"))
    };
    loop {
        let message = reader.expect("the target's replies").await?;
        match message {
            Message::Want { index, delta } => {
                if !shared.want(index) {
                    return Err(EngineError::protocol(format!(
                        "target asked for entry {index}, which is not a listed, unresolved file (or was asked for twice already)"
                    )));
                }
                if delta {
                    if signatures.len() >= SIGNATURES_IN_FLIGHT {
                        return Err(EngineError::protocol(format!(
                            "target sent more than {SIGNATURES_IN_FLIGHT} signatures at once"
                        )));
                    }
                    signatures.insert(index, Vec::new());
                } else {
                    queue(Work {
                        index,
                        ask: Ask::Whole,
                    })?;
                }
            }
            Message::Signature { index, bytes, last } => {
                let sig = signatures.get_mut(&index).ok_or_else(|| {
                    EngineError::protocol(format!(
                        "signature for entry {index}, which was not asked for as a delta"
                    ))
                })?;
                if sig.len() + bytes.len() > limits.max_signature {
                    return Err(EngineError::protocol(format!(
                        "signature for entry {index} exceeds {} bytes",
                        limits.max_signature
                    )));
                }
                // The target keeps its signatures for files it has not had yet within
                // the window; senders finishing as the next ones arrive account for the
                // rest.
                let held = shared.signature_bytes.fetch_add(bytes.len(), Relaxed) + bytes.len();
                let max = limits.signature_window + SENDERS * limits.max_signature;
                if held > max {
                    return Err(EngineError::protocol(format!(
                        "target sent {held} bytes of signatures for files it has not had yet, \
                         over the limit of {max}"
                    )));
                }
                sig.extend_from_slice(&bytes);
                if last {
                    let signature = signatures.remove(&index).unwrap_or_default();
                    queue(Work {
                        index,
                        ask: Ask::Delta(signature),
                    })?;
                }
            }
            Message::Resume {
                index,
                offset,
                hash,
            } => {
                if !shared.want(index) {
                    return Err(EngineError::protocol(format!(
                        "target asked to resume entry {index}, which is not a listed, unresolved file (or was asked for twice already)"
                    )));
                }
                queue(Work {
                    index,
                    ask: Ask::Resume(offset, hash),
                })?;
            }
            Message::Ack { through } => shared.ack(through)?,
            message @ (Message::Change { .. }
            | Message::FileError { .. }
            | Message::NotApplied { .. }) => {
                report_from_target(&message, &shared.counts, reporter, dry_run, true)
            }
            Message::Done { stats } => return Ok(stats),
            Message::Error { class, message } => {
                let exit = match class {
                    ErrorClass::Protocol => ExitCode::Protocol,
                    ErrorClass::FileIo => ExitCode::FileIo,
                    ErrorClass::Interrupted => ExitCode::Interrupted,
                };
                return Err(EngineError::new(
                    exit,
                    format!("target says: {}", peer_text(&message)),
                ));
            }
            Message::Heartbeat => {}
            other => {
                return Err(EngineError::protocol(format!(
                    "unexpected {} from the target",
                    other.name()
                )))
            }
        }
    }
}

/// Shows what the target reports of its changes and errors (`Change`, `FileError`,
/// `NotApplied`), and counts it; other messages are left alone. Used where the target
/// is the peer (push, and the server's side of a pull: `from_peer`, so its words are
/// escaped with [`peer_text`]) and where it is this process (the puller's own target).
pub(crate) fn report_from_target(
    message: &Message,
    counts: &Mutex<SourceCounts>,
    reporter: &Reporter,
    dry_run: bool,
    from_peer: bool,
) {
    match message {
        Message::Change { path, kind, entry } => {
            let content = matches!(kind, ChangeKind::Created | ChangeKind::Updated);
            if dry_run && content && *entry == EntryKind::File {
                counts.lock().expect("counts lock").files_would_change += 1;
            }
            reporter.change(path, *kind, *entry)
        }
        Message::FileError { path, message } => {
            let message = if from_peer {
                peer_text(message)
            } else {
                message.clone()
            };
            reporter.file_error("target", &escape(path), &message)
        }
        Message::NotApplied {
            path,
            owner,
            xattrs,
            special,
        } => {
            let mut what = Vec::new();
            if *owner {
                what.push("owner");
            }
            if *xattrs > 0 {
                what.push("xattrs");
            }
            if *special {
                what.push("special");
            }
            let mut counts = counts.lock().expect("counts lock");
            if counts.not_applied_examples.len() < 10 {
                counts.not_applied_examples.push(NotAppliedExample {
                    path: escape(path),
                    what,
                });
            }
        }
        _ => {}
    }
}
