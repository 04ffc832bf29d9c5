//! Receiver threads: assemble wanted files from Data, Hole and Delta frames into temp
//! files, verify their BLAKE3, apply attributes on the open fd and rename them into
//! place. A file is routed to thread `index % RECEIVERS`, so its frames stay in order.
//!
//! ```text
//! session ──Job──▶ receiver thread ──Completion──▶ session
//!                  temp file ─ verify ─ meta ─ rename
//! ```

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use ferry_delta::check_segment;
use ferry_proto::{Message, RelPath};
use ferry_tree::{NotApplied, Privileges, TempFile};
use tokio::sync::mpsc;

use super::delta_in_place::{write_delta_in_place, InPlaceError};
use super::delta_write::{write_delta, DeltaWriteError};
use super::in_place::{InPlace, Overwritten, Why};
use super::plan::{Pending, MIN_RESUME};
use crate::cancel::Cancel;
use crate::error::EngineError;
use crate::zeros::hash_zeros_until;
use ferry_tree::Basis;

pub const RECEIVERS: usize = 2;
/// Batches of jobs queued per receiver thread (see [`Batch`]).
const JOB_QUEUE: usize = 4;

/// Jobs handed to a receiver at once: whatever the session decoded from one read of the
/// connection, up to [`BATCH_JOBS`] jobs or [`BATCH_BYTES`] of data. One handoff (and at
/// most one wakeup) a batch rather than three a file: for small files the wakeups cost
/// more than the writes.
pub type Batch = Vec<Job>;
pub const BATCH_JOBS: usize = 64;
pub const BATCH_BYTES: usize = 2 << 20;

/// A partial from an interrupted session, verified by hashing: data continues after it.
pub struct Resumed {
    pub temp: TempFile,
    pub offset: u64,
    /// BLAKE3 state over the first `offset` bytes.
    pub hasher: blake3::Hasher,
}

pub enum Job {
    /// Data for `index` follows; `basis` is set when a delta was asked for, `resumed`
    /// when the target asked to resume from a partial.
    Start {
        index: u64,
        pending: Pending,
        basis: Option<Arc<Basis>>,
        resumed: Option<Box<Resumed>>,
    },
    /// A Data, Hole, Delta or FileEnd frame of a started file.
    Frame(Message),
    /// The source gave up on the file: discard what was written.
    Abort { index: u64 },
}

pub enum Completion {
    /// `path` is set when something was not applied (the report names the file).
    Committed {
        index: u64,
        size: u64,
        /// Written into the existing file rather than a temp copy.
        in_place: bool,
        not_applied: NotApplied,
        path: Option<RelPath>,
    },
    /// The content did not match the source's hash; ask again, whole. The file's
    /// entry comes back for that (the session keeps only indexes of wanted files).
    Mismatch {
        index: u64,
        pending: Box<Pending>,
    },
    /// The file could not be written; the session goes on unless `fatal` is set.
    /// `draining`: the source is still sending it (the failure came before its
    /// `FileEnd`), and its frames up to that are dropped, not taken for a protocol error.
    Failed {
        index: u64,
        path: RelPath,
        message: String,
        fatal: Option<EngineError>,
        draining: bool,
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
    /// Made with the first piece ([`hasher`]): a target wants thousands of files ahead
    /// of their data, and a hasher is 2 KiB (a tree of small files held 33 MiB of them).
    hasher: Option<Box<blake3::Hasher>>,
    /// Where a resumed file's new data must start, until the first piece arrives.
    resume_at: Option<u64>,
    /// Set when the basis could not be read (another process changed it): the rest of
    /// the file's frames are checked but not written, and its end asks for it whole.
    spoiled: bool,
    /// Written in place: what of the file no longer holds its old content.
    overwritten: Overwritten,
}

/// Spawns the receiver threads; returns one job queue per thread and the threads,
/// which end once their queue is closed and drained, or soon after `cancel` is set
/// (between two jobs, or within a step of a long one).
pub fn spawn(
    privileges: Privileges,
    fsync: bool,
    completions: mpsc::UnboundedSender<Vec<Completion>>,
    cancel: Cancel,
) -> (Vec<mpsc::Sender<Batch>>, Vec<std::thread::JoinHandle<()>>) {
    (0..RECEIVERS)
        .map(|i| {
            // Bounded: 4 batches of at most 2 MiB of data queued per thread keeps the
            // target's memory near 16 MiB however fast the source sends.
            let (tx, rx) = mpsc::channel(JOB_QUEUE);
            let completions = completions.clone();
            let cancel = cancel.clone();
            let thread = std::thread::Builder::new()
                .name(format!("ferry-recv-{i}"))
                .spawn(move || run(rx, privileges, fsync, completions, cancel))
                .expect("spawn receiver thread");
            (tx, thread)
        })
        .unzip()
}

fn run(
    mut jobs: mpsc::Receiver<Batch>,
    privileges: Privileges,
    fsync: bool,
    completions: mpsc::UnboundedSender<Vec<Completion>>,
    cancel: Cancel,
) {
    // Boxed: an assembly holds a BLAKE3 state of about 2 KiB, and the map moves its
    // values whenever it grows or rehashes.
    let mut files: HashMap<u64, Box<Assembly>> = HashMap::new();
    // Files that failed before their last frame: the rest of their frames are dropped.
    let mut draining: HashSet<u64> = HashSet::new();
    let mut bounce = Vec::new();
    // Once the session ended, what is queued is still taken (without waiting for more):
    // a Start may carry the partial of an earlier session, which must be kept, not
    // dropped (a dropped temp file is unlinked); frames are no longer worked on.
    let next = |jobs: &mut mpsc::Receiver<Batch>| match cancel.is_cancelled() {
        true => jobs.try_recv().ok(),
        false => jobs.blocking_recv(),
    };
    'batches: while let Some(batch) = next(&mut jobs) {
        let mut done_here = Vec::new();
        for job in batch {
            let done = match job {
                Job::Start {
                    index,
                    pending,
                    basis,
                    resumed,
                } => {
                    let assembly = match resumed.map(|r| *r) {
                        Some(r) => Assembly {
                            pending,
                            basis,
                            temp: Some(r.temp),
                            pos: r.offset,
                            hasher: Some(Box::new(r.hasher)),
                            resume_at: Some(r.offset),
                            spoiled: false,
                            overwritten: Overwritten::default(),
                        },
                        None => Assembly {
                            pending,
                            basis,
                            temp: None,
                            pos: 0,
                            hasher: None,
                            resume_at: None,
                            spoiled: false,
                            overwritten: Overwritten::default(),
                        },
                    };
                    draining.remove(&index);
                    if let Some(old) = files.insert(index, Box::new(assembly)) {
                        discard(*old);
                    }
                    None
                }
                Job::Abort { index } => {
                    draining.remove(&index);
                    files.remove(&index).map(|a| {
                        discard(*a);
                        Completion::Aborted { index }
                    })
                }
                Job::Frame(_) if cancel.is_cancelled() => None,
                Job::Frame(message) => {
                    let index = frame_index(&message);
                    let last = matches!(message, Message::FileEnd { .. });
                    match files.get_mut(&index) {
                        None if draining.contains(&index) => {
                            if last {
                                draining.remove(&index);
                            }
                            None
                        }
                        None => Some(Completion::Failed {
                            index,
                            path: RelPath::root(),
                            message: String::new(),
                            fatal: Some(EngineError::protocol(format!(
                                "{} for entry {index}, which is not being received",
                                message.name()
                            ))),
                            draining: false,
                        }),
                        Some(a) => {
                            match step(a, message, privileges, fsync, &mut bounce, &cancel) {
                                // The session ended: the file stays as it is (kept below).
                                Err(Failure::Cancelled) => None,
                                stepped => stepped.transpose().map(|finished| {
                                    let a = files.remove(&index).expect("the file just stepped");
                                    let done = finish(index, *a, finished, !last);
                                    if let Completion::Failed { draining: true, .. } = done {
                                        draining.insert(index);
                                    }
                                    done
                                }),
                            }
                        }
                    }
                }
            };
            done_here.extend(done);
        }
        if !done_here.is_empty() && completions.send(done_here).is_err() {
            break 'batches;
        }
    }
    // The session ended with these unfinished: keep what a later session can resume.
    for (_, a) in files.drain() {
        match a.temp {
            Some(temp) if a.pending.size >= MIN_RESUME && a.pos > 0 && temp.resumable() => {
                temp.keep()
            }
            _ => {
                discard(*a);
            }
        }
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

/// What the session hears of a file whose last frame finished it (or failed it);
/// `more`: that frame was not its `FileEnd`, so the source is still sending it.
fn finish(index: u64, a: Assembly, finished: Result<Finished, Failure>, more: bool) -> Completion {
    match finished {
        Ok(Finished::Committed(not_applied)) => Completion::Committed {
            index,
            size: a.pending.size,
            in_place: matches!(a.pending.in_place, InPlace::Chosen { .. }),
            path: (not_applied != NotApplied::default()).then_some(a.pending.path),
            not_applied,
        },
        Ok(Finished::Mismatch) => Completion::Mismatch {
            index,
            pending: Box::new(discard(a)),
        },
        Err(failure) => failure.into_completion(index, discard(a).path, more),
    }
}

/// Drops what was written of a file; gives back its entry.
fn discard(a: Assembly) -> Pending {
    if let Some(temp) = a.temp {
        temp.discard(&a.pending.dir);
    }
    a.pending
}

/// How a file's last frame left it (a frame that leaves it unfinished is `None`).
enum Finished {
    Committed(NotApplied),
    Mismatch,
}

enum Failure {
    Protocol(String),
    Tree(ferry_tree::TreeError),
    /// The session ended while the frame was being worked on.
    Cancelled,
}

impl Failure {
    fn into_completion(self, index: u64, path: RelPath, more: bool) -> Completion {
        match self {
            Failure::Protocol(message) => Completion::Failed {
                index,
                path,
                message: String::new(),
                fatal: Some(EngineError::protocol(message)),
                draining: false,
            },
            Failure::Cancelled => Completion::Failed {
                index,
                path,
                message: String::new(),
                fatal: Some(EngineError::new(
                    crate::ExitCode::Interrupted,
                    "the session ended",
                )),
                draining: false,
            },
            Failure::Tree(e) => {
                let fatal = e.is_fatal().then(|| EngineError::from(&e));
                Completion::Failed {
                    index,
                    path,
                    message: e.to_string(),
                    fatal,
                    draining: more,
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

/// A piece at `offset` of `len` bytes continues the file within its size: the session
/// core checked it (`ferry_proto::session::target`) before the frame came here.
fn continues(a: &Assembly, offset: u64, len: u64) -> bool {
    offset == a.pos
        && offset
            .checked_add(len)
            .is_some_and(|end| end <= a.pending.size)
}

/// The file being written. One that can be resumed (1 MiB or more) is written under its
/// partial name `.ferry.NAME.partial`, the same for every session: a session cut in the
/// middle, even by SIGKILL, leaves one file per name that the next session resumes, never
/// a pile of randomly named temp files. A smaller one is written unnamed (`O_TMPFILE`)
/// and linked into place: a cut leaves nothing, and on ext4 a link costs less than a
/// create and a rename (30k files: 1.09-1.19 s against 1.36-1.53 s of system time). Where
/// unnamed files cannot be relied on ([`ferry_tree::Dir::create_unnamed`] says when),
/// under the partial name too.
fn temp(a: &mut Assembly) -> Result<&mut TempFile, Failure> {
    if a.temp.is_none() {
        if let InPlace::Chosen { dev, ino, why } = a.pending.in_place {
            match a.pending.dir.open_in_place(&a.pending.name, dev, ino)? {
                Some(file) => {
                    if why == Why::NoRoom {
                        tracing::warn!(
                            "{}: no room on the target for a second copy; updating it in place",
                            a.pending.path
                        );
                    }
                    a.temp = Some(file);
                    return Ok(a.temp.as_mut().expect("just set"));
                }
                None => {
                    tracing::info!(
                        "{}: changed since it was planned, or cannot be marked; writing a temp copy",
                        a.pending.path
                    );
                    a.pending.in_place = InPlace::Never;
                }
            }
        }
        let dir = &a.pending.dir;
        let unnamed = match a.pending.size < MIN_RESUME {
            true => dir.create_unnamed(&a.pending.name)?,
            false => None,
        };
        a.temp = Some(match unnamed {
            Some(file) => file,
            None if a.pending.partial_ok => dir.create_partial(&a.pending.name)?,
            None => dir.create_temp(&a.pending.name)?,
        });
    }
    Ok(a.temp.as_mut().expect("just created"))
}

/// The file being written and its running hash, both at once.
fn sinks(a: &mut Assembly) -> Result<(&mut TempFile, &mut blake3::Hasher), Failure> {
    temp(a)?;
    let file = a.temp.as_mut().expect("temp() just made it");
    Ok((file, a.hasher.get_or_insert_with(Box::default)))
}

/// The file's running hash, made on first use.
fn hasher(a: &mut Assembly) -> &mut blake3::Hasher {
    a.hasher.get_or_insert_with(Box::default)
}

/// Takes the outcome of creating or writing a temp copy: when it failed for want of
/// room and the file may be written in place, drops the copy (freeing its space) and
/// spoils the file, whose end then asks for it again whole, to be written in place; says
/// whether it did. Any other failure is returned.
fn no_room_for_a_copy(a: &mut Assembly, outcome: Result<(), Failure>) -> Result<bool, Failure> {
    let e = match outcome {
        Ok(()) => return Ok(false),
        Err(Failure::Tree(e)) if e.is_no_space() => e,
        Err(e) => return Err(e),
    };
    let copy = a.temp.as_ref().is_none_or(|t| !t.is_in_place());
    match a.pending.in_place.for_no_room() {
        Some(in_place) if copy => {
            tracing::warn!(
                "{}: no room on the target for a second copy ({e}); it will be updated in place",
                a.pending.path
            );
            if let Some(temp) = a.temp.take() {
                temp.discard(&a.pending.dir);
            }
            a.pending.in_place = in_place;
            a.spoiled = true;
            Ok(true)
        }
        _ => Err(Failure::Tree(e)),
    }
}

/// The first piece of a resumed file says whether the source accepted our prefix: it
/// starts at the prefix's end, or at 0 when the source's content differs.
fn settle_resume(a: &mut Assembly, offset: u64) -> Result<(), Failure> {
    if let Some(at) = a.resume_at.take() {
        if offset == 0 && at > 0 {
            if let Some(temp) = a.temp.as_mut() {
                temp.set_len(0)?;
            }
            a.pos = 0;
            a.hasher = None;
        }
    }
    Ok(())
}

fn step(
    a: &mut Assembly,
    message: Message,
    privileges: Privileges,
    fsync: bool,
    bounce: &mut Vec<u8>,
    cancel: &Cancel,
) -> Result<Option<Finished>, Failure> {
    match message {
        Message::Data { offset, bytes, .. } => {
            settle_resume(a, offset)?;
            debug_assert!(
                continues(a, offset, bytes.len() as u64),
                "the core checks pieces"
            );
            let len = bytes.len() as u64;
            let written = match a.spoiled {
                true => Ok(()),
                false => temp(a).and_then(|file| Ok(file.write_at(offset, &bytes)?)),
            };
            if !no_room_for_a_copy(a, written)? && !a.spoiled {
                a.overwritten.add(offset, offset + len);
                hasher(a).update(&bytes);
            }
            a.pos += len;
        }
        Message::Hole { offset, len, .. } => {
            settle_resume(a, offset)?;
            debug_assert!(continues(a, offset, len), "the core checks pieces");
            let made = match a.spoiled {
                true => Ok(()),
                false => temp(a).and_then(|file| match file.is_in_place() {
                    // The old content is there: the range must be made zeros.
                    true => Ok(file.zero_range(offset, len)?),
                    false => Ok(()),
                }),
            };
            if !no_room_for_a_copy(a, made)? && !a.spoiled {
                a.overwritten.add(offset, offset + len);
                hash_zeros_until(hasher(a), len, cancel).map_err(|_| Failure::Cancelled)?;
            }
            a.pos += len;
        }
        Message::Delta {
            offset, len, bytes, ..
        } => {
            debug_assert!(continues(a, offset, len), "the core checks pieces");
            let basis = a.basis.clone().ok_or_else(|| {
                Failure::Protocol(format!(
                    "Delta for {}, which was asked for whole",
                    a.pending.path
                ))
            })?;
            let checked = check_segment(&*basis, &bytes, len as usize)
                .map_err(|e| Failure::Protocol(format!("bad delta for {}: {e}", a.pending.path)))?;
            let made = match a.spoiled {
                true => Ok(()),
                false => temp(a).map(|_| ()),
            };
            let spoiled_now = no_room_for_a_copy(a, made)?;
            if !a.spoiled && a.temp.as_ref().is_some_and(TempFile::is_in_place) {
                let file = a.temp.as_mut().expect("in place");
                let hasher = a.hasher.get_or_insert_with(Box::default);
                let written = write_delta_in_place(
                    file,
                    &basis,
                    hasher,
                    offset,
                    &checked,
                    &mut a.overwritten,
                    bounce,
                    cancel,
                );
                match written {
                    Ok(()) => {}
                    Err(InPlaceError::Write(e)) => return Err(e.into()),
                    Err(InPlaceError::Cancelled) => return Err(Failure::Cancelled),
                    Err(InPlaceError::Basis(e)) => {
                        tracing::warn!(
                            "{}: reading it failed ({e}); it will be asked for whole",
                            a.pending.path
                        );
                        a.spoiled = true;
                    }
                    Err(InPlaceError::Overwritten { offset, len, at }) => {
                        tracing::info!(
                            "{}: its delta copies {len} bytes from byte {offset}, already \
                             overwritten in place (at byte {at}); it will be asked for whole",
                            a.pending.path
                        );
                        a.spoiled = true;
                    }
                }
            } else if !a.spoiled && !spoiled_now {
                let (file, hasher) = sinks(a)?;
                // Exactly `len` bytes: check_segment counted them. (Were it ever fewer, the
                // gap would read as zeros and fail the whole-file hash.)
                let written = write_delta(file, hasher, offset, &checked, bounce, cancel);
                match written {
                    Ok(()) => {}
                    Err(DeltaWriteError::Write(e)) => {
                        no_room_for_a_copy(a, Err(e.into()))?;
                    }
                    Err(DeltaWriteError::Cancelled) => return Err(Failure::Cancelled),
                    Err(DeltaWriteError::Basis(e)) => {
                        tracing::warn!(
                            "{}: reading its basis failed ({e}); it will be asked for whole",
                            a.pending.path
                        );
                        a.spoiled = true;
                    }
                }
            }
            a.pos += len;
        }
        Message::FileEnd { size, hash, .. } => {
            if a.resume_at.is_some() && size == 0 {
                settle_resume(a, 0)?;
            }
            a.resume_at = None;
            // The core checked that the content reached its declared size.
            debug_assert!(size == a.pending.size && a.pos == size);
            if a.spoiled || *hasher(a).finalize().as_bytes() != hash {
                return Ok(Some(Finished::Mismatch));
            }
            temp(a)?; // an empty file has had no data to make it
            let mut file = a.temp.take().expect("temp() just made it");
            let finish = (|| {
                file.set_len(size)?;
                let not_applied = file.apply_meta(&a.pending.meta, privileges)?;
                if fsync {
                    file.sync()?;
                }
                Ok::<_, ferry_tree::TreeError>(not_applied)
            })();
            match finish {
                Ok(not_applied) => {
                    file.commit(&a.pending.dir, &a.pending.name)?;
                    return Ok(Some(Finished::Committed(not_applied)));
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
    Ok(None)
}

#[cfg(test)]
mod in_place_tests;
#[cfg(test)]
mod tests;
