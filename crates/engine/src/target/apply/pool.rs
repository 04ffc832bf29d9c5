//! The session's side of the apply workers: which worker gets a file, batching jobs per
//! worker, and the byte budget that bounds the file data queued for them.
//!
//! A file is routed at its `Start` to the worker with the least load (the declared size
//! plus [`FILE_LOAD`] of each file it has and has not finished; ties go round), and its
//! frames follow it there, so one worker sees a file's frames in order. A large file
//! thus pins one worker while small files go to the others.
//!
//! The budget: a `Data` or `Delta` frame takes its bytes of [`APPLY_BYTES`] before it is
//! queued, and gives them back once its worker has written it. When the budget is out
//! the session waits for it, so it stops reading the connection and TCP pushes back on
//! the source: what a source can make this side queue for the workers is the budget,
//! however fast it sends and however many workers there are. No cycle: a worker never
//! waits for the session (its completions go out on an unbounded channel).

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use ferry_tree::Privileges;
use tokio::sync::{mpsc, Semaphore};

use super::job::{Batch, Completion, Job};
use super::worker::{self, Worker};
use super::{APPLY_BYTES, BATCH_BYTES, BATCH_JOBS};
use crate::cancel::Cancel;
use crate::error::EngineError;
use crate::target::plan::Pending;
use ferry_proto::Message;

/// What a file counts in its worker's load besides its bytes: the create, metadata and
/// link of a small file cost about as much CPU as writing and hashing this much.
pub const FILE_LOAD: u64 = 64 << 10;

/// A file's load on the worker it is routed to.
pub fn load_of(pending: &Pending) -> u64 {
    pending.size.saturating_add(FILE_LOAD)
}

/// Workers for this many cores: two at least (one's wait for the journal overlaps the
/// other's CPU, even on one core), eight at most.
pub fn workers_for(cores: usize) -> usize {
    cores.clamp(2, 8)
}

pub struct ApplyPool {
    workers: Vec<Worker>,
    /// Jobs not yet handed to each worker, the data bytes among them and the budget they
    /// hold: sent when the connection has no whole frame left to decode, or when a batch
    /// is full.
    outbox: Vec<(Batch, usize)>,
    /// The worker of each file between its `Start` and its last frame (`FileEnd` or
    /// the source's abort), and whether it comes in ranges (then it has no last frame:
    /// its open ranges may still drain after an abort).
    routes: HashMap<u64, (usize, bool)>,
    budget: Arc<Semaphore>,
    /// The budget's size in bytes.
    budget_bytes: usize,
    /// Where the next tie of loads is broken.
    turn: usize,
}

impl ApplyPool {
    /// Spawns the workers ([`workers_for`] the cores this process may use); the threads
    /// end as [`worker::spawn`] says.
    pub fn spawn(
        privileges: Privileges,
        fsync: bool,
        completions: mpsc::UnboundedSender<Vec<Completion>>,
        cancel: Cancel,
    ) -> (ApplyPool, Vec<std::thread::JoinHandle<()>>) {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::with_workers(
            workers_for(cores),
            APPLY_BYTES,
            privileges,
            fsync,
            completions,
            cancel,
        )
    }

    /// [`ApplyPool::spawn`] with `count` workers and a budget of `budget` bytes.
    pub fn with_workers(
        count: usize,
        budget: usize,
        privileges: Privileges,
        fsync: bool,
        completions: mpsc::UnboundedSender<Vec<Completion>>,
        cancel: Cancel,
    ) -> (ApplyPool, Vec<std::thread::JoinHandle<()>>) {
        let (workers, threads) = worker::spawn(count, privileges, fsync, completions, cancel);
        let pool = ApplyPool {
            outbox: workers.iter().map(|_| Default::default()).collect(),
            workers,
            routes: HashMap::new(),
            budget: Arc::new(Semaphore::new(budget)),
            budget_bytes: budget,
            turn: 0,
        };
        (pool, threads)
    }

    /// Queues `job` for file `index`; it goes out with the next [`ApplyPool::flush`] or
    /// when its worker's batch is full. Waits while the budget is out.
    pub async fn queue(&mut self, index: u64, job: Job) -> Result<(), EngineError> {
        if self.workers.is_empty() {
            return Err(EngineError::file_io("the apply workers were closed"));
        }
        let w = self.route(index, &job);
        let bytes = job.data_bytes();
        if bytes > 0 {
            self.take_budget(w, bytes).await?;
        }
        let (batch, queued) = &mut self.outbox[w];
        batch.jobs.push(job);
        *queued += bytes;
        if batch.jobs.len() >= BATCH_JOBS || *queued >= BATCH_BYTES {
            self.send_batch(w).await?;
        }
        Ok(())
    }

    /// Hands every worker what is queued for it.
    pub async fn flush(&mut self) -> Result<(), EngineError> {
        for w in 0..self.outbox.len() {
            if !self.outbox[w].0.jobs.is_empty() {
                self.send_batch(w).await?;
            }
        }
        Ok(())
    }

    /// Closes the workers' queues: they end once they have worked what is queued.
    pub fn close(&mut self) {
        self.workers.clear();
        self.outbox.clear();
    }

    /// The worker for `job` of file `index`.
    fn route(&mut self, index: u64, job: &Job) -> usize {
        match job {
            Job::Start { pending, .. } | Job::StartRanged { pending, .. } => {
                let w = match self.routes.get(&index) {
                    // A file started again after a failure or a mismatch: its old frames
                    // (a ranged file's draining ones) are at that worker: keep them
                    // together.
                    Some(&(w, _)) => w,
                    None => self.least_loaded(),
                };
                self.workers[w].load.fetch_add(load_of(pending), Relaxed);
                let ranged = matches!(job, Job::StartRanged { .. });
                self.routes.insert(index, (w, ranged));
                w
            }
            // The file's last frame from the session: the route is done with. (A file in
            // ranges has no last frame: its route stays, one entry a file of at least
            // 32 MiB, until the file is started again.)
            Job::Abort { .. } | Job::Reask { .. } | Job::Frame(Message::FileEnd { .. }) => {
                match self.routes.get(&index) {
                    Some(&(w, true)) => w,
                    _ => self.routes.remove(&index).map_or(0, |(w, _)| w),
                }
            }
            // A frame of a file never started goes anywhere: the worker reports it.
            Job::Frame(_) => self.routes.get(&index).map_or(0, |&(w, _)| w),
        }
    }

    fn least_loaded(&mut self) -> usize {
        let n = self.workers.len();
        let mut best = self.turn % n;
        let mut least = self.workers[best].load.load(Relaxed);
        for k in 1..n {
            let w = (self.turn + k) % n;
            let load = self.workers[w].load.load(Relaxed);
            if load < least {
                (best, least) = (w, load);
            }
        }
        self.turn = best + 1;
        best
    }

    /// Takes `bytes` of the budget for worker `w`'s batch. When it is out, what is
    /// queued goes to the workers first (they give budget back only for what they have).
    async fn take_budget(&mut self, w: usize, bytes: usize) -> Result<(), EngineError> {
        // A frame larger than the whole budget takes all of it.
        let n = u32::try_from(bytes.min(self.budget_bytes)).unwrap_or(u32::MAX);
        let permit = match self.budget.clone().try_acquire_many_owned(n) {
            Ok(permit) => permit,
            Err(_) => {
                self.flush().await?;
                self.budget
                    .clone()
                    .acquire_many_owned(n)
                    .await
                    .map_err(|_| EngineError::file_io("the apply budget was closed"))?
            }
        };
        match &mut self.outbox[w].0.held {
            Some(held) => held.merge(permit),
            held => *held = Some(permit),
        }
        Ok(())
    }

    async fn send_batch(&mut self, w: usize) -> Result<(), EngineError> {
        let (batch, _) = std::mem::take(&mut self.outbox[w]);
        self.workers[w]
            .queue
            .send(batch)
            .await
            .map_err(|_| EngineError::file_io("an apply worker thread stopped"))
    }
}

#[cfg(test)]
mod tests;
