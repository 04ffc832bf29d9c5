//! An apply worker: a thread that takes [`Batch`]es of jobs off its own bounded queue
//! and works each file's frames in order (a file's frames all come to the worker its
//! `Start` was routed to), then hands the session one completion list per batch.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use ferry_proto::{Message, RelPath};
use ferry_tree::Privileges;
use tokio::sync::mpsc;

use super::assembly::Assembly;
use super::job::{Batch, Completion, Job};
use super::outcome::{finish, Failure};
use super::ranged::{self, RangeStep};
use super::step::step;
use crate::cancel::Cancel;
use crate::error::EngineError;

/// Batches queued per worker: with the session's byte budget bounding the data, this
/// only keeps a worker from idling between two handoffs.
const QUEUE: usize = 4;

/// One worker as the session sees it.
pub struct Worker {
    pub queue: mpsc::Sender<Batch>,
    /// The load of the files routed to it and not finished ([`super::pool`]).
    pub load: Arc<AtomicU64>,
}

/// Spawns `count` workers; returns them and their threads, which end once their queue is
/// closed and drained, or soon after `cancel` is set (between two jobs, or within a step
/// of a long one).
pub fn spawn(
    count: usize,
    privileges: Privileges,
    fsync: bool,
    completions: mpsc::UnboundedSender<Vec<Completion>>,
    cancel: Cancel,
) -> (Vec<Worker>, Vec<std::thread::JoinHandle<()>>) {
    (0..count)
        .map(|i| {
            let (queue, rx) = mpsc::channel(QUEUE);
            let load = Arc::new(AtomicU64::new(0));
            let context = Context {
                privileges,
                fsync,
                completions: completions.clone(),
                cancel: cancel.clone(),
                load: load.clone(),
            };
            let thread = std::thread::Builder::new()
                .name(format!("ferry-apply-{i}"))
                .spawn(move || run(rx, context))
                .expect("spawn apply worker thread");
            (Worker { queue, load }, thread)
        })
        .unzip()
}

struct Context {
    privileges: Privileges,
    fsync: bool,
    completions: mpsc::UnboundedSender<Vec<Completion>>,
    cancel: Cancel,
    load: Arc<AtomicU64>,
}

/// The files a worker holds, and those it drops the rest of.
#[derive(Default)]
struct Files {
    // Boxed: an assembly holds a BLAKE3 state of about 2 KiB, and the map moves its
    // values whenever it grows or rehashes.
    open: HashMap<u64, Box<Assembly>>,
    /// Files that failed before their last frame: the rest of their frames are dropped.
    /// `true` for a file in ranges, which has no last frame: it drains until it is
    /// started again.
    draining: HashMap<u64, bool>,
}

impl Files {
    /// Opens file `index` (started anew: what an earlier start of it left is dropped).
    fn open_new(&mut self, index: u64, assembly: Assembly, load: &AtomicU64) {
        self.draining.remove(&index);
        if let Some(old) = self.open.insert(index, Box::new(assembly)) {
            load.fetch_sub(old.load, Relaxed);
            old.discard();
        }
    }

    fn remove(&mut self, index: u64, load: &AtomicU64) -> Option<Assembly> {
        let a = self.open.remove(&index)?;
        load.fetch_sub(a.load, Relaxed);
        Some(*a)
    }
}

fn run(mut jobs: mpsc::Receiver<Batch>, cx: Context) {
    let mut files = Files::default();
    let mut bounce = Vec::new();
    // Once the session ended, what is queued is still taken (without waiting for more):
    // a Start may carry the partial of an earlier session, which must be kept, not
    // dropped; frames are no longer worked on.
    let next = |jobs: &mut mpsc::Receiver<Batch>| match cx.cancel.is_cancelled() {
        true => jobs.try_recv().ok(),
        false => jobs.blocking_recv(),
    };
    'batches: while let Some(batch) = next(&mut jobs) {
        let mut done_here = Vec::new();
        for job in batch.jobs {
            // A panic here is a bug; it must end the session with an error, not leave it
            // waiting for ever for files this worker will never finish.
            let worked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                work(job, &mut files, &cx, &mut bounce)
            }));
            match worked {
                Ok(done) => done_here.extend(done),
                Err(_) => {
                    done_here.push(internal_error());
                    let _ = cx.completions.send(done_here);
                    break 'batches;
                }
            }
        }
        // Written: the batch's data leaves the session's budget.
        drop(batch.held);
        if !done_here.is_empty() && cx.completions.send(done_here).is_err() {
            break;
        }
    }
    // The session ended with these unfinished: keep what a later session can resume.
    for (_, a) in files.open.drain() {
        a.abandon();
    }
}

/// What a worker that panicked tells the session: a fatal error (the panic itself went
/// to the log), after which it takes no more jobs.
fn internal_error() -> Completion {
    Completion::Failed {
        index: u64::MAX,
        path: RelPath::root(),
        message: String::new(),
        fatal: Some(EngineError::file_io(
            "an apply worker stopped on an internal error (a bug in ferry; please report it)",
        )),
        draining: false,
    }
}

fn work(job: Job, files: &mut Files, cx: &Context, bounce: &mut Vec<u8>) -> Option<Completion> {
    match job {
        Job::Start {
            index,
            pending,
            basis,
            resumed,
        } => {
            let load = super::pool::load_of(&pending);
            files.open_new(
                index,
                Assembly::new(pending, basis, resumed, load),
                &cx.load,
            );
            None
        }
        Job::StartRanged {
            index,
            pending,
            resumed,
        } => {
            let load = super::pool::load_of(&pending);
            files.open_new(index, Assembly::ranged(pending, resumed, load), &cx.load);
            None
        }
        Job::Abort { index } => match files.remove(index, &cx.load) {
            Some(a) => {
                if a.ranges.is_some() {
                    // Its other open ranges may still come, each up to its end.
                    files.draining.insert(index, true);
                }
                a.discard();
                Some(Completion::Aborted { index })
            }
            None => {
                // The source's FileFailed of a file this worker failed first: a whole
                // file's last frame; a file in ranges may have more ranges draining.
                if files.draining.get(&index) == Some(&false) {
                    files.draining.remove(&index);
                }
                None
            }
        },
        Job::Reask { index } => {
            files.draining.remove(&index);
            let pending = files.remove(index, &cx.load).map(|a| Box::new(a.discard()));
            Some(Completion::Reask { index, pending })
        }
        Job::Frame(_) if cx.cancel.is_cancelled() => None,
        Job::Frame(message) => frame(message, files, cx, bounce),
    }
}

fn frame(
    message: Message,
    files: &mut Files,
    cx: &Context,
    bounce: &mut Vec<u8>,
) -> Option<Completion> {
    let index = frame_index(&message);
    let last = matches!(message, Message::FileEnd { .. });
    let Some(a) = files.open.get_mut(&index) else {
        if let Some(&ranged) = files.draining.get(&index) {
            if last && !ranged {
                files.draining.remove(&index);
            }
            return None;
        }
        return Some(Completion::Failed {
            index,
            path: RelPath::root(),
            message: String::new(),
            fatal: Some(EngineError::protocol(format!(
                "{} for entry {index}, which is not being received",
                message.name()
            ))),
            draining: false,
        });
    };
    if a.ranges.is_some() {
        return range_frame(index, message, files, cx);
    }
    match step(a, message, cx.privileges, cx.fsync, bounce, &cx.cancel) {
        // The session ended: the file stays as it is (kept at the end).
        Err(Failure::Cancelled) => None,
        stepped => stepped.transpose().map(|finished| {
            let a = files
                .remove(index, &cx.load)
                .expect("the file just stepped");
            let done = finish(index, a, finished, !last);
            if let Completion::Failed { draining: true, .. } = done {
                files.draining.insert(index, false);
            }
            done
        }),
    }
}

/// A frame of a file received in ranges: a range that did not verify is reported and
/// the file goes on; a failure ends it (its other ranges drain).
fn range_frame(
    index: u64,
    message: Message,
    files: &mut Files,
    cx: &Context,
) -> Option<Completion> {
    let a = files.open.get_mut(&index).expect("looked up by the caller");
    let stepped = ranged::step(a, message, cx.privileges, cx.fsync);
    let finished = match stepped {
        Ok(RangeStep::More) => return None,
        Ok(RangeStep::Mismatch(offset)) => {
            return Some(Completion::RangeMismatch {
                index,
                offset,
                size: a.pending.size,
                path: a.pending.path.clone(),
            })
        }
        Err(Failure::Cancelled) => return None,
        Ok(RangeStep::Finished(finished)) => Ok(finished),
        Err(failure) => Err(failure),
    };
    let a = files
        .remove(index, &cx.load)
        .expect("the file just stepped");
    let done = finish(index, a, finished, true);
    if let Completion::Failed { draining: true, .. } = done {
        files.draining.insert(index, true);
    }
    Some(done)
}

fn frame_index(message: &Message) -> u64 {
    match message {
        Message::Data { index, .. }
        | Message::Hole { index, .. }
        | Message::Delta { index, .. }
        | Message::FileEnd { index, .. }
        | Message::RangeEnd { index, .. } => *index,
        _ => u64::MAX,
    }
}
