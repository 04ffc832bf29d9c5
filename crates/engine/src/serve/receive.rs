//! Receiver threads: assemble wanted files from Data, Hole and Delta frames into temp
//! files, verify their BLAKE3, apply attributes on the open fd and rename them into
//! place. A file is routed to thread `index % RECEIVERS`, so its frames stay in order.
//!
//! ```text
//! session ──Job──▶ receiver thread ──Completion──▶ session
//!                  temp file ─ verify ─ meta ─ rename
//! ```

use std::collections::HashMap;
use std::sync::Arc;

use ferry_delta::apply_segment;
use ferry_proto::{Message, RelPath};
use ferry_tree::{NotApplied, Privileges, TempFile};
use tokio::sync::mpsc;

use super::basis::Basis;
use super::plan::{is_fatal, Pending};
use crate::error::EngineError;
use crate::zeros::hash_zeros;

pub const RECEIVERS: usize = 2;

pub enum Job {
    /// Data for `index` follows; `basis` is set when a delta was asked for.
    Start {
        index: u64,
        pending: Pending,
        basis: Option<Arc<Basis>>,
    },
    /// A Data, Hole, Delta or FileEnd frame of a started file.
    Frame(Message),
    /// The source gave up on the file: discard what was written.
    Abort { index: u64 },
}

pub enum Completion {
    Committed {
        index: u64,
        size: u64,
        not_applied: NotApplied,
    },
    /// The content did not match the source's hash; ask again, whole.
    Mismatch {
        index: u64,
    },
    /// The file could not be written; the session goes on unless `fatal` is set.
    Failed {
        index: u64,
        path: RelPath,
        message: String,
        fatal: Option<EngineError>,
    },
    Aborted {
        index: u64,
    },
}

struct Assembly {
    pending: Pending,
    basis: Option<Arc<Basis>>,
    temp: Option<TempFile>,
    pos: u64,
    hasher: blake3::Hasher,
}

/// Spawns the receiver threads; returns one job queue per thread.
pub fn spawn(
    privileges: Privileges,
    completions: mpsc::UnboundedSender<Completion>,
) -> Vec<mpsc::Sender<Job>> {
    (0..RECEIVERS)
        .map(|i| {
            let (tx, rx) = mpsc::channel(256);
            let completions = completions.clone();
            std::thread::Builder::new()
                .name(format!("ferry-recv-{i}"))
                .spawn(move || run(rx, privileges, completions))
                .expect("spawn receiver thread");
            tx
        })
        .collect()
}

fn run(
    mut jobs: mpsc::Receiver<Job>,
    privileges: Privileges,
    completions: mpsc::UnboundedSender<Completion>,
) {
    let mut files: HashMap<u64, Assembly> = HashMap::new();
    let mut scratch = Vec::new();
    while let Some(job) = jobs.blocking_recv() {
        let done = match job {
            Job::Start {
                index,
                pending,
                basis,
            } => {
                if let Some(old) = files.insert(
                    index,
                    Assembly {
                        pending,
                        basis,
                        temp: None,
                        pos: 0,
                        hasher: blake3::Hasher::new(),
                    },
                ) {
                    discard(old);
                }
                None
            }
            Job::Abort { index } => files.remove(&index).map(|a| {
                discard(a);
                Completion::Aborted { index }
            }),
            Job::Frame(message) => {
                let index = frame_index(&message);
                match files.remove(&index) {
                    None => Some(Completion::Failed {
                        index,
                        path: RelPath::root(),
                        message: String::new(),
                        fatal: Some(EngineError::protocol(format!(
                            "{} for entry {index}, which is not being received",
                            message.name()
                        ))),
                    }),
                    Some(mut a) => match step(&mut a, message, privileges, &mut scratch) {
                        Ok(Step::More) => {
                            files.insert(index, a);
                            None
                        }
                        Ok(Step::Committed(not_applied)) => Some(Completion::Committed {
                            index,
                            size: a.pending.size,
                            not_applied,
                        }),
                        Ok(Step::Mismatch) => {
                            discard(a);
                            Some(Completion::Mismatch { index })
                        }
                        Err(failure) => {
                            let path = a.pending.path.clone();
                            discard(a);
                            Some(failure.into_completion(index, path))
                        }
                    },
                }
            }
        };
        if let Some(done) = done {
            if completions.send(done).is_err() {
                break;
            }
        }
    }
    for (_, a) in files.drain() {
        discard(a);
    }
}

fn frame_index(message: &Message) -> u64 {
    match message {
        Message::Data { index, .. }
        | Message::Hole { index, .. }
        | Message::Delta { index, .. }
        | Message::FileEnd { index, .. } => *index,
        _ => u64::MAX,
    }
}

fn discard(a: Assembly) {
    if let Some(temp) = a.temp {
        temp.discard(&a.pending.dir);
    }
}

enum Step {
    More,
    Committed(NotApplied),
    Mismatch,
}

enum Failure {
    Protocol(String),
    Tree(ferry_tree::TreeError),
}

impl Failure {
    fn into_completion(self, index: u64, path: RelPath) -> Completion {
        match self {
            Failure::Protocol(message) => Completion::Failed {
                index,
                path,
                message: String::new(),
                fatal: Some(EngineError::protocol(message)),
            },
            Failure::Tree(e) => {
                let fatal = is_fatal(&e).then(|| EngineError::from(&e));
                Completion::Failed {
                    index,
                    path,
                    message: e.to_string(),
                    fatal,
                }
            }
        }
    }
}

impl From<ferry_tree::TreeError> for Failure {
    fn from(e: ferry_tree::TreeError) -> Self {
        Failure::Tree(e)
    }
}

/// Checks that a piece at `offset` of `len` bytes continues the file within its size.
fn check_piece(a: &Assembly, what: &str, offset: u64, len: u64) -> Result<(), Failure> {
    if offset != a.pos {
        return Err(Failure::Protocol(format!(
            "{what} for {} at offset {offset}, expected {}",
            a.pending.path, a.pos
        )));
    }
    if offset
        .checked_add(len)
        .is_none_or(|end| end > a.pending.size)
    {
        return Err(Failure::Protocol(format!(
            "{what} for {} writes past its declared size of {} bytes",
            a.pending.path, a.pending.size
        )));
    }
    Ok(())
}

fn temp(a: &mut Assembly) -> Result<&mut TempFile, Failure> {
    if a.temp.is_none() {
        a.temp = Some(a.pending.dir.create_temp(&a.pending.name)?);
    }
    Ok(a.temp.as_mut().expect("just created"))
}

fn step(
    a: &mut Assembly,
    message: Message,
    privileges: Privileges,
    scratch: &mut Vec<u8>,
) -> Result<Step, Failure> {
    match message {
        Message::Data { offset, bytes, .. } => {
            check_piece(a, "Data", offset, bytes.len() as u64)?;
            temp(a)?.write_at(offset, &bytes)?;
            a.hasher.update(&bytes);
            a.pos += bytes.len() as u64;
        }
        Message::Hole { offset, len, .. } => {
            check_piece(a, "Hole", offset, len)?;
            temp(a)?;
            hash_zeros(&mut a.hasher, len);
            a.pos += len;
        }
        Message::Delta {
            offset, len, bytes, ..
        } => {
            check_piece(a, "Delta", offset, len)?;
            let basis = a.basis.clone().ok_or_else(|| {
                Failure::Protocol(format!(
                    "Delta for {}, which was asked for whole",
                    a.pending.path
                ))
            })?;
            scratch.clear();
            apply_segment(basis.bytes(), &bytes, len as usize, scratch)
                .map_err(|e| Failure::Protocol(format!("bad delta for {}: {e}", a.pending.path)))?;
            temp(a)?.write_at(offset, scratch)?;
            a.hasher.update(scratch);
            a.pos += len;
        }
        Message::FileEnd { size, hash, .. } => {
            if size != a.pending.size || a.pos != size {
                return Err(Failure::Protocol(format!(
                    "{} ended at {} bytes of {} declared (FileEnd says {size})",
                    a.pending.path, a.pos, a.pending.size
                )));
            }
            if *a.hasher.finalize().as_bytes() != hash {
                return Ok(Step::Mismatch);
            }
            let mut file = a
                .temp
                .take()
                .map_or_else(|| a.pending.dir.create_temp(&a.pending.name), Ok)?;
            let finish = (|| {
                file.set_len(size)?;
                let not_applied = file.apply_meta(&a.pending.meta, privileges)?;
                Ok::<_, ferry_tree::TreeError>(not_applied)
            })();
            match finish {
                Ok(not_applied) => {
                    file.commit(&a.pending.dir, &a.pending.name)?;
                    return Ok(Step::Committed(not_applied));
                }
                Err(e) => {
                    file.discard(&a.pending.dir);
                    return Err(e.into());
                }
            }
        }
        other => {
            return Err(Failure::Protocol(format!(
                "unexpected {} in file data",
                other.name()
            )))
        }
    }
    Ok(Step::More)
}
