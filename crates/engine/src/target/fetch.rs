//! How the target asks for a file: whole, as a delta against its basis (the signature
//! is computed off the reactor first), or resumed after a partial an interrupted session
//! left (its prefix hashed first). When that work is done the task hands the session a
//! [`Ready`], and the session queues the file's `Start` for a worker, tells the core how
//! it asked and sends the Want (or Resume).

use std::sync::{Arc, OnceLock};

use ferry_delta::BasisRead;
use ferry_proto::session::target::Asked;
use ferry_proto::Message;
use tokio::sync::mpsc;

use super::apply::{Job, Resumed};
use super::plan::{Pending, Want};
use super::{send, Session, SIGNATURE_JOBS};
use crate::error::EngineError;
use ferry_tree::Basis;

/// A wanted file whose ask is ready to go out, with the `Start` its worker gets first.
pub(super) enum Ready {
    /// `Want`, with the signature of its basis for a delta.
    Want {
        index: u64,
        signature: Option<Vec<u8>>,
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

    /// Asks for file `index` whole (new, no useful basis, or a re-send after a mismatch).
    pub(super) async fn want_whole(
        &mut self,
        index: u64,
        pending: Pending,
    ) -> Result<(), EngineError> {
        let start = Job::Start {
            index,
            pending,
            basis: None,
            resumed: None,
        };
        self.job(index, start).await?;
        self.core.handle_asked(index, Asked::Whole);
        send(
            &self.tx,
            Message::Want {
                index,
                delta: false,
            },
        )
        .await
    }

    /// Sends an ask a task prepared, its `Start` queued for a worker and the core told
    /// first.
    pub(super) async fn ask(&mut self, ready: Ready) -> Result<(), EngineError> {
        self.signature_jobs -= 1;
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
                self.core.handle_asked(index, asked);
                let delta = signature.is_some();
                send(&self.tx, Message::Want { index, delta }).await?;
                if let Some(signature) = signature {
                    self.send_signature(index, &signature).await?;
                }
                Ok(())
            }
            Ready::Resume {
                index,
                offset,
                hash,
                start,
            } => {
                self.job(index, start).await?;
                self.core.handle_asked(index, Asked::Resume { offset });
                let resume = Message::Resume {
                    index,
                    offset,
                    hash,
                };
                send(&self.tx, resume).await
            }
        }
    }

    /// Sends a basis signature in pieces of at most a data chunk; an empty one as one
    /// empty last piece.
    async fn send_signature(&mut self, index: u64, signature: &[u8]) -> Result<(), EngineError> {
        let chunk = self.limits.data_chunk;
        let pieces: Vec<&[u8]> = signature.chunks(chunk).collect();
        if pieces.is_empty() {
            let bytes = Default::default();
            return send(
                &self.tx,
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
            send(&self.tx, message).await?;
        }
        Ok(())
    }
}
