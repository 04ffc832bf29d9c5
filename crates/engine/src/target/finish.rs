//! The end of a session: hard links, deletions, then directory attributes (after their
//! contents, deepest first, so that writing inside a directory never disturbs its
//! mtime and a read-only mode never blocks its own filling). Deletions come earlier only
//! when the space check needs their room ([`delete_early`]).

use ferry_proto::{ChangeKind, EntryKind, Message, Meta, RelPath};
use ferry_tree::{Dir, ExistingKind, TreeError, Volume};

use super::plan::{entry_kind, LinkRequest, Planner};
use super::tally::Tally;
use crate::error::EngineError;

/// What `--delete` removed: a count of entries (contents included) and the top paths.
#[derive(Default)]
pub struct Deletions {
    pub count: u64,
    pub paths: Vec<(Vec<u8>, EntryKind)>,
}

/// Deletes the extras (when allowed), then applies the attributes of the directories
/// that waited for the end (`remaining`, deepest first).
pub fn finish(
    volume: &Volume,
    planner: Planner,
    remaining: Vec<(RelPath, Meta)>,
    delete_ok: bool,
) -> Result<(Tally, Deletions, Vec<Message>), EngineError> {
    let dry_run = planner.dry_run();
    let mut tally = planner.tally;
    let mut deletions = planner.deleted;
    if dry_run {
        return Ok((tally, deletions, Vec::new()));
    }
    if delete_ok {
        for (dir_path, name) in &planner.extras {
            delete(volume, dir_path, name, &mut deletions)?;
        }
    }
    let errors = finish_dirs(volume, &remaining, &mut tally)?;
    Ok((tally, deletions, errors))
}

/// Deletes the extras collected so far, now rather than at the end: the space check
/// found the session fits only with their room (`SpaceVerdict::DeleteFirst`). Temp and
/// partial files of earlier runs stay for the end: this session's own files may be
/// among those names until every file is in place.
pub fn delete_early(volume: &Volume, planner: &mut Planner) -> Result<(), EngineError> {
    let extras = std::mem::take(&mut planner.extras);
    for (dir_path, name) in extras {
        if Dir::is_temp_name(&name) || ferry_tree::is_partial_name(&name) {
            planner.extras.push((dir_path, name));
            continue;
        }
        delete(volume, &dir_path, &name, &mut planner.deleted)?;
    }
    Ok(())
}

/// Removes one extra and records it.
fn delete(
    volume: &Volume,
    dir_path: &RelPath,
    name: &[u8],
    deletions: &mut Deletions,
) -> Result<(), EngineError> {
    let dir = volume.open_dir(dir_path)?;
    let entry = dir.stat(name)?.map(|e| entry_kind(e.kind));
    let removed = dir.remove(name)?;
    if removed > 0 {
        deletions.count += removed;
        let path = dir_path
            .join(name, &ferry_proto::Limits::default())
            .map_err(|e| EngineError::file_io(e.to_string()))?;
        deletions
            .paths
            .push((path.into_bytes(), entry.unwrap_or(EntryKind::File)));
    }
    Ok(())
}

/// Applies each directory's own attributes (mtime last, on its fd). Per-directory
/// failures come back as `FileError` messages; a failing volume is fatal.
pub fn finish_dirs(
    volume: &Volume,
    dirs: &[(RelPath, Meta)],
    tally: &mut Tally,
) -> Result<Vec<Message>, EngineError> {
    let mut errors = Vec::new();
    for (path, meta) in dirs {
        let result = volume.open_dir(path).and_then(|dir| dir.set_own_meta(meta));
        match result {
            Ok(not_applied) => tally.not_applied(path, not_applied),
            Err(e) if e.is_not_found() => {}
            Err(e) if e.is_fatal() => return Err(e.into()),
            Err(e) => {
                tally.file_errors += 1;
                errors.push(Message::FileError {
                    path: path.as_bytes().to_vec(),
                    message: format!("directory attributes not applied: {e}"),
                });
            }
        }
    }
    Ok(errors)
}

/// Why a hard link was not made.
#[derive(Debug)]
pub enum LinkError {
    /// The leader's path is not a regular file: the source broke the protocol (only
    /// regular files are listed as leaders).
    NotAFile(String),
    Tree(TreeError),
}

impl From<TreeError> for LinkError {
    fn from(e: TreeError) -> Self {
        LinkError::Tree(e)
    }
}

/// Creates one hard link to its leader. `Ok(None)` if it is already there.
pub fn make_link(
    volume: &Volume,
    link: &LinkRequest,
    dry_run: bool,
) -> Result<Option<ChangeKind>, LinkError> {
    let (leader_dir_path, leader_name) =
        link.leader_path
            .split_last()
            .ok_or_else(|| TreeError::Escape {
                path: "hard link to the volume root".into(),
            })?;
    let leader_dir = if link.leader_dir_new {
        None
    } else {
        match volume.open_dir(&leader_dir_path) {
            Ok(dir) => Some(dir),
            Err(e) if dry_run && e.is_not_found() => None,
            Err(e) => return Err(e.into()),
        }
    };
    let mut leader = match &leader_dir {
        Some(dir) => dir.stat(leader_name)?,
        None => None,
    };
    if leader
        .as_ref()
        .is_some_and(|l| l.kind != ExistingKind::File)
    {
        // A dry run left the leader's old entry (a directory, say) where the run would
        // have put the leader file.
        if !dry_run {
            return Err(LinkError::NotAFile(link.leader_path.to_string()));
        }
        leader = None;
    }
    let existing = match &link.dir {
        Some(dir) => dir.stat(&link.name)?,
        None => None,
    };
    if let (Some(leader), Some(existing)) = (&leader, &existing) {
        if leader.dev == existing.dev && leader.ino == existing.ino {
            return Ok(None);
        }
    }
    let change = if existing.is_some() {
        ChangeKind::Updated
    } else {
        ChangeKind::Created
    };
    if dry_run {
        return Ok(Some(change));
    }
    let (Some(dir), Some(leader_dir)) = (&link.dir, &leader_dir) else {
        return Err(LinkError::Tree(TreeError::Escape {
            path: link.path.to_string(),
        }));
    };
    dir.hard_link(&link.name, leader_dir, leader_name)?;
    Ok(Some(change))
}
