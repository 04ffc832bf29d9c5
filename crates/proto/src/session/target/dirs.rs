//! When a directory's own attributes can be applied: after its listing is complete and
//! every entry inside it is in place (so writing inside it no longer moves its mtime),
//! children before parents. Tracking this per directory keeps the target's memory
//! proportional to the directories in flight, not to the tree.
//!
//! A directory with entries to delete waits for the end of the session (deletions run
//! only once the whole listing proved the source readable) and is finished then.

use std::collections::HashMap;

use crate::model::Meta;
use crate::path::RelPath;

struct DirState {
    meta: Meta,
    /// Entries inside not yet in place, including subdirectories not yet finished.
    open: u64,
    listed: bool,
    has_extras: bool,
}

/// What one directory in flight costs, about: its path, its xattrs and a fixed part for
/// the map's entry and the rest of its attributes.
fn held_by(path: &RelPath, meta: &Meta) -> usize {
    let xattrs: usize = meta
        .xattrs
        .iter()
        .map(|x| x.name.len() + x.value.len() + 48)
        .sum();
    path.as_bytes().len() + xattrs + 128
}

/// Directories whose attributes are still to be applied.
#[derive(Default)]
pub struct DirTracker {
    dirs: HashMap<RelPath, DirState>,
    /// What `dirs` holds, about, in bytes (see [`held_by`]).
    bytes: usize,
    /// Finished except for deletions inside them, in the order they became ready.
    deferred: Vec<(RelPath, Meta)>,
}

impl DirTracker {
    /// A directory was listed as an entry (or is the root): it stays open until its
    /// own listing and contents are done, and keeps its parent open meanwhile.
    pub fn announce(&mut self, path: RelPath, meta: Meta) {
        if let Some((parent, _)) = path.split_last() {
            self.open(&parent);
        }
        self.bytes += held_by(&path, &meta);
        self.dirs.insert(
            path,
            DirState {
                meta,
                open: 0,
                listed: false,
                has_extras: false,
            },
        );
    }

    /// An entry inside `dir` is on its way.
    pub fn open(&mut self, dir: &RelPath) {
        if let Some(state) = self.dirs.get_mut(dir) {
            state.open += 1;
        }
    }

    /// An entry inside `dir` is in place (or failed). Returns the directories now ready
    /// to finish, children first.
    pub fn close(&mut self, dir: &RelPath) -> Vec<(RelPath, Meta)> {
        if let Some(state) = self.dirs.get_mut(dir) {
            state.open = state.open.saturating_sub(1);
        }
        self.ready_from(dir.clone())
    }

    /// The listing of `dir` is complete; `has_extras` if entries inside it are to be
    /// deleted at the end.
    pub fn listed(&mut self, dir: &RelPath, has_extras: bool) -> Vec<(RelPath, Meta)> {
        if let Some(state) = self.dirs.get_mut(dir) {
            state.listed = true;
            state.has_extras = has_extras;
        }
        self.ready_from(dir.clone())
    }

    /// Finishes `dir` if it is ready, then its parent, and so on up.
    fn ready_from(&mut self, mut dir: RelPath) -> Vec<(RelPath, Meta)> {
        let mut ready = Vec::new();
        loop {
            let done = matches!(self.dirs.get(&dir), Some(s) if s.listed && s.open == 0);
            if !done {
                return ready;
            }
            let state = self.dirs.remove(&dir).expect("checked above");
            self.bytes = self.bytes.saturating_sub(held_by(&dir, &state.meta));
            let parent = dir.split_last().map(|(parent, _)| parent);
            if state.has_extras {
                self.deferred.push((dir, state.meta));
            } else {
                ready.push((dir, state.meta));
            }
            match parent {
                Some(parent) => {
                    if let Some(p) = self.dirs.get_mut(&parent) {
                        p.open = p.open.saturating_sub(1);
                    }
                    dir = parent;
                }
                None => return ready,
            }
        }
    }

    /// Directories in flight: announced and not yet finished.
    pub fn len(&self) -> usize {
        self.dirs.len()
    }

    /// About how many bytes the directories in flight hold (paths and attributes).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Everything not finished yet, deepest first: the deferred ones and any left open
    /// (a session that ended with entries unresolved).
    pub fn into_remaining(self) -> Vec<(RelPath, Meta)> {
        let mut rest = self.deferred;
        rest.extend(self.dirs.into_iter().map(|(p, s)| (p, s.meta)));
        rest.sort_by_key(|(path, _)| std::cmp::Reverse(path.components().count()));
        rest
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::Limits;

    fn p(s: &str) -> RelPath {
        RelPath::new(s.as_bytes().to_vec(), &Limits::default()).unwrap()
    }

    fn names(v: &[(RelPath, Meta)]) -> Vec<String> {
        v.iter().map(|(p, _)| p.to_string()).collect()
    }

    #[test]
    fn a_directory_finishes_after_its_listing_and_contents_children_first() {
        let mut t = DirTracker::default();
        t.announce(RelPath::root(), Meta::default());
        t.announce(p("a"), Meta::default());
        t.open(&RelPath::root()); // a file in the root, pending
        assert!(t.listed(&RelPath::root(), false).is_empty());
        t.open(&p("a"));
        assert!(
            t.listed(&p("a"), false).is_empty(),
            "a still has a pending file"
        );
        assert_eq!(names(&t.close(&p("a"))), vec!["a"]);
        assert_eq!(names(&t.close(&RelPath::root())), vec!["."]);
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn a_parent_waits_for_its_subdirectories() {
        let mut t = DirTracker::default();
        t.announce(RelPath::root(), Meta::default());
        t.announce(p("a"), Meta::default());
        t.announce(p("a/b"), Meta::default());
        assert!(t.listed(&RelPath::root(), false).is_empty());
        assert!(t.listed(&p("a"), false).is_empty());
        assert_eq!(names(&t.listed(&p("a/b"), false)), vec!["a/b", "a", "."]);
    }

    #[test]
    fn bytes_held_count_paths_and_xattrs_until_finished() {
        let mut t = DirTracker::default();
        t.announce(RelPath::root(), Meta::default());
        let big = Meta {
            xattrs: vec![crate::model::Xattr {
                name: b"user.big".to_vec(),
                value: vec![0; 60_000],
            }],
            ..Meta::default()
        };
        let empty = t.bytes();
        t.announce(p("a"), big);
        assert!(t.bytes() >= empty + 60_000, "{}", t.bytes());
        assert!(t.listed(&RelPath::root(), false).is_empty());
        assert_eq!(names(&t.listed(&p("a"), false)), vec!["a", "."]);
        assert_eq!(t.bytes(), 0);
    }

    #[test]
    fn directories_with_deletions_wait_for_the_end() {
        let mut t = DirTracker::default();
        t.announce(RelPath::root(), Meta::default());
        t.announce(p("a"), Meta::default());
        assert!(t.listed(&RelPath::root(), true).is_empty());
        assert_eq!(names(&t.listed(&p("a"), false)), vec!["a"]);
        assert_eq!(t.len(), 0);
        assert_eq!(names(&t.into_remaining()), vec!["."]);
    }
}
