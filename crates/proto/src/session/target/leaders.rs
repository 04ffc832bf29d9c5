//! Which entry a hard link may name as its leader. A link is made to whatever is at its
//! leader path on the target, so that path must be the regular file the source listed as
//! that entry; the planner records each listed entry here and asks before planning a link.
//! Plain data: no filesystem, no protocol state beyond the entries' paths.

use crate::model::Content;
use crate::path::RelPath;

/// What a hard link may name as its leader: the regular file listed as that entry, at
/// that path. One keyed 32-bit fingerprint of the path per listed entry (0 for anything
/// but a file): 4 bytes an entry, and a source cannot forge a match without the key,
/// which the driver draws at random and which never leaves this process.
pub struct Leaders {
    key: std::hash::RandomState,
    prints: Vec<u32>,
}

impl Leaders {
    /// Fingerprints keyed with `key` (a fresh `RandomState` per session).
    pub fn new(key: std::hash::RandomState) -> Leaders {
        Leaders {
            key,
            prints: Vec::new(),
        }
    }

    fn print(&self, path: &RelPath) -> u32 {
        use std::hash::BuildHasher;
        (self.key.hash_one(path.as_bytes()) as u32) | 1
    }

    /// Records entry `index` (listed in order, every entry once).
    pub fn listed(&mut self, index: u64, path: &RelPath, content: &Content) {
        debug_assert_eq!(index, self.prints.len() as u64);
        let print = match content {
            Content::File { .. } => self.print(path),
            _ => 0,
        };
        self.prints.push(print);
    }

    pub fn is_file_at(&self, index: u64, path: &RelPath) -> bool {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.prints.get(i))
            .is_some_and(|&print| print == self.print(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::Limits;

    fn p(s: &str) -> RelPath {
        RelPath::new(s.as_bytes().to_vec(), &Limits::default()).unwrap()
    }

    #[test]
    fn only_the_file_listed_as_that_entry_at_that_path_is_a_leader() {
        let mut leaders = Leaders::new(std::hash::RandomState::new());
        let file = Content::File {
            size: 1,
            checksum: None,
        };
        leaders.listed(0, &p("a"), &file);
        leaders.listed(1, &p("d"), &Content::Dir);
        leaders.listed(2, &p("d/b"), &file);
        assert!(leaders.is_file_at(0, &p("a")));
        assert!(leaders.is_file_at(2, &p("d/b")));
        assert!(!leaders.is_file_at(0, &p("d/b")), "another entry's path");
        assert!(!leaders.is_file_at(2, &p("a")), "another entry's path");
        assert!(!leaders.is_file_at(1, &p("d")), "a directory");
        assert!(!leaders.is_file_at(3, &p("a")), "not listed");
        assert!(!leaders.is_file_at(u64::MAX, &p("a")), "out of range");
    }
}
