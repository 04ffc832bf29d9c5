//! What the target has that the source did not list, found as each directory's listing
//! is finished: with `--delete`, recorded to delete at the end (or reported, in a dry
//! run), its space counted for the space check. Ferry's own debris (temp and partial
//! files an interrupted run left) goes with them, last.
//!
//! Must not import the session or the apply workers: the planner's own work.

use ferry_proto::{ChangeKind, EntryKind, Message};
use ferry_tree::{Dir, ExistingKind};

use super::{entry_kind, Planned, Planner};
use crate::error::EngineError;

impl Planner {
    /// Records target entries of the finished directory that the source does not have;
    /// says whether there were any to delete.
    pub(super) fn collect_extras(&mut self, planned: &mut Planned) -> Result<bool, EngineError> {
        if !self.options.delete {
            return Ok(false);
        }
        let current = self.current.as_ref().expect("entered");
        let Some(dir) = &current.dir else {
            return Ok(false);
        };
        let before = self.extras.len();
        for name in dir.names()? {
            if current.names.contains(&name) {
                continue;
            }
            if !self.options.delete_excluded && !self.filter.is_empty() {
                let path = current
                    .path
                    .join(&name, &self.limits)
                    .map_err(|e| EngineError::file_io(e.to_string()))?;
                let is_dir = matches!(dir.stat(&name), Ok(Some(e)) if e.kind == ExistingKind::Dir);
                if self.filter.excluded(path.as_bytes(), is_dir) {
                    continue;
                }
            }
            // Temp files left by an interrupted earlier run are removed with the other
            // extras at the end, when every file of this session is in place (so none of
            // this session's own temp files is left to catch). A dry run does not list
            // them: they are Ferry's debris, not the user's data.
            let debris = Dir::is_temp_name(&name) || ferry_tree::is_partial_name(&name);
            if debris && self.options.dry_run {
                continue;
            }
            // What deleting it frees, for the space check (debris goes at the very end,
            // so it frees nothing the writes could use).
            if !debris && !self.options.no_space_check {
                planned
                    .space
                    .extras
                    .add(dir.usage(&name).unwrap_or_default());
            }
            if self.options.dry_run {
                let kind = match dir.stat(&name) {
                    Ok(Some(e)) => entry_kind(e.kind),
                    _ => EntryKind::File,
                };
                let path = current
                    .path
                    .join(&name, &self.limits)
                    .map_err(|e| EngineError::file_io(e.to_string()))?;
                planned.messages.push(Message::Change {
                    path: path.into_bytes(),
                    kind: ChangeKind::Deleted,
                    entry: kind,
                });
            } else {
                self.extras.push((current.path.clone(), name));
            }
        }
        Ok(self.extras.len() > before)
    }
}
