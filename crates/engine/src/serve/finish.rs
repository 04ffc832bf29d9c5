//! The end of a session: hard links, deletions, then directory attributes (after their
//! contents, deepest first, so that writing inside a directory never disturbs its
//! mtime and a read-only mode never blocks its own filling).

use ferry_proto::ChangeKind;
use ferry_tree::{ExistingKind, TreeError, Volume};

use super::plan::{LinkRequest, Planner};
use super::Tally;
use crate::error::EngineError;

/// What `--delete` removed: a count of entries (contents included) and the top paths.
#[derive(Default)]
pub struct Deletions {
    pub count: u64,
    pub paths: Vec<(Vec<u8>, bool)>,
}

/// Deletes the extras (when allowed) and applies directory attributes.
pub fn finish(
    volume: &Volume,
    planner: Planner,
    delete_ok: bool,
) -> Result<(Tally, Deletions), EngineError> {
    let dry_run = planner.dry_run();
    let mut tally = planner.tally;
    let mut deletions = Deletions::default();
    if dry_run {
        return Ok((tally, deletions));
    }
    if delete_ok {
        for (dir_path, name) in &planner.extras {
            let dir = volume.open_dir(dir_path)?;
            let is_dir = matches!(dir.stat(name)?, Some(e) if e.kind == ExistingKind::Dir);
            let removed = dir.remove(name)?;
            if removed > 0 {
                deletions.count += removed;
                let path = dir_path
                    .join(name, &ferry_proto::Limits::default())
                    .map_err(|e| EngineError::file_io(e.to_string()))?;
                deletions.paths.push((path.into_bytes(), is_dir));
            }
        }
    }
    for (path, meta) in planner.dirs.iter().rev() {
        let dir = match volume.open_dir(path) {
            Ok(dir) => dir,
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e.into()),
        };
        tally.not_applied(dir.set_own_meta(meta)?);
    }
    Ok((tally, deletions))
}

/// Creates one hard link to its leader. `Ok(None)` if it is already there.
pub fn make_link(
    volume: &Volume,
    link: &LinkRequest,
    dry_run: bool,
) -> Result<Option<ChangeKind>, TreeError> {
    let (leader_dir_path, leader_name) =
        link.leader_path
            .split_last()
            .ok_or_else(|| TreeError::Escape {
                path: "hard link to the volume root".into(),
            })?;
    let leader_dir = match volume.open_dir(&leader_dir_path) {
        Ok(dir) => Some(dir),
        Err(e) if dry_run && e.is_not_found() => None,
        Err(e) => return Err(e),
    };
    let leader = match &leader_dir {
        Some(dir) => dir.stat(leader_name)?,
        None => None,
    };
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
        return Err(TreeError::Escape {
            path: link.path.to_string(),
        });
    };
    dir.hard_link(&link.name, leader_dir, leader_name)?;
    Ok(Some(change))
}
