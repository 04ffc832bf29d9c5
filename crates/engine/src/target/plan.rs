//! Plans each listing frame against the target tree and carries out everything that
//! needs no file data: directories, symlinks, special files, attribute fixes. Files to
//! fetch come back as [`Want`]s, hard links as [`LinkRequest`]s (their leader may still
//! be on its way). Runs on a blocking thread, one frame at a time.
//!
//! Frames come checked by the session core (`ferry_proto::session::target`): indices,
//! the listing's order, paths, the filter and hard-link leaders are its rules, not this
//! module's. Here is what only the volume can tell: what exists, what must change.

use std::collections::HashSet;
use std::sync::Arc;

use ferry_delta::MIN_DELTA_BASIS;
use ferry_proto::session::target::{FrameSpace, ListedEntry, ListedFrame};
use ferry_proto::{
    ChangeKind, Content, Entry, EntryKind, Filter, Limits, Message, Meta, RelPath, SessionOptions,
};
use ferry_tree::{Dir, Existing, ExistingKind, NotApplied, TempFile, TreeError, Volume};

use super::decide::{decide, Action, Probe};
use super::finish::Deletions;
use super::in_place::{self, InPlace};
use super::space::space_taken;
use super::tally::Tally;
use crate::error::EngineError;
use probe::DirProbe;

mod extras;
mod probe;

/// A file the target wants from the source.
#[derive(Clone)]
pub struct Pending {
    pub dir: Arc<Dir>,
    pub name: Vec<u8>,
    pub path: RelPath,
    pub meta: Meta,
    pub size: u64,
    /// Whether it may be received under its partial name (`.ferry.NAME.partial`), which
    /// a later session resumes. Not when the source lists that name itself in the same
    /// directory, or could still list it (see [`partial_allowed`]).
    pub partial_ok: bool,
    /// Whether it is written into the existing file instead of a temp copy.
    pub in_place: InPlace,
}

pub struct Want {
    pub index: u64,
    pub pending: Pending,
    /// The current file at the target, to diff against.
    pub basis: Option<std::fs::File>,
    /// What an interrupted session received of this file, and its length: resumed
    /// rather than diffed (checking a prefix costs a hash, a delta a search).
    pub partial: Option<(TempFile, u64)>,
}

/// Files at least this large are received into a partial file that survives an
/// interrupted session, and resumed from it.
pub const MIN_RESUME: u64 = 1024 * 1024;

/// A hard link to create once its leader is in place.
pub struct LinkRequest {
    pub index: u64,
    pub dir: Option<Arc<Dir>>,
    pub name: Vec<u8>,
    pub path: RelPath,
    pub leader_path: RelPath,
    /// Dry run: the leader's directory is one the run would create, so it is not opened
    /// (what is at its path now is not it).
    pub leader_dir_new: bool,
}

/// What planning one frame produced.
#[derive(Default)]
pub struct Planned {
    pub wants: Vec<Want>,
    pub links: Vec<LinkRequest>,
    /// Change and FileError messages for the source.
    pub messages: Vec<Message>,
    /// The frame completed its directory's listing, and entries inside it are to be
    /// deleted at the end.
    pub has_extras: bool,
    /// Files refused before anything was asked for (reported in `messages`): hard
    /// links to them fail too.
    pub refused: Vec<u64>,
    /// What the frame's writes take of the volume, and its directory's extras hold.
    pub space: FrameSpace,
}

/// The directory whose listing is in progress.
struct Current {
    path: RelPath,
    /// `None` only in a dry run, for a directory that does not exist yet.
    dir: Option<Arc<Dir>>,
    /// The names listed in it so far.
    names: HashSet<Vec<u8>>,
}

/// Planning state of a session.
pub struct Planner {
    volume: Arc<Volume>,
    options: SessionOptions,
    /// The source's rules: what they exclude is kept from `--delete` unless
    /// `--delete-excluded`.
    filter: Filter,
    limits: Limits,
    current: Option<Current>,
    /// Dry run: directories the run would create, or put in place of a file or symlink.
    /// A dry run changes nothing, so what is at their paths is not them: they are never
    /// opened, and everything in them is new.
    dry_new_dirs: HashSet<RelPath>,
    /// Target entries the source does not have: removed at the end with `--delete`
    /// (or early, when the space check needs their room: see `finish::delete_early`).
    pub extras: Vec<(RelPath, Vec<u8>)>,
    /// Extras already removed early, reported with the rest at the end.
    pub deleted: Deletions,
    pub tally: Tally,
    /// The target filesystem's size: a file declared larger cannot be written, and is
    /// refused before a byte of it is hashed or written (see [`Planner::too_large`]).
    capacity: u64,
}

impl Planner {
    pub fn new(
        volume: Arc<Volume>,
        options: SessionOptions,
        filter: Filter,
        limits: Limits,
    ) -> Planner {
        let capacity = volume.capacity().unwrap_or_else(|e| {
            tracing::warn!(
                "cannot read the target filesystem's size ({e}); file sizes are not bounded by it"
            );
            u64::MAX
        });
        Planner {
            capacity,
            volume,
            options,
            filter,
            limits,
            current: None,
            dry_new_dirs: HashSet::new(),
            extras: Vec::new(),
            deleted: Deletions::default(),
            tally: Tally::default(),
        }
    }

    pub fn dry_run(&self) -> bool {
        self.options.dry_run
    }

    /// Plans one checked `List` frame.
    pub fn plan(&mut self, frame: ListedFrame) -> Result<Planned, EngineError> {
        if frame.starts_dir {
            self.enter(&frame.dir)?;
        }
        let mut planned = Planned::default();
        for entry in frame.entries {
            self.plan_entry(entry, &mut planned)?;
        }
        if frame.dir_done {
            if frame.dir_complete {
                planned.has_extras = self.collect_extras(&mut planned)?;
            }
            self.current = None;
        }
        Ok(planned)
    }

    /// Opens the directory a frame starts to list.
    fn enter(&mut self, path: &RelPath) -> Result<(), EngineError> {
        let dir = if self.dry_new_dirs.contains(path) {
            None
        } else {
            match self.volume.open_dir(path) {
                Ok(dir) => Some(Arc::new(dir)),
                Err(e) if self.options.dry_run && e.is_not_found() => None,
                Err(e) => return Err(e.into()),
            }
        };
        self.current = Some(Current {
            path: path.clone(),
            dir,
            names: HashSet::new(),
        });
        Ok(())
    }

    fn plan_entry(
        &mut self,
        listed: ListedEntry,
        planned: &mut Planned,
    ) -> Result<(), EngineError> {
        let ListedEntry {
            index,
            path,
            entry,
            leader_path,
        } = listed;
        let current = self.current.as_mut().expect("entered");
        current.names.insert(entry.name.clone());
        // Only files are received into temp files (a name and a lookup per file, not per
        // entry).
        let partial_ok = matches!(entry.content, Content::File { .. })
            && partial_allowed(&entry.name, &current.names);
        let dir = current.dir.clone();
        if self.too_large(index, &entry.content, &path, planned) {
            return Ok(());
        }
        if let Content::HardLink { .. } = entry.content {
            let leader_path = leader_path.expect("the core checks a hard link's leader path");
            let leader_dir_new = leader_path
                .split_last()
                .is_some_and(|(parent, _)| self.dry_new_dirs.contains(&parent));
            planned.links.push(LinkRequest {
                index,
                dir,
                name: entry.name,
                path,
                leader_path,
                leader_dir_new,
            });
            return Ok(());
        }
        let existing = match &dir {
            Some(dir) => dir.stat(&entry.name)?,
            None => None,
        };
        let root = self.volume.privileges().applies_owners();
        let action = {
            let mut probe = DirProbe {
                dir: dir.as_deref(),
                name: &entry.name,
            };
            decide(
                &entry.content,
                &entry.meta,
                existing.as_ref(),
                root,
                MIN_DELTA_BASIS,
                &mut probe,
            )
        };
        let action = in_place_unfinished(action, existing.as_ref(), dir.as_deref(), &entry, &path);
        if let Content::Dir = entry.content {
            if self.options.dry_run && matches!(action, Action::Create) {
                self.dry_new_dirs.insert(path.clone());
            }
        }
        planned
            .space
            .writes
            .extend(space_taken(&entry.content, action, existing.as_ref()));
        let change = match action {
            Action::Keep => return Ok(()),
            Action::FixMeta => ChangeKind::MetaUpdated,
            Action::Create if existing.is_some() => ChangeKind::Updated,
            Action::Create => ChangeKind::Created,
            Action::Update { .. } => ChangeKind::Updated,
        };
        let kind = entry.content.entry_kind();
        if self.options.dry_run || self.options.itemize {
            // Itemized when decided: a change that then fails also gets a FileError.
            planned.messages.push(Message::Change {
                path: path.as_bytes().to_vec(),
                kind: change,
                entry: kind,
            });
        }
        if self.options.dry_run {
            return Ok(());
        }
        let dir = dir.expect("directories exist outside dry runs");
        // A file whose content cannot even be asked for failed as a leader too: a hard
        // link to it must not be made to whatever old file is at its path.
        let content_failed =
            matches!(entry.content, Content::File { .. }) && action != Action::FixMeta;
        let result = self.carry_out(
            index,
            &dir,
            &entry,
            &path,
            action,
            existing.as_ref(),
            partial_ok,
            planned,
        );
        match result {
            Ok(()) => Ok(()),
            Err(e) if e.is_fatal() => Err(e.into()),
            Err(e) => {
                self.tally.file_errors += 1;
                if content_failed {
                    planned.refused.push(index);
                }
                planned.messages.push(Message::FileError {
                    path: path.into_bytes(),
                    message: e.to_string(),
                });
                Ok(())
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn carry_out(
        &mut self,
        index: u64,
        dir: &Arc<Dir>,
        entry: &Entry,
        path: &RelPath,
        action: Action,
        existing: Option<&Existing>,
        partial_ok: bool,
        planned: &mut Planned,
    ) -> Result<(), TreeError> {
        let name = &entry.name[..];
        let meta = &entry.meta;
        if action == Action::FixMeta {
            let not_applied = match entry.content {
                Content::Symlink { .. } => dir.set_link_meta(name, meta)?,
                Content::Dir => NotApplied::default(),
                _ => dir.set_meta(name, meta)?,
            };
            self.tally.meta_updated += 1;
            self.tally.not_applied(path, not_applied);
            return Ok(());
        }
        match &entry.content {
            Content::File { size, .. } => {
                let in_place = match action {
                    Action::Update { basis: true } => self.in_place(dir, entry, path, existing),
                    _ => InPlace::Never,
                };
                let chosen = matches!(in_place, InPlace::Chosen { .. });
                let partial = match *size >= MIN_RESUME && partial_ok && !chosen {
                    true => dir
                        .open_partial(name)?
                        .filter(|(_, len)| *len >= MIN_RESUME && len <= size),
                    false => None,
                };
                if let (Some((_, len)), Some(write)) = (&partial, planned.space.writes.last_mut()) {
                    // What an interrupted run received is on the volume already, in the
                    // inode that becomes the file: only the rest is new (this entry's
                    // write is the last one counted).
                    write.size = size.saturating_sub(*len);
                    write.inode = false;
                }
                let basis = match action {
                    Action::Update { basis: true } if partial.is_none() => dir.open_basis(name)?,
                    _ => None,
                };
                // In place only into the very inode the delta is computed against.
                let in_place = match (&basis, in_place) {
                    (
                        Some(file),
                        InPlace::Chosen { dev, ino, .. } | InPlace::Allowed { dev, ino },
                    ) if same_inode(file, dev, ino) => in_place,
                    _ => InPlace::Never,
                };
                if let (InPlace::Chosen { .. }, Some(write)) =
                    (in_place, planned.space.writes.last_mut())
                {
                    // Into the old file itself: the space check counts only its growth
                    // (this entry's write is the last one counted).
                    write.in_place = true;
                }
                planned.wants.push(Want {
                    index,
                    pending: Pending {
                        dir: dir.clone(),
                        name: name.to_vec(),
                        path: path.clone(),
                        meta: meta.clone(),
                        size: *size,
                        partial_ok,
                        in_place,
                    },
                    basis,
                    partial,
                });
                return Ok(());
            }
            Content::Dir => {
                dir.ensure_dir(name)?;
            }
            Content::Symlink { target } => {
                let not_applied = dir.symlink(name, target, meta)?;
                self.tally.not_applied(path, not_applied);
            }
            Content::Special { kind, rdev } => {
                let not_applied = dir.special(name, *kind, *rdev, meta)?;
                self.tally.not_applied(path, not_applied);
                if not_applied.special {
                    return Ok(());
                }
            }
            Content::HardLink { .. } => unreachable!("hard links are planned as link requests"),
        }
        let _ = existing;
        self.tally.entries_created += 1;
        Ok(())
    }

    /// Whether a changed file that has a basis is written in place ([`super::in_place`]).
    fn in_place(
        &self,
        dir: &Dir,
        entry: &Entry,
        path: &RelPath,
        existing: Option<&Existing>,
    ) -> InPlace {
        let (Some(existing), Content::File { size, .. }) = (existing, &entry.content) else {
            return InPlace::Never;
        };
        let root = self.volume.privileges().applies_owners();
        let xattrs_differ = !entry.meta.xattrs.is_empty()
            && DirProbe {
                dir: Some(dir),
                name: &entry.name,
            }
            .xattrs_differ(&entry.meta);
        if let Some(why) = in_place::refused(existing, &entry.meta, root, xattrs_differ) {
            if self.options.inplace && existing.size >= MIN_DELTA_BASIS {
                tracing::info!("{path}: not updated in place: {why}; writing a temp copy");
            }
            return InPlace::Never;
        }
        // Free space, asked only for files that may go in place.
        let room = dir.room().unwrap_or(u64::MAX);
        in_place::choose(
            self.options.inplace,
            existing.dev,
            existing.ino,
            *size,
            room,
        )
    }

    /// Refuses a file declared larger than the target filesystem: it could never be
    /// written, and its declared size is work a peer would have the target do (hashing
    /// the zeros of a hole of 2^60 bytes takes years). The file is wanted nowhere, so the
    /// source sends none of it; the run goes on and ends with the file counted as an
    /// error.
    fn too_large(
        &mut self,
        index: u64,
        content: &Content,
        path: &RelPath,
        planned: &mut Planned,
    ) -> bool {
        let Content::File { size, .. } = *content else {
            return false;
        };
        if size <= self.capacity {
            return false;
        }
        self.tally.file_errors += 1;
        planned.refused.push(index);
        planned.messages.push(Message::FileError {
            path: path.as_bytes().to_vec(),
            message: format!(
                "not transferred: its size of {size} bytes is more than the target \
                 filesystem's whole size of {} bytes; it needs a larger target volume",
                self.capacity
            ),
        });
        true
    }
}

/// A file that an interrupted in-place update left marked is changed, whatever its size
/// and mtime say: asked for as a delta against what it holds.
fn in_place_unfinished(
    action: Action,
    existing: Option<&Existing>,
    dir: Option<&Dir>,
    entry: &Entry,
    path: &RelPath,
) -> Action {
    let (Some(existing), Some(dir)) = (existing, dir) else {
        return action;
    };
    let file = matches!(entry.content, Content::File { .. }) && existing.kind == ExistingKind::File;
    let kept = matches!(action, Action::Keep | Action::FixMeta);
    // Files written in place are at least this large: smaller ones cost no lookup.
    if file
        && kept
        && existing.size >= MIN_DELTA_BASIS
        && dir.in_place_marked(&entry.name, existing.dev, existing.ino)
    {
        tracing::warn!(
            "{path}: an earlier in-place update of it did not finish; checking it whole"
        );
        return Action::Update { basis: true };
    }
    action
}

fn same_inode(file: &std::fs::File, dev: u64, ino: u64) -> bool {
    use std::os::unix::fs::MetadataExt;
    file.metadata()
        .is_ok_and(|m| m.dev() == dev && m.ino() == ino && m.nlink() == 1)
}

/// Whether file `name` may use its partial name: not if the source listed that name in the
/// same directory (`listed`: the names so far), nor if it sorts after `name` and so could
/// still be listed (a source's own `.ferry.big.partial` is copied like any file, and
/// Ferry then receives `big` under a fresh temp name, not resumable). Partial names of
/// most names sort before them (`.` is below letters and digits).
pub fn partial_allowed(name: &[u8], listed: &HashSet<Vec<u8>>) -> bool {
    let partial = ferry_tree::partial_name(name);
    partial.as_slice() < name && !listed.contains(&partial)
}

/// How a report names what is on the target.
pub fn entry_kind(kind: ExistingKind) -> EntryKind {
    match kind {
        ExistingKind::File => EntryKind::File,
        ExistingKind::Dir => EntryKind::Dir,
        ExistingKind::Symlink => EntryKind::Symlink,
        ExistingKind::Special(special) => EntryKind::Special(special),
    }
}
