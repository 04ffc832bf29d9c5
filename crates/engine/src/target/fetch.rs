//! How the target asks for a file: whole, as a delta against its basis (the signature
//! is computed off the reactor first), or resumed after a partial an interrupted session
//! left (its prefix hashed first). When that work is done the task hands the session a
//! [`Ready`]. Every ask then waits in [`Asks`] for a stream with credit; when it goes
//! out ([`Session::dispatch`]) the session queues the file's `Start` for a worker, tells
//! the core how and where it asked, and sends the Want (whole files in batches: `Wants`),
//! the Resume, or the Want and its signature, on that stream.
//!
//! [`Asks`]: super::asks::Asks

use std::sync::{Arc, OnceLock};

use ferry_delta::BasisRead;
use ferry_proto::session::target::Asked;
use ferry_proto::Message;
use tokio::sync::mpsc;

use ferry_proto::session::stream::StreamId;

use super::apply::{Job, Resumed};
use super::asks::Queued;
use super::plan::{Pending, Want};
use super::ranges::resume_ranges;
use super::{send, Session, SIGNATURE_JOBS};
use crate::error::EngineError;
use crate::framed::FrameSender;
use ferry_tree::Basis;

/// A wanted file whose ask is ready to go out, with the `Start` its worker gets first.
pub(super) enum Ready {
    /// `Want`, with the signature of its basis for a delta.
    Want {
        index: u64,
        signature: Option<Vec<u8>>,
        start: Job,
    },
    /// The ranges of a large file whose partial holds the first `have.len()` ranges,
    /// with these values: those are asked with `have` (the source sends only what
    /// differs), the rest as any range. `start` is its `StartRanged`.
    Ranged {
        index: u64,
        size: u64,
        have: Vec<[u8; 32]>,
        start: Job,
    },
    /// `Resume` after the partial's first `offset` bytes, whose BLAKE3 is `hash`.
    Resume {
        index: u64,
        offset: u64,
        hash: [u8; 32],
        start: Job,
    },
}

impl Ready {
    pub fn index(&self) -> u64 {
        match self {
            Ready::Want { index, .. }
            | Ready::Resume { index, .. }
            | Ready::Ranged { index, .. } => *index,
        }
    }

    /// The file's size, as listed.
    pub fn size(&self) -> u64 {
        match self {
            Ready::Want { start, .. } | Ready::Resume { start, .. } => match start {
                Job::Start { pending, .. } => pending.size,
                _ => 0,
            },
            Ready::Ranged { size, .. } => *size,
        }
    }
}

/// Where the tasks that prepare asks hand them to the session.
pub(super) type ReadySender = mpsc::UnboundedSender<Ready>;

/// Most threads one signature is split across.
const MAX_SIGNING_THREADS: usize = 4;

/// Threads to sign one large basis with: the source waits idle for the signature, so
/// every core the process may use (std reads the cgroup's CPU quota), up to
/// [`MAX_SIGNING_THREADS`]. With [`SIGNATURE_JOBS`] signatures at once that may be more
/// threads than cores for a moment; they only share the cores the jobs would have used.
fn signing_threads() -> usize {
    static THREADS: OnceLock<usize> = OnceLock::new();
    *THREADS.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(MAX_SIGNING_THREADS)
    })
}

impl Session {
    pub(super) async fn want(
        &mut self,
        want: Want,
        ready: &ReadySender,
    ) -> Result<(), EngineError> {
        let Want {
            index,
            pending,
            basis,
            partial,
        } = want;
        if let Some((temp, len)) = partial {
            self.resume(index, pending, temp, len, ready);
            return Ok(());
        }
        let Some(file) = basis else {
            return self.want_whole(index, pending).await;
        };
        // Compute the basis's signature off the reactor; the Want goes out when it is
        // ready. A basis that cannot be read whole (it shrank) is asked for whole.
        self.signature_jobs += 1;
        let max_signature = self.limits.max_signature;
        let ready = ready.clone();
        let cancel = self.cancel.clone();
        let budget = self.signature_budget.clone();
        tokio::spawn(async move {
            static SLOTS: tokio::sync::Semaphore =
                tokio::sync::Semaphore::const_new(SIGNATURE_JOBS);
            let slot = SLOTS.acquire().await;
            let computed = tokio::task::spawn_blocking(move || {
                cancel.check().ok()?;
                let basis = Basis::open(file, cancel.flag()).ok()?;
                let plan = ferry_delta::plan(basis.basis_len(), max_signature)?;
                let signature = ferry_delta::signature_on(&basis, plan, signing_threads());
                Some((Arc::new(basis), signature.ok()?))
            })
            .await
            .ok()
            .flatten();
            drop(slot);
            let (basis, signature) = match computed {
                Some((basis, signature)) => (Some(basis), Some(signature)),
                None => (None, None),
            };
            // The source must hold the signature until it has sent the file: wait for
            // room in the window.
            if let Some(signature) = &signature {
                if !budget.take(index, signature.len()).await {
                    return;
                }
            }
            let start = Job::Start {
                index,
                pending,
                basis,
                resumed: None,
            };
            let _ = ready.send(Ready::Want {
                index,
                signature,
                start,
            });
        });
        Ok(())
    }

    /// Hashes the partial an interrupted session left (off the reactor), then asks the
    /// source to send the rest if its own prefix hashes the same.
    fn resume(
        &mut self,
        index: u64,
        pending: Pending,
        temp: ferry_tree::TempFile,
        offset: u64,
        ready: &ReadySender,
    ) {
        self.signature_jobs += 1;
        let ready = ready.clone();
        let cancel = self.cancel.clone();
        if self.in_ranges(&pending) {
            tokio::spawn(resume_ranges(index, pending, temp, offset, ready, cancel));
            return;
        }
        tokio::spawn(async move {
            let hashed = tokio::task::spawn_blocking(move || {
                let mut hasher = blake3::Hasher::new();
                let mut buf = vec![0u8; 1 << 20];
                let mut at = 0u64;
                while at < offset {
                    if cancel.is_cancelled() {
                        // Still the partial a later session resumes.
                        temp.keep();
                        return None;
                    }
                    let n = (offset - at).min(buf.len() as u64) as usize;
                    std::os::unix::fs::FileExt::read_exact_at(temp.file(), &mut buf[..n], at)
                        .ok()?;
                    hasher.update(&buf[..n]);
                    at += n as u64;
                }
                Some((temp, hasher))
            })
            .await
            .ok()
            .flatten();
            match hashed {
                Some((temp, hasher)) => {
                    let hash = *hasher.finalize().as_bytes();
                    let start = Job::Start {
                        index,
                        pending,
                        basis: None,
                        resumed: Some(Box::new(Resumed::new(temp, offset, hasher))),
                    };
                    // Should the session have ended, the partial stays (dropping a
                    // Resumed keeps it).
                    let _ = ready.send(Ready::Resume {
                        index,
                        offset,
                        hash,
                        start,
                    });
                }
                None => {
                    let start = Job::Start {
                        index,
                        pending,
                        basis: None,
                        resumed: None,
                    };
                    let _ = ready.send(Ready::Want {
                        index,
                        signature: None,
                        start,
                    });
                }
            }
        });
    }

    /// Asks for file `index` whole (new, no useful basis, a re-send after a mismatch, or
    /// a file asked again after its stream was lost): it waits for a stream. A large one,
    /// in a session that may have several streams, is asked in ranges
    /// ([`Session::want_ranges`]).
    pub(super) async fn want_whole(
        &mut self,
        index: u64,
        pending: Pending,
    ) -> Result<(), EngineError> {
        if self.in_ranges(&pending) {
            return self.want_ranges(index, pending).await;
        }
        self.asks.push(Queued::Whole { index, pending });
        Ok(())
    }

    /// An ask a task prepared: it waits for a stream (a file in ranges: its `Start` goes
    /// to its worker now, its ranges wait for streams one by one).
    pub(super) async fn ask(&mut self, ready: Ready) -> Result<(), EngineError> {
        self.signature_jobs -= 1;
        match ready {
            Ready::Ranged {
                index,
                size,
                have,
                start,
            } => {
                self.job(index, start).await?;
                self.asks.push(Queued::Ranges {
                    index,
                    next: 0,
                    size,
                    have,
                });
            }
            ready => self.asks.push(Queued::Ready(ready)),
        }
        Ok(())
    }

    /// Sends the asks that have a stream with credit; the rest wait for credit to come
    /// back (a file received) or a stream to join. A stream whose connection closed
    /// under a send is lost; stream 0's is the end of the session.
    pub(super) async fn dispatch(&mut self) -> Result<(), EngineError> {
        while let Some((stream, tx)) = self.asks.next_stream() {
            let Some(queued) = self.asks.pop_for(stream) else {
                break;
            };
            let sent = match queued {
                Queued::Whole { index, pending } if self.asks.is_multi() => {
                    self.ask_batch(stream, &tx, index, pending).await?
                }
                Queued::Whole { index, pending } => {
                    self.start_whole(index, pending).await?;
                    self.core.handle_asked_on(index, Asked::Whole, stream);
                    let want = Message::Want {
                        index,
                        delta: false,
                    };
                    tx.send(want).await.is_ok()
                }
                Queued::Ready(ready) => self.ask_ready(stream, &tx, ready).await?,
                Queued::Range {
                    index,
                    offset,
                    have,
                    ..
                } => match self.core.ask_range(index, offset, stream, have) {
                    Some(want) => tx.send(want).await.is_ok(),
                    // The file failed or ended meanwhile: its ranges are asked no more.
                    None => {
                        self.asks.ranged_ended(index);
                        true
                    }
                },
                Queued::Ranges { .. } => unreachable!("popped a range at a time"),
            };
            if !sent {
                self.outlet_closed(stream)?;
            }
        }
        while let Some(why) = self.asks.wants_more_streams() {
            if let Some(incoming) = &self.incoming {
                incoming.want_more(why);
            }
        }
        Ok(())
    }

    /// Queues the `Start` of a file asked whole for its worker.
    async fn start_whole(&mut self, index: u64, pending: Pending) -> Result<(), EngineError> {
        let start = Job::Start {
            index,
            pending,
            basis: None,
            resumed: None,
        };
        self.job(index, start).await
    }

    /// Asks for `index` and the whole files queued after it that `stream` has credit
    /// for, in one `Wants`; whether the stream took it.
    async fn ask_batch(
        &mut self,
        stream: StreamId,
        tx: &FrameSender,
        index: u64,
        pending: Pending,
    ) -> Result<bool, EngineError> {
        let max = self.limits.max_wants_per_frame;
        let mut indices = vec![index];
        self.start_whole(index, pending).await?;
        while indices.len() < max {
            let Some((index, pending)) = self.asks.pop_whole_for(stream) else {
                break;
            };
            self.start_whole(index, pending).await?;
            indices.push(index);
        }
        let wants = self.core.ask_batch(stream, indices);
        Ok(tx.send(wants).await.is_ok())
    }

    /// Sends an ask a task prepared on `stream`, its `Start` queued for a worker and the
    /// core told first; whether the stream took it.
    async fn ask_ready(
        &mut self,
        stream: StreamId,
        tx: &FrameSender,
        ready: Ready,
    ) -> Result<bool, EngineError> {
        match ready {
            Ready::Want {
                index,
                signature,
                start,
            } => {
                self.job(index, start).await?;
                let asked = match signature {
                    Some(_) => Asked::Delta,
                    None => Asked::Whole,
                };
                self.core.handle_asked_on(index, asked, stream);
                let delta = signature.is_some();
                if tx.send(Message::Want { index, delta }).await.is_err() {
                    return Ok(false);
                }
                match signature {
                    Some(signature) => Ok(send_signature(tx, &self.limits, index, &signature)
                        .await
                        .is_ok()),
                    None => Ok(true),
                }
            }
            Ready::Ranged { .. } => unreachable!("queued as its ranges"),
            Ready::Resume {
                index,
                offset,
                hash,
                start,
            } => {
                self.job(index, start).await?;
                self.core
                    .handle_asked_on(index, Asked::Resume { offset }, stream);
                let resume = Message::Resume {
                    index,
                    offset,
                    hash,
                };
                Ok(tx.send(resume).await.is_ok())
            }
        }
    }
}

/// Sends a basis signature in pieces of at most a data chunk; an empty one as one empty
/// last piece.
async fn send_signature(
    tx: &FrameSender,
    limits: &ferry_proto::Limits,
    index: u64,
    signature: &[u8],
) -> Result<(), EngineError> {
    let chunk = limits.data_chunk;
    let pieces: Vec<&[u8]> = signature.chunks(chunk).collect();
    if pieces.is_empty() {
        let bytes = Default::default();
        return send(
            tx,
            Message::Signature {
                index,
                bytes,
                last: true,
            },
        )
        .await;
    }
    let last = pieces.len() - 1;
    for (i, piece) in pieces.into_iter().enumerate() {
        let message = Message::Signature {
            index,
            bytes: bytes::Bytes::copy_from_slice(piece),
            last: i == last,
        };
        send(tx, message).await?;
    }
    Ok(())
}
