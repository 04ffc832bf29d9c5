//! When a changed file is written into the existing file instead of a temp copy, and
//! what a receiver must remember while it does. Pure: the planner and receivers do the
//! filesystem work.
//!
//! In place when asked (`--inplace`), or when the target's filesystem has no room for a
//! second copy of the file (free space below its new size at planning, or the temp
//! copy's write failing with ENOSPC/EDQUOT: see `receive`), and only when it is safe
//! ([`eligible`]). Everywhere else the temp copy stays: a reader never sees a
//! half-updated file. Must not import the session cores' internals or print.

use ferry_delta::MIN_DELTA_BASIS;
use ferry_proto::Meta;
use ferry_tree::Existing;

/// Whether and how a wanted file may be written in place.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum InPlace {
    /// Always a temp copy (a new file, a small one, or one [`eligible`] refuses).
    #[default]
    Never,
    /// A temp copy, but the existing inode `dev`/`ino` may be written in place if the
    /// copy finds no room.
    Allowed { dev: u64, ino: u64 },
    /// In place, into the inode `dev`/`ino` (the basis planned against).
    Chosen { dev: u64, ino: u64, why: Why },
}

/// Why a file is written in place (a person is told when it was not asked for).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Why {
    /// `--inplace`.
    Asked,
    /// The filesystem had no room for a second copy.
    NoRoom,
}

impl InPlace {
    /// The same file, now to be written in place because a temp copy found no room;
    /// `None` if it may not be.
    pub fn for_no_room(self) -> Option<InPlace> {
        match self {
            InPlace::Allowed { dev, ino } => Some(InPlace::Chosen {
                dev,
                ino,
                why: Why::NoRoom,
            }),
            _ => None,
        }
    }
}

/// Why the existing file may not be written in place, or `None` if it may: not a file
/// under [`MIN_DELTA_BASIS`] (its second copy costs little, and the planner checks the
/// mark of files this large only), not one with a second link (in place would change
/// what the other names read too, maybe outside the volume), not a set-id program
/// (old or new: half rewritten it could be run with its privileges), and not one that
/// the attribute rules rewrite into a fresh inode (an owner to change, xattrs to set: in
/// place, a local user's open fd on their planted file would write into the privileged
/// result).
pub fn refused(
    existing: &Existing,
    meta: &Meta,
    root: bool,
    xattrs_differ: bool,
) -> Option<&'static str> {
    let set_id = (meta.mode | existing.mode) & 0o6000 != 0;
    let owner_changes = root && (existing.uid != meta.uid || existing.gid != meta.gid);
    if existing.size < MIN_DELTA_BASIS {
        Some("it is small")
    } else if existing.nlink != 1 {
        Some("it has more than one link, whose other names would change too")
    } else if set_id {
        // A set-id program half rewritten could be run with its privileges.
        Some("it is a set-id program, which is replaced whole")
    } else if owner_changes || (!meta.xattrs.is_empty() && xattrs_differ) {
        Some("its owner or xattrs change, which takes a fresh file")
    } else {
        None
    }
}

/// The choice for an eligible file of `size` bytes (its new size) with `room` bytes
/// free on its filesystem.
pub fn choose(asked: bool, dev: u64, ino: u64, size: u64, room: u64) -> InPlace {
    match (asked, room < size) {
        (true, _) => InPlace::Chosen {
            dev,
            ino,
            why: Why::Asked,
        },
        (false, true) => InPlace::Chosen {
            dev,
            ino,
            why: Why::NoRoom,
        },
        (false, false) => InPlace::Allowed { dev, ino },
    }
}

/// Most ranges [`Overwritten`] keeps apart (16 bytes each) before it merges them all.
const MAX_RANGES: usize = 1 << 16;

/// The ranges of a file written in place whose bytes may now differ from its old
/// content: a delta's COPY from one of them cannot be served. Writes only move forward,
/// so ranges come in order and the last one merges with a neighbour.
#[derive(Debug, Default)]
pub struct Overwritten {
    /// Sorted, disjoint, half-open `[start, end)`.
    ranges: Vec<(u64, u64)>,
}

impl Overwritten {
    /// `[start, end)` was written (at or after every earlier range).
    pub fn add(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        let full = self.ranges.len() >= MAX_RANGES;
        match self.ranges.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ if full => {
                // Bounded: one range from the first to here (too cautious, never wrong).
                let first = self.ranges[0].0;
                self.ranges.clear();
                self.ranges.push((first.min(start), end));
            }
            _ => self.ranges.push((start, end)),
        }
    }

    /// Whether any byte of `[start, end)` was overwritten.
    pub fn touches(&self, start: u64, end: u64) -> bool {
        // The first range ending after `start` is the only candidate.
        let i = self.ranges.partition_point(|&(_, e)| e <= start);
        self.ranges.get(i).is_some_and(|&(s, _)| s < end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_proto::Timestamp;
    use ferry_tree::ExistingKind;

    fn existing() -> Existing {
        Existing {
            kind: ExistingKind::File,
            size: 1 << 20,
            mode: 0o644,
            uid: 10,
            gid: 20,
            mtime: Timestamp { sec: 1, nsec: 0 },
            dev: 1,
            ino: 2,
            nlink: 1,
            rdev: 0,
            allocated: 1 << 20,
        }
    }

    fn meta() -> Meta {
        Meta {
            mode: 0o644,
            uid: 10,
            gid: 20,
            mtime: Timestamp { sec: 2, nsec: 0 },
            xattrs: Vec::new(),
        }
    }

    #[test]
    fn a_plain_large_file_may_be_written_in_place() {
        assert_eq!(refused(&existing(), &meta(), true, false), None);
    }

    #[test]
    fn links_owners_set_id_and_small_files_are_refused() {
        let linked = Existing {
            nlink: 2,
            ..existing()
        };
        assert!(refused(&linked, &meta(), true, false).is_some());
        let setuid = Meta {
            mode: 0o4755,
            ..meta()
        };
        assert!(refused(&existing(), &setuid, true, false).is_some());
        let was_setgid = Existing {
            mode: 0o2755,
            ..existing()
        };
        assert!(refused(&was_setgid, &meta(), true, false).is_some());
        let other_owner = Meta { uid: 0, ..meta() };
        assert!(refused(&existing(), &other_owner, true, false).is_some());
        assert_eq!(refused(&existing(), &other_owner, false, false), None);
        let small = Existing {
            size: 1000,
            ..existing()
        };
        assert!(refused(&small, &meta(), true, false).is_some());
    }

    #[test]
    fn chosen_when_asked_or_without_room() {
        assert!(matches!(
            choose(true, 1, 2, 10, 100),
            InPlace::Chosen {
                why: Why::Asked,
                ..
            }
        ));
        assert!(matches!(
            choose(false, 1, 2, 100, 10),
            InPlace::Chosen {
                why: Why::NoRoom,
                ..
            }
        ));
        let allowed = choose(false, 1, 2, 10, 100);
        assert_eq!(allowed, InPlace::Allowed { dev: 1, ino: 2 });
        assert!(matches!(
            allowed.for_no_room(),
            Some(InPlace::Chosen {
                why: Why::NoRoom,
                ..
            })
        ));
        assert_eq!(InPlace::Never.for_no_room(), None);
    }

    #[test]
    fn overwritten_ranges_merge_and_answer_overlaps() {
        let mut o = Overwritten::default();
        o.add(10, 20);
        o.add(20, 30);
        o.add(50, 60);
        assert_eq!(o.ranges, vec![(10, 30), (50, 60)]);
        assert!(!o.touches(0, 10));
        assert!(o.touches(0, 11));
        assert!(o.touches(29, 31));
        assert!(!o.touches(30, 50));
        assert!(o.touches(45, 51));
        assert!(!o.touches(60, 70));
    }

    #[test]
    fn overwritten_ranges_stay_bounded() {
        let mut o = Overwritten::default();
        for i in 0..(MAX_RANGES as u64 + 10) {
            o.add(i * 10, i * 10 + 1);
        }
        assert!(o.ranges.len() <= MAX_RANGES);
        assert!(o.touches(5, 6), "merged ranges are taken as overwritten");
    }
}
