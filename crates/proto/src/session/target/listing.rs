//! The rules of a listing, as the target checks them frame by frame: where each frame
//! starts, which directory it may list, that names come strictly sorted and each path is
//! valid, that the source does not list what the session's filter excludes, and that a
//! hard link names, as its leader, the regular file listed earlier at that path.
//!
//! What passes comes out as a [`ListedFrame`] of checked paths for the driver to plan
//! against its volume. Nothing here looks at a filesystem.

use std::collections::HashSet;

use super::leaders::Leaders;
use crate::filter::Filter;
use crate::limits::Limits;
use crate::model::{Content, Entry};
use crate::path::{escape, RelPath};
use crate::session::SessionError;

/// One `List` frame whose every rule held: what the driver plans.
#[derive(Debug)]
pub struct ListedFrame {
    /// The directory listed.
    pub dir: RelPath,
    /// Whether this frame starts that directory's listing (the driver opens it).
    pub starts_dir: bool,
    /// Index of the first entry.
    pub first: u64,
    pub entries: Vec<ListedEntry>,
    /// The directory's listing ends with this frame.
    pub dir_done: bool,
    /// The source read all of the directory (else nothing in it may be deleted).
    pub dir_complete: bool,
}

/// One entry of a checked frame.
#[derive(Debug)]
pub struct ListedEntry {
    pub index: u64,
    /// The entry's checked path inside the volume.
    pub path: RelPath,
    pub entry: Entry,
    /// For a hard link: its leader's checked path, the regular file listed as that entry.
    pub leader_path: Option<RelPath>,
}

/// The directory whose listing is in progress.
struct Current {
    path: RelPath,
    /// The last name listed in it: names come in strictly increasing byte order.
    last: Option<Vec<u8>>,
}

/// The listing's rules and what they need to remember.
pub(super) struct Listing {
    limits: Limits,
    filter: Filter,
    /// Index the next frame must start at.
    pub(super) next: u64,
    root_seen: bool,
    current: Option<Current>,
    /// Directories listed as entries whose own listing has not come yet.
    expected: HashSet<RelPath>,
    leaders: Leaders,
    /// Directories the source could not read completely.
    pub(super) incomplete_dirs: u64,
}

impl Listing {
    pub(super) fn new(limits: Limits, filter: Filter, leader_key: std::hash::RandomState) -> Self {
        Listing {
            limits,
            filter,
            next: 0,
            root_seen: false,
            current: None,
            expected: HashSet::from([RelPath::root()]),
            leaders: Leaders::new(leader_key),
            incomplete_dirs: 0,
        }
    }

    /// `Root` may come once, before the listing.
    pub(super) fn root(&mut self) -> Result<(), SessionError> {
        if self.root_seen || !self.expected.contains(&RelPath::root()) || self.next > 0 {
            return Err(SessionError::protocol(
                "Root sent twice or after the listing started",
            ));
        }
        self.root_seen = true;
        Ok(())
    }

    /// Whether every announced directory has been listed completely.
    pub(super) fn finished(&self) -> bool {
        self.current.is_none() && self.expected.is_empty()
    }

    /// Checks one `List` frame; `acked` is the watermark of the last `Ack` sent.
    pub(super) fn frame(
        &mut self,
        dir: Vec<u8>,
        first: u64,
        entries: Vec<Entry>,
        dir_done: bool,
        dir_complete: bool,
        acked: u64,
    ) -> Result<ListedFrame, SessionError> {
        if first != self.next {
            return Err(SessionError::protocol(format!(
                "listing starts at entry {first}, expected {}",
                self.next
            )));
        }
        let count = entries.len() as u64;
        let window = self.limits.window;
        if first + count > acked.saturating_add(window) {
            return Err(SessionError::protocol(format!(
                "List of entries {first}..{} goes past the listing window: the last Ack was \
                 through {acked}, and a source may list at most {window} entries past it \
                 (below {})",
                first + count,
                acked.saturating_add(window),
            )));
        }
        let dir =
            RelPath::new(dir, &self.limits).map_err(|e| SessionError::protocol(e.to_string()))?;
        let starts_dir = self.enter(&dir)?;
        let mut listed = Vec::with_capacity(entries.len());
        for (k, entry) in entries.into_iter().enumerate() {
            listed.push(self.entry(first + k as u64, entry)?);
        }
        if dir_done {
            self.current = None;
            if !dir_complete {
                self.incomplete_dirs += 1;
            }
        }
        self.next = first + count;
        Ok(ListedFrame {
            dir,
            starts_dir,
            first,
            entries: listed,
            dir_done,
            dir_complete,
        })
    }

    /// Checks that a frame lists the directory in progress, or one announced and not
    /// listed yet (each directory is listed exactly once); true if it starts one.
    fn enter(&mut self, path: &RelPath) -> Result<bool, SessionError> {
        if let Some(current) = &self.current {
            if &current.path != path {
                return Err(SessionError::protocol(format!(
                    "listing of {path} started before the listing of {} was done",
                    current.path
                )));
            }
            return Ok(false);
        }
        if !self.expected.remove(path) {
            return Err(SessionError::protocol(format!(
                "listing of {path}, which is not a directory announced by the source (or was listed already)"
            )));
        }
        self.current = Some(Current {
            path: path.clone(),
            last: None,
        });
        Ok(true)
    }

    fn entry(&mut self, index: u64, entry: Entry) -> Result<ListedEntry, SessionError> {
        let current = self.current.as_mut().expect("entered");
        // Sorted, as the source's walker lists them: so when a file is planned, every name
        // before it in its directory is known (the target's partial names rely on it).
        if current
            .last
            .as_ref()
            .is_some_and(|last| *last >= entry.name)
        {
            return Err(SessionError::protocol(format!(
                "entry {} is listed twice or out of order in {} (names come sorted by their bytes)",
                escape(&entry.name),
                current.path
            )));
        }
        current.last = Some(entry.name.clone());
        let path = current
            .path
            .join(&entry.name, &self.limits)
            .map_err(|e| SessionError::protocol(e.to_string()))?;
        self.leaders.listed(index, &path, &entry.content);
        // The source walks with this same filter, so it never lists what it excludes. A
        // source that does (a hostile server answering a pull) would overwrite exactly the
        // local files the user excluded to keep.
        let is_dir = matches!(entry.content, Content::Dir);
        if self.filter.excluded(path.as_bytes(), is_dir) {
            return Err(SessionError::protocol(format!(
                "the source listed {path}, which the session's filter excludes"
            )));
        }
        let mut leader_path = None;
        match &entry.content {
            Content::HardLink {
                leader,
                path: leader_bytes,
            } => {
                if *leader >= index {
                    return Err(SessionError::protocol(format!(
                        "hard link {path} names leader {leader}, which was not listed before it"
                    )));
                }
                let checked = RelPath::new(leader_bytes.clone(), &self.limits)
                    .map_err(|e| SessionError::protocol(format!("hard link {path}: {e}")))?;
                // The link is made to whatever is at the leader's path on the target: it
                // must be the file the source listed as entry `leader`, or a hostile source
                // could link (and so expose, or later change the attributes of) any file
                // of the volume, one its own filter keeps safe included.
                if !self.leaders.is_file_at(*leader, &checked) {
                    return Err(SessionError::protocol(format!(
                        "hard link {path} names {checked} as entry {leader}, which is not the regular file listed as that entry"
                    )));
                }
                leader_path = Some(checked);
            }
            Content::Dir => {
                self.expected.insert(path.clone());
            }
            _ => {}
        }
        Ok(ListedEntry {
            index,
            path,
            entry,
            leader_path,
        })
    }
}
