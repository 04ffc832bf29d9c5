//! One session at the target (of a push, at `ferry serve`; of a pull, at the puller),
//! after the handshake: plan listings, fetch files (`fetch`), hand their frames to the
//! receiver threads in batches, resolve entries (`resolve`), then delete and finish
//! directories, and report `Done`.
//!
//! Every listed entry is *unresolved* until it is fully in place (or has failed); the
//! lowest unresolved index is the watermark sent back in `Ack`, which bounds how far
//! ahead the source may list: a `List` frame past the last `Ack` plus
//! [`Limits::window`] ends the session with a protocol error.
//!
//! What a source can make this side hold, and its bound:
//! - per listed, unresolved entry (`unresolved`, `pending`, `parents`, `waiting_links`,
//!   a signature task each, `completions` of their jobs): the window;
//! - signatures sent for files not yet received: [`Limits::signature_window`] bytes
//!   (the source holds them until it answers);
//! - directories announced and not finished (`dirs`, the planner's `expected`):
//!   [`Limits::max_pending_dirs`] and [`Limits::max_pending_dir_bytes`];
//! - jobs queued at the receivers: a bounded channel of batches each;
//! - frames queued to send while the peer does not read: the writer's bounded channel
//!   (the session waits, it does not queue more);
//! - `failed` leaders and `resent` files: one index per file that failed or was re-sent
//!   in the session (each also reported or counted), not per listed entry.

mod basis;
mod budget;
mod decide;
mod delta_write;
mod dirs;
mod fetch;
mod finish;
mod leaders;
mod metrics;
mod plan;
mod receive;
mod resolve;
mod tally;

pub use metrics::VolumeMetrics;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use ferry_proto::{ChangeKind, Limits, Message, RelPath, SessionOptions, TargetStats};
use ferry_tree::Volume;
use tokio::io::AsyncRead;
use tokio::sync::mpsc;

use crate::cancel::Cancel;
use crate::error::EngineError;
use crate::framed::{FrameReader, FrameSender};
use budget::SignatureBudget;
use dirs::DirTracker;
use plan::{LinkRequest, Planned, Planner};
use receive::{Batch, Completion, Job, BATCH_BYTES, BATCH_JOBS, RECEIVERS};
use tally::{Tally, NOT_APPLIED_EXAMPLES};

/// Signatures computed at once (each reads a whole basis file).
const SIGNATURE_JOBS: usize = 2;

/// How long the end of a session waits for its receiver threads, which stop within a
/// step of their work once the session's stop flag is set (a write stuck in a failing
/// filesystem may not).
const RECEIVERS_STOP: std::time::Duration = std::time::Duration::from_secs(30);

struct Session {
    volume: Arc<Volume>,
    limits: Limits,
    tx: FrameSender,
    /// Index the next `List` frame must start at.
    next_index: u64,
    unresolved: BTreeSet<u64>,
    /// Files wanted and not yet in place (their entries travel with their jobs).
    pending: HashSet<u64>,
    /// Hard links waiting for their leader, by leader index.
    waiting_links: HashMap<u64, Vec<LinkRequest>>,
    /// Leaders that failed: links to them fail too.
    failed: HashSet<u64>,
    /// Files that failed while the source was still sending them: their frames up to
    /// `FileEnd` (or `FileFailed`) are passed on to be dropped, not refused.
    draining: HashSet<u64>,
    /// Wanted files whose last frame (`FileEnd` or `FileFailed`) has been passed on and
    /// whose receiver has not reported yet: a failure reported now drains nothing.
    ended: HashSet<u64>,
    resent: HashSet<u64>,
    acked: u64,
    list_ended: bool,
    source_read_errors: u64,
    signature_jobs: usize,
    signature_budget: SignatureBudget,
    jobs: Vec<mpsc::Sender<Batch>>,
    /// Jobs not yet handed to each receiver, and the data bytes among them: sent when the
    /// connection has no whole frame left to decode, or when a batch is full.
    outbox: Vec<(Batch, usize)>,
    stats: TargetStats,
    planner: Option<Planner>,
    /// Directories whose attributes wait for their contents.
    dirs: DirTracker,
    /// The directory of each unresolved file or link, to close when it is in place.
    parents: HashMap<u64, RelPath>,
    dry_run: bool,
    /// Report created hard links as `Change` too (the planner reports the rest).
    itemize: bool,
    metrics: Arc<VolumeMetrics>,
    /// Entries named so far as examples of attributes not applied.
    examples_sent: usize,
    /// Set when the session ends: the receivers and signature jobs stop their work.
    cancel: Cancel,
}

/// Runs the session to its end; returns the target's stats.
#[allow(clippy::too_many_arguments)]
pub async fn run<R: AsyncRead + Unpin>(
    volume: Arc<Volume>,
    options: SessionOptions,
    filter: ferry_proto::Filter,
    limits: Limits,
    reader: &mut FrameReader<R>,
    tx: FrameSender,
    metrics: Arc<VolumeMetrics>,
) -> Result<TargetStats, EngineError> {
    let (completions_tx, mut completions) = mpsc::unbounded_channel();
    let (signed_tx, mut signed) = mpsc::unbounded_channel::<()>();
    // However the session ends (returns, or its future is dropped by a signal or a
    // failed attempt), the work it started for the peer stops.
    let cancel = Cancel::new();
    let _stop = cancel.stop_on_drop();
    let (jobs, receivers) = receive::spawn(
        volume.privileges(),
        options.fsync,
        completions_tx,
        cancel.clone(),
    );
    let signature_budget = SignatureBudget::new(limits.signature_window);
    let mut s = Session {
        planner: Some(Planner::new(
            volume.clone(),
            options,
            filter,
            limits.clone(),
        )),
        volume,
        limits,
        tx,
        next_index: 0,
        unresolved: BTreeSet::new(),
        pending: HashSet::new(),
        waiting_links: HashMap::new(),
        failed: HashSet::new(),
        draining: HashSet::new(),
        ended: HashSet::new(),
        resent: HashSet::new(),
        acked: 0,
        list_ended: false,
        source_read_errors: 0,
        signature_jobs: 0,
        signature_budget,
        jobs,
        outbox: (0..RECEIVERS).map(|_| (Vec::new(), 0)).collect(),
        stats: TargetStats::default(),
        dirs: DirTracker::default(),
        parents: HashMap::new(),
        dry_run: options.dry_run,
        itemize: options.itemize,
        metrics,
        examples_sent: 0,
        cancel: cancel.clone(),
    };
    let result = drive(
        &mut s,
        reader,
        &mut completions,
        &mut signed,
        &signed_tx,
        options,
    )
    .await;
    // Signature tasks still waiting for room stop.
    s.signature_budget.close();
    // The receivers must be done with every file (and have kept the partials of cut
    // ones) before the volume is released to the next session. After a success they
    // are; otherwise they stop within a step of what they were doing. Each holds a
    // completions sender until it ends, so the channel closing says they all have;
    // waited for here rather than by a blocking join, which would keep the runtime (and
    // a signalled process) waiting on a thread that does not stop.
    cancel.cancel();
    drop(s);
    drop(signed_tx);
    let stopped = async { while completions.recv().await.is_some() {} };
    if tokio::time::timeout(RECEIVERS_STOP, stopped).await.is_err() {
        tracing::warn!(
            "receiver threads did not stop within {} s",
            RECEIVERS_STOP.as_secs()
        );
    }
    drop(receivers);
    result
}

async fn drive<R: AsyncRead + Unpin>(
    s: &mut Session,
    reader: &mut FrameReader<R>,
    completions: &mut mpsc::UnboundedReceiver<Vec<Completion>>,
    signed: &mut mpsc::UnboundedReceiver<()>,
    signed_tx: &mpsc::UnboundedSender<()>,
    options: SessionOptions,
) -> Result<TargetStats, EngineError> {
    // A file still draining is still being sent: the source must finish it before the
    // target says Done and closes, or its last frames meet a closed connection.
    while !(s.list_ended
        && s.unresolved.is_empty()
        && s.signature_jobs == 0
        && s.draining.is_empty())
    {
        tokio::select! {
            message = reader.next() => {
                let message = message?.ok_or_else(|| EngineError::socket("the source closed the connection before the end of the session"))?;
                s.handle(message, signed_tx).await?;
            }
            Some(done) = completions.recv() => {
                for done in done {
                    s.complete(done).await?;
                }
            }
            Some(()) = signed.recv() => s.signature_jobs -= 1,
        }
        if !reader.has_frame() {
            s.flush().await?;
        }
        s.ack().await?;
    }
    // Every entry is resolved, but a frame that came after a file's last one (a second
    // FileEnd, stray data) may already be read, or queued at a receiver, which will find
    // it breaks the protocol. Hear both out before the session is declared a success.
    while reader.has_frame() {
        if let Some(message) = reader.next().await? {
            s.handle(message, signed_tx).await?;
        }
    }
    s.flush().await?;
    s.jobs.clear();
    while let Some(done) = completions.recv().await {
        for done in done {
            s.complete(done).await?;
        }
    }
    let planner = s.planner.take().expect("planner is home between frames");
    let delete_ok = s.source_read_errors == 0 && planner.incomplete_dirs == 0;
    let tx = s.tx.clone();
    let volume = s.volume.clone();
    let remaining = std::mem::take(&mut s.dirs).into_remaining();
    let (tally, deletions, errors) =
        tokio::task::spawn_blocking(move || finish::finish(&volume, planner, remaining, delete_ok))
            .await
            .map_err(|e| EngineError::file_io(format!("finishing failed: {e}")))??;
    s.fold(tally).await?;
    let mut stats = std::mem::take(&mut s.stats);
    for error in errors {
        send(&tx, error).await?;
    }
    stats.delete_skipped = options.delete && !delete_ok;
    for (path, entry) in deletions.paths {
        send(
            &tx,
            Message::Change {
                path,
                kind: ChangeKind::Deleted,
                entry,
            },
        )
        .await?;
    }
    stats.deleted += deletions.count;
    send(
        &tx,
        Message::Done {
            stats: stats.clone(),
        },
    )
    .await?;
    Ok(stats)
}

async fn send(tx: &FrameSender, message: Message) -> Result<(), EngineError> {
    tx.send(message)
        .await
        .map_err(|_| EngineError::socket("the connection closed"))
}

impl Session {
    async fn handle(
        &mut self,
        message: Message,
        signed: &mpsc::UnboundedSender<()>,
    ) -> Result<(), EngineError> {
        if self.list_ended && matches!(message, Message::List { .. } | Message::Root { .. }) {
            return Err(EngineError::protocol(format!(
                "{} after ListEnd",
                message.name()
            )));
        }
        match &message {
            Message::Data { bytes, .. } | Message::Delta { bytes, .. } => {
                let n = bytes.len() as u64;
                self.metrics.received_bytes.fetch_add(n, Relaxed);
            }
            _ => {}
        }
        match message {
            Message::Root { meta } => {
                self.planner.as_mut().expect("planner").root()?;
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
                if first != self.next_index {
                    return Err(EngineError::protocol(format!(
                        "listing starts at entry {first}, expected {}",
                        self.next_index
                    )));
                }
                let count = entries.len() as u64;
                let window = self.limits.window;
                if first + count > self.acked + window {
                    return Err(EngineError::protocol(format!(
                        "List of entries {first}..{} goes past the listing window: the last \
                         Ack was through {}, and a source may list at most {window} entries \
                         past it (below {})",
                        first + count,
                        self.acked,
                        self.acked + window,
                    )));
                }
                let mut planner = self.planner.take().expect("planner");
                let (planner, planned) = tokio::task::spawn_blocking(move || {
                    let planned = planner.plan(dir, first, entries, dir_done, dir_complete);
                    (planner, planned)
                })
                .await
                .map_err(|e| EngineError::file_io(format!("planning failed: {e}")))?;
                self.planner = Some(planner);
                self.next_index = first + count;
                self.unresolved.extend(first..first + count);
                self.planned(first, count, planned?, signed).await
            }
            Message::ListEnd {
                entries,
                read_errors,
            } => {
                if entries != self.next_index {
                    return Err(EngineError::protocol(format!(
                        "ListEnd says {entries} entries, {} were listed",
                        self.next_index
                    )));
                }
                if !self.planner.as_ref().expect("planner").listing_finished() {
                    return Err(EngineError::protocol(
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
            | Message::FileEnd { index, .. } => {
                if self.draining.contains(&index) {
                    if matches!(message, Message::FileEnd { .. }) {
                        self.draining.remove(&index);
                    }
                    return self.job(index, Job::Frame(message)).await;
                }
                if !self.pending.contains(&index) {
                    return Err(EngineError::protocol(format!(
                        "{} for entry {index}, which the target did not ask for",
                        message.name()
                    )));
                }
                if matches!(message, Message::FileEnd { .. }) {
                    self.signature_budget.release(index);
                    self.ended.insert(index);
                }
                self.job(index, Job::Frame(message)).await
            }
            Message::FileFailed { index, .. } => {
                if self.draining.remove(&index) {
                    return self.job(index, Job::Abort { index }).await;
                }
                if !self.pending.contains(&index) {
                    return Err(EngineError::protocol(format!(
                        "FileFailed for entry {index}, which the target did not ask for"
                    )));
                }
                self.signature_budget.release(index);
                self.ended.insert(index);
                self.job(index, Job::Abort { index }).await
            }
            Message::Error { class, message } => Err(EngineError::new(
                match class {
                    ferry_proto::ErrorClass::Interrupted => crate::ExitCode::Interrupted,
                    ferry_proto::ErrorClass::FileIo => crate::ExitCode::FileIo,
                    ferry_proto::ErrorClass::Protocol => crate::ExitCode::Protocol,
                },
                format!(
                    "the source stopped; it says: {}",
                    ferry_proto::peer_text(&message)
                ),
            )),
            Message::Heartbeat => Ok(()),
            other => Err(EngineError::protocol(format!(
                "unexpected {} from the source",
                other.name()
            ))),
        }
    }

    /// Queues `job` for file `index`'s receiver; it goes out with the next [`flush`].
    ///
    /// [`flush`]: Session::flush
    async fn job(&mut self, index: u64, job: Job) -> Result<(), EngineError> {
        let i = (index % RECEIVERS as u64) as usize;
        let bytes = match &job {
            Job::Frame(Message::Data { bytes, .. } | Message::Delta { bytes, .. }) => bytes.len(),
            _ => 0,
        };
        let (batch, queued) = &mut self.outbox[i];
        batch.push(job);
        *queued += bytes;
        if batch.len() >= BATCH_JOBS || *queued >= BATCH_BYTES {
            self.send_batch(i).await?;
        }
        Ok(())
    }

    /// Hands every receiver what is queued for it.
    async fn flush(&mut self) -> Result<(), EngineError> {
        for i in 0..RECEIVERS {
            if !self.outbox[i].0.is_empty() {
                self.send_batch(i).await?;
            }
        }
        Ok(())
    }

    async fn send_batch(&mut self, i: usize) -> Result<(), EngineError> {
        let (batch, _) = std::mem::take(&mut self.outbox[i]);
        self.jobs[i]
            .send(batch)
            .await
            .map_err(|_| EngineError::file_io("a receiver thread stopped"))
    }

    /// Acts on what planning a frame produced; everything not wanted or linked is done.
    async fn planned(
        &mut self,
        first: u64,
        count: u64,
        planned: Planned,
        signed: &mpsc::UnboundedSender<()>,
    ) -> Result<(), EngineError> {
        // Planner file errors are in its tally, counted at the end.
        for message in planned.messages {
            send(&self.tx, message).await?;
        }
        for (path, meta) in planned.announced {
            self.dirs.announce(path, meta);
        }
        self.failed.extend(planned.refused);
        // Announced directories are resolved entries, so the window does not bound them:
        // the protocol's own limit does (an honest walker's stack of directories to list).
        let (max, max_bytes) = (
            self.limits.max_pending_dirs,
            self.limits.max_pending_dir_bytes,
        );
        if self.dirs.len() > max || self.dirs.bytes() > max_bytes {
            return Err(EngineError::protocol(format!(
                "the source has announced {} directories ({} bytes of paths and attributes) \
                 that are not finished yet, over the limit of {max} ({max_bytes} bytes): it \
                 must list a directory's contents before announcing more",
                self.dirs.len(),
                self.dirs.bytes()
            )));
        }
        let mut open: HashSet<u64> = HashSet::new();
        for want in planned.wants {
            open.insert(want.index);
            self.opened(want.index, &want.pending.path);
            self.want(want, signed).await?;
        }
        let mut ready = Vec::new();
        let mut failed_links = Vec::new();
        for link in planned.links {
            open.insert(link.index);
            self.opened(link.index, &link.path);
            if self.failed.contains(&link.leader) {
                failed_links.push(link);
            } else if self.pending.contains(&link.leader) {
                self.waiting_links
                    .entry(link.leader)
                    .or_default()
                    .push(link);
            } else {
                ready.push(link);
            }
        }
        for index in first..first + count {
            if !open.contains(&index) {
                self.unresolved.remove(&index);
            }
        }
        for link in failed_links {
            self.link_failed(&link, "its leader could not be transferred")
                .await?;
            self.settle(link.index).await?;
        }
        self.make_links(ready).await?;
        if let Some((dir, has_extras)) = planned.completed {
            let ready = self.dirs.listed(&dir, has_extras);
            self.finish_dirs(ready).await?;
        }
        Ok(())
    }

    /// Records that entry `index` at `path` is on its way, keeping its directory open.
    fn opened(&mut self, index: u64, path: &RelPath) {
        let parent = path.split_last().map(|(p, _)| p).unwrap_or_default();
        self.dirs.open(&parent);
        self.parents.insert(index, parent);
    }

    /// Entry `index` is in place or failed: it no longer holds the watermark or its
    /// directory, whose attributes may now be applied.
    /// Adds `tally` to the session's stats and names its first entries with attributes
    /// not applied (at most [`NOT_APPLIED_EXAMPLES`] per session).
    async fn fold(&mut self, tally: Tally) -> Result<(), EngineError> {
        tally.add_to(&mut self.stats);
        for (path, n) in tally.examples {
            if self.examples_sent >= NOT_APPLIED_EXAMPLES {
                break;
            }
            self.examples_sent += 1;
            let message = Message::NotApplied {
                path,
                owner: n.owner,
                xattrs: n.xattrs,
                special: n.special,
            };
            send(&self.tx, message).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::SignatureBudget;

    #[tokio::test]
    async fn signatures_past_the_window_wait_for_a_file_to_come() {
        let budget = SignatureBudget::new(100);
        assert!(budget.take(1, 60).await);
        let fits = tokio::select! {
            biased;
            _ = budget.take(2, 60) => true,
            () = std::future::ready(()) => false,
        };
        assert!(!fits, "120 bytes fit a window of 100");
        budget.release(1);
        assert!(budget.take(2, 60).await);
        // A signature larger than the window still goes out alone; a closed session
        // stops what waits.
        budget.release(2);
        assert!(budget.take(3, 500).await);
        budget.close();
        assert!(!budget.take(4, 1).await);
    }
}
