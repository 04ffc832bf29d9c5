//! The target role: one session at the target (of a push, at `ferry serve`; of a pull,
//! at the puller), after the handshake. It drives the target's session core
//! ([`TargetCore`]), which holds every rule a source can break and says what to do: plan
//! listings (`plan`, on a blocking thread), fetch files (`fetch`), hand their frames to
//! the apply workers in batches (`apply`), make links and finish directories
//! (`resolve`), then delete and finish the rest (`finish`), and report `Done`.
//!
//! ```text
//! frames ─▶ TargetCore::handle_message ─▶ poll_work: Plan ─▶ planner ─▶ handle_planned
//!                  │                                 Receive ─▶ ApplyPool ─▶ handle_file
//!                  │                                 MakeLinks / FinishDirs ─▶ resolve
//!                  └─ poll_transmit: Ack{through} ─▶ source
//! ```
//!
//! What a source can make this side hold, and its bound: per listed, unresolved entry
//! (the core's state, `links`, a signature task each, `completions` of their jobs): the
//! window ([`Limits::window`]); signatures sent for files not yet received:
//! [`Limits::signature_window`] bytes; directories announced and not finished: the core's
//! bounds; file data queued at the apply workers: [`apply::APPLY_BYTES`]; frames queued
//! to send while the peer does not read: the writer's bounded channel (the session
//! waits, it does not queue more).

mod apply;
mod asks;
mod budget;
mod decide;
mod delta_in_place;
mod delta_write;
mod fetch;
mod finish;
mod in_place;
mod metrics;
mod plan;
mod ranges;
mod resolve;
mod space;
mod streams;
mod tally;

pub use metrics::VolumeMetrics;

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use ferry_proto::session::target::{PlanOutcome, SpaceCheck, SpaceVerdict, TargetCore, TargetWork};
use ferry_proto::{ChangeKind, Limits, Message, SessionOptions, TargetStats};
use ferry_tree::Volume;
use tokio::io::AsyncRead;
use tokio::sync::mpsc;

use crate::cancel::Cancel;
use crate::error::EngineError;
use crate::framed::{FrameReader, FrameSender};
use crate::joined::{EarlyGone, Incoming, SessionStreams};
use apply::{ApplyPool, Completion, Job};
use asks::Asks;
use budget::SignatureBudget;
use ferry_proto::session::stream::StreamId;
use fetch::{Ready, ReadySender};
use plan::{LinkRequest, Planned, Planner};
use tally::{Tally, NOT_APPLIED_EXAMPLES};

/// Signatures computed at once (each reads a whole basis file).
const SIGNATURE_JOBS: usize = 2;

/// How long the end of a session waits for its apply workers, which stop within a
/// step of their work once the session's stop flag is set (a write stuck in a failing
/// filesystem may not).
const WORKERS_STOP: std::time::Duration = std::time::Duration::from_secs(30);

struct Session {
    volume: Arc<Volume>,
    limits: Limits,
    tx: FrameSender,
    /// The session's rules and bookkeeping.
    core: TargetCore,
    /// Hard links planned and not yet made, by index.
    links: HashMap<u64, LinkRequest>,
    signature_jobs: usize,
    signature_budget: SignatureBudget,
    /// The workers that write, verify and put files in place.
    pool: ApplyPool,
    stats: TargetStats,
    planner: Option<Planner>,
    dry_run: bool,
    /// Report created hard links as `Change` too (the planner reports the rest).
    itemize: bool,
    metrics: Arc<VolumeMetrics>,
    /// Entries named so far as examples of attributes not applied.
    examples_sent: usize,
    /// Set when the session ends: the apply workers and signature jobs stop their work.
    cancel: Cancel,
    /// The asks waiting for a stream, and the streams' credit.
    asks: Asks,
    /// What the joined streams bring (`None` without the streams option).
    incoming: Option<Incoming>,
    /// A source's `StreamGone` that came before its stream's join was heard of.
    early_gone: EarlyGone,
    /// Streams the session may have (1 without the streams option).
    streams_max: u16,
    /// Files in ranges failed (and reported) because a range did not match twice: their
    /// worker's own failure, should it come too, is not reported again.
    range_failed: std::collections::HashSet<u64>,
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
    streams: SessionStreams,
) -> Result<TargetStats, EngineError> {
    let (completions_tx, mut completions) = mpsc::unbounded_channel();
    let (ready_tx, mut ready) = mpsc::unbounded_channel::<Ready>();
    // However the session ends (returns, or its future is dropped by a signal or a
    // failed attempt), the work it started for the peer stops.
    let cancel = Cancel::new();
    let _stop = cancel.stop_on_drop();
    let (pool, workers) = ApplyPool::spawn(
        volume.privileges(),
        options.fsync,
        completions_tx,
        cancel.clone(),
    );
    let signature_budget = SignatureBudget::new(limits.signature_window);
    let free = match volume.space() {
        Ok(free) => Some(free),
        Err(e) => {
            tracing::warn!("cannot read the target volume's free space ({e}); it is not checked");
            None
        }
    };
    let space_check = if options.no_space_check {
        SpaceCheck::Off
    } else if options.dry_run {
        SpaceCheck::Estimate
    } else {
        SpaceCheck::Enforce
    };
    let multi = streams.streams_max > 1;
    let mut s = Session {
        planner: Some(Planner::new(
            volume.clone(),
            options,
            filter.clone(),
            limits.clone(),
        )),
        core: {
            let core = TargetCore::new(filter, limits.clone(), std::hash::RandomState::new())
                .with_space(free, space_check);
            match multi {
                true => core.with_streams(streams.streams_max),
                false => core,
            }
        },
        asks: Asks::new(tx.clone(), multi),
        incoming: streams.incoming,
        early_gone: EarlyGone::default(),
        streams_max: streams.streams_max,
        range_failed: Default::default(),
        links: HashMap::new(),
        volume,
        limits,
        tx,
        signature_jobs: 0,
        signature_budget,
        pool,
        stats: TargetStats::default(),
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
        &mut ready,
        &ready_tx,
        options,
        free,
    )
    .await;
    // Signature tasks still waiting for room stop.
    s.signature_budget.close();
    // The workers must be done with every file (and have kept the partials of cut
    // ones) before the volume is released to the next session. After a success they
    // are; otherwise they stop within a step of what they were doing. Each holds a
    // completions sender until it ends, so the channel closing says they all have;
    // waited for here rather than by a blocking join, which would keep the runtime (and
    // a signalled process) waiting on a thread that does not stop.
    cancel.cancel();
    drop(s);
    drop(ready_tx);
    let stopped = async { while completions.recv().await.is_some() {} };
    if tokio::time::timeout(WORKERS_STOP, stopped).await.is_err() {
        tracing::warn!(
            "apply workers did not stop within {} s",
            WORKERS_STOP.as_secs()
        );
    }
    drop(workers);
    result
}

async fn drive<R: AsyncRead + Unpin>(
    s: &mut Session,
    reader: &mut FrameReader<R>,
    completions: &mut mpsc::UnboundedReceiver<Vec<Completion>>,
    ready: &mut mpsc::UnboundedReceiver<Ready>,
    ready_tx: &ReadySender,
    options: SessionOptions,
    free: Option<ferry_proto::session::target::FreeSpace>,
) -> Result<TargetStats, EngineError> {
    // A file still draining is still being sent: the source must finish it before the
    // target says Done and closes, or its last frames meet a closed connection.
    while !(s.core.is_settled() && s.signature_jobs == 0) {
        let joined = s.incoming.as_mut().map(|incoming| &mut incoming.events);
        tokio::select! {
            message = reader.next() => {
                let message = message?.ok_or_else(|| EngineError::socket("the source closed the connection before the end of the session"))?;
                s.handle_on(StreamId::CONTROL, message, ready_tx).await?;
            }
            Some(done) = completions.recv() => {
                for done in done {
                    s.complete(done, ready_tx).await?;
                }
            }
            Some(asked) = ready.recv() => s.ask(asked).await?,
            Some(event) = next_event(joined) => s.stream_event(event, ready_tx).await?,
        }
        s.reasks().await?;
        s.dispatch().await?;
        if !reader.has_frame() {
            s.flush().await?;
        }
        s.ack().await?;
    }
    // Every entry is resolved, but a frame that came after a file's last one (a second
    // FileEnd, stray data) may already be read, or queued at a worker, which will find
    // it breaks the protocol. Hear both out before the session is declared a success.
    while reader.has_frame() {
        if let Some(message) = reader.next().await? {
            s.handle_on(StreamId::CONTROL, message, ready_tx).await?;
        }
    }
    s.flush().await?;
    s.pool.close();
    while let Some(done) = completions.recv().await {
        for done in done {
            s.complete(done, ready_tx).await?;
        }
    }
    let planner = s.planner.take().expect("planner is home between frames");
    let delete_ok = s.core.delete_ok();
    let tx = s.tx.clone();
    let volume = s.volume.clone();
    let remaining = s.core.take_remaining_dirs();
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
    let (free, needed) = (free.unwrap_or_default(), s.core.space_needed());
    stats.space_free = free.bytes;
    stats.space_reserved = free.reserved;
    stats.inodes_free = free.inodes.unwrap_or(0);
    stats.space_needed = needed.bytes;
    stats.inodes_needed = needed.inodes;
    if let Some(incoming) = &s.incoming {
        incoming.finishing();
    }
    send(
        &tx,
        Message::Done {
            stats: stats.clone(),
        },
    )
    .await?;
    Ok(stats)
}

/// The next event of the joined streams; never, for a session without them.
async fn next_event(
    events: Option<&mut mpsc::UnboundedReceiver<crate::joined::StreamEvent>>,
) -> Option<crate::joined::StreamEvent> {
    match events {
        Some(events) => events.recv().await,
        None => std::future::pending().await,
    }
}

async fn send(tx: &FrameSender, message: Message) -> Result<(), EngineError> {
    tx.send(message)
        .await
        .map_err(|_| EngineError::socket("the connection closed"))
}

impl Session {
    async fn handle(
        &mut self,
        stream: StreamId,
        message: Message,
        ready: &ReadySender,
    ) -> Result<(), EngineError> {
        let received = match &message {
            Message::Data { bytes, .. } | Message::Delta { bytes, .. } => bytes.len(),
            Message::Files { files } => files.iter().map(|f| f.bytes.len()).sum(),
            _ => 0,
        };
        self.metrics
            .received_bytes
            .fetch_add(received as u64, Relaxed);
        self.core.handle_message_on(stream, message)?;
        self.work(ready).await
    }

    /// Does what the core asks until it asks nothing more.
    async fn work(&mut self, ready: &ReadySender) -> Result<(), EngineError> {
        while let Some(work) = self.core.poll_work() {
            match work {
                TargetWork::Plan(frame) => {
                    let mut planner = self.planner.take().expect("planner");
                    let (planner, planned) = tokio::task::spawn_blocking(move || {
                        let planned = planner.plan(frame);
                        (planner, planned)
                    })
                    .await
                    .map_err(|e| EngineError::file_io(format!("planning failed: {e}")))?;
                    self.planner = Some(planner);
                    self.planned(planned?, ready).await?;
                }
                TargetWork::Receive { index, frame } => {
                    let job = match frame {
                        Message::FileFailed { .. } => Job::Abort { index },
                        frame => Job::Frame(frame),
                    };
                    if matches!(job, Job::Abort { .. } | Job::Frame(Message::FileEnd { .. })) {
                        self.signature_budget.release(index);
                        self.asks.received(index);
                    }
                    if let Job::Frame(Message::RangeEnd { offset, .. }) = job {
                        self.asks.received_range(index, offset);
                    }
                    self.job(index, job).await?;
                }
                TargetWork::MakeLinks(indices) => {
                    let links = indices
                        .iter()
                        .filter_map(|index| self.links.remove(index))
                        .collect();
                    self.make_links(links).await?;
                }
                TargetWork::FailLinks(indices) => {
                    for index in indices {
                        if let Some(link) = self.links.remove(&index) {
                            self.link_failed(&link, "its leader could not be transferred")
                                .await?;
                        }
                        self.core.handle_link(index, false);
                    }
                }
                TargetWork::FinishDirs(ready) => self.finish_dirs(ready).await?,
            }
        }
        Ok(())
    }

    /// Queues `job` for file `index`'s worker; it goes out with the next [`flush`].
    ///
    /// [`flush`]: Session::flush
    async fn job(&mut self, index: u64, job: Job) -> Result<(), EngineError> {
        self.pool.queue(index, job).await
    }

    /// Hands every worker what is queued for it.
    async fn flush(&mut self) -> Result<(), EngineError> {
        self.pool.flush().await
    }

    /// Acts on what planning a frame produced; the core resolves everything not wanted
    /// or linked.
    async fn planned(&mut self, planned: Planned, ready: &ReadySender) -> Result<(), EngineError> {
        // Before any of the frame's files is asked for: do they fit?
        let verdict = self.core.handle_space(&planned.space)?;
        if verdict == SpaceVerdict::DeleteFirst && !self.dry_run {
            let mut planner = self.planner.take().expect("planner is home between frames");
            let volume = self.volume.clone();
            let (planner, deleted) = tokio::task::spawn_blocking(move || {
                let deleted = finish::delete_early(&volume, &mut planner);
                (planner, deleted)
            })
            .await
            .map_err(|e| EngineError::file_io(format!("deleting failed: {e}")))?;
            self.planner = Some(planner);
            deleted?;
        }
        // Planner file errors are in its tally, counted at the end.
        for message in planned.messages {
            send(&self.tx, message).await?;
        }
        let outcome = PlanOutcome {
            wants: planned.wants.iter().map(|w| w.index).collect(),
            links: planned.links.iter().map(|l| l.index).collect(),
            refused: planned.refused,
            has_extras: planned.has_extras,
        };
        self.core.handle_planned(outcome);
        for link in planned.links {
            self.links.insert(link.index, link);
        }
        for want in planned.wants {
            self.want(want, ready).await?;
        }
        Ok(())
    }

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
