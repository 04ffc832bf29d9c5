//! The pre-flight space check: what the session's writes will take of the target
//! volume, counted in listing order as the planner's outcomes arrive, against the free
//! space the driver read when the session began (a value handed in: nothing here looks
//! at a filesystem).
//!
//! The model follows what the target does, in the order it does it:
//! * a new file takes its size rounded up to whole blocks, and an inode;
//! * a changed file is written beside the old one and renamed over it: for a moment it
//!   needs its whole new size more, then the old copy's blocks are free again; one the
//!   target updates in place needs only what it grows by;
//! * an attribute fix, an unchanged entry and a hard link take nothing;
//! * with `--delete`, the extras of every completely listed directory are removed at
//!   the end, unless the session would not fit without them: then the driver removes
//!   those collected so far at once, before the frame's files are written
//!   ([`SpaceVerdict::DeleteFirst`]), and from there the space they held counts as free.
//!
//! The check fails as soon as the running need provably exceeds what is free: before
//! the first byte of the file that would not fit is asked for, usually long before the
//! listing ends. A sparse file counts at its full size (the listing does not say where
//! its holes are), and files in flight at once (a few) are not counted twice.

use crate::session::SessionError;

/// The target volume's free space, as the driver read it (`statvfs`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FreeSpace {
    /// Bytes any writer may still use (`f_bavail × f_frsize`).
    pub bytes: u64,
    /// Bytes the filesystem keeps for root besides (`(f_bfree − f_bavail) × f_frsize`).
    /// Not counted as free, even for a target running as root: they keep the system
    /// that owns the volume alive.
    pub reserved: u64,
    /// Inodes any writer may still use (`f_favail`); `None` when the filesystem does not
    /// count inodes (`f_files == 0`, as on btrfs).
    pub inodes: Option<u64>,
    /// The fundamental block size (`f_frsize`): every file takes whole blocks.
    pub block: u64,
}

/// Space that entries about to be deleted hold, or that a session needs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Bytes allocated (`st_blocks × 512`, all of a directory's contents included).
    pub bytes: u64,
    pub inodes: u64,
}

impl Usage {
    pub fn add(&mut self, other: Usage) {
        self.bytes = self.bytes.saturating_add(other.bytes);
        self.inodes = self.inodes.saturating_add(other.inodes);
    }
}

/// One entry that writes something, for [`FrameSpace::writes`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Write {
    /// Bytes of the new content (rounded up to whole blocks here); a new directory
    /// counts as 1 (one block).
    pub size: u64,
    /// Bytes the old copy holds (allocated), free again once the new one is in place.
    pub replaces: u64,
    /// Whether it takes a new inode (a new entry, not a replaced one).
    pub inode: bool,
    /// Written into the old file itself (`--inplace`, or no room for a copy): it needs
    /// only what it grows by, never a second copy.
    pub in_place: bool,
}

/// What planning one frame found about space, in listing order, for
/// [`TargetCore::handle_space`](super::TargetCore::handle_space).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FrameSpace {
    pub writes: Vec<Write>,
    /// With `--delete`, on the frame that completes a directory the source read
    /// completely: what its extras hold (debris of earlier runs left out).
    pub extras: Usage,
}

/// How the session treats its space account.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SpaceCheck {
    /// Count what the writes need (for `Done`), nothing more: `--no-space-check`, and
    /// `--delete` removes its extras at the end, whatever the room.
    #[default]
    Off,
    /// A dry run: count as the real run would (deleting early where it would), but
    /// never stop; the source compares the need with the free space.
    Estimate,
    /// Stop a session that does not fit, and delete early where that makes it fit.
    Enforce,
}

/// What the driver does before it asks for the frame's files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum SpaceVerdict {
    /// Nothing: it fits (or nobody checks).
    Fits,
    /// Delete the extras collected so far now, before writing: the session fits only
    /// thanks to them.
    DeleteFirst,
}

/// The running account of one session.
#[derive(Debug, Default)]
pub(super) struct SpaceAccount {
    free: Option<FreeSpace>,
    /// Whether to stop a session that does not fit.
    check: bool,
    /// Whether extras are deleted early when the writes need their room.
    room: bool,
    /// Bytes and inodes the writes so far hold beyond what was free at the start (may
    /// be negative: changed files that shrank, extras deleted).
    bytes: i128,
    inodes: i128,
    /// The most `bytes` and `inodes` reached (what the session needed).
    peak: Usage,
    /// Extras collected and not yet deleted: free at the end, or at once if needed.
    releasable: Usage,
}

impl SpaceAccount {
    pub(super) fn new(free: Option<FreeSpace>, mode: SpaceCheck) -> SpaceAccount {
        SpaceAccount {
            free,
            check: mode == SpaceCheck::Enforce && free.is_some(),
            room: mode != SpaceCheck::Off && free.is_some(),
            ..SpaceAccount::default()
        }
    }

    /// The most the session needed so far (in a dry run: what it would need).
    pub(super) fn needed(&self) -> Usage {
        self.peak
    }

    /// Counts one planned frame. `may_delete`: deleting now is allowed (every directory
    /// so far was read completely by the source).
    pub(super) fn frame(
        &mut self,
        frame: &FrameSpace,
        may_delete: bool,
    ) -> Result<SpaceVerdict, SessionError> {
        // The frame's own directory's extras are known before its files are asked for.
        self.releasable.add(frame.extras);
        let block = self.free.map_or(1, |f| f.block.max(1));
        let mut verdict = SpaceVerdict::Fits;
        for write in &frame.writes {
            let size = i128::from(write.size.div_ceil(block)) * i128::from(block);
            let inode = i128::from(write.inode);
            // In place, the old blocks are the new file's from the start.
            let size = match write.in_place {
                true => size - i128::from(write.replaces),
                false => size,
            };
            let freed = match write.in_place {
                true => 0,
                false => i128::from(write.replaces),
            };
            let (mut bytes, mut inodes) = (self.bytes + size, self.inodes + inode);
            if self.room
                && self.over(bytes, inodes)
                && may_delete
                && self.releasable != Usage::default()
            {
                // Fits only thanks to --delete: make the room before writing.
                self.bytes -= i128::from(self.releasable.bytes);
                self.inodes -= i128::from(self.releasable.inodes);
                self.releasable = Usage::default();
                verdict = SpaceVerdict::DeleteFirst;
                (bytes, inodes) = (self.bytes + size, self.inodes + inode);
            }
            if self.check && self.over(bytes, inodes) {
                return Err(self.no_space(bytes, inodes));
            }
            self.peak.bytes = self.peak.bytes.max(clamp(bytes));
            self.peak.inodes = self.peak.inodes.max(clamp(inodes));
            self.bytes = bytes - freed;
            self.inodes = inodes;
        }
        Ok(verdict)
    }

    fn over(&self, bytes: i128, inodes: i128) -> bool {
        let Some(free) = self.free else { return false };
        bytes > i128::from(free.bytes) || free.inodes.is_some_and(|n| inodes > i128::from(n))
    }

    fn no_space(&self, bytes: i128, inodes: i128) -> SessionError {
        let free = self.free.expect("checked only with free space known");
        let what = if bytes > i128::from(free.bytes) {
            format!(
                "the files listed so far need at least {} of it, and it has {} free{}",
                shown(clamp(bytes)),
                shown(free.bytes),
                match free.reserved {
                    0 => String::new(),
                    r => format!(" ({} more reserved for root, not counted)", shown(r)),
                },
            )
        } else {
            format!(
                "the entries listed so far need at least {} inodes of it, and it has {} free",
                clamp(inodes),
                free.inodes.unwrap_or(0)
            )
        };
        SessionError::NoSpace(format!(
            "not enough space on the target volume: {what}; stopped before writing them. \
             Free space on the target volume or grow it (the PVC), or run with \
             --no-space-check to try anyway (sparse files are counted at their full size)"
        ))
    }
}

fn clamp(n: i128) -> u64 {
    u64::try_from(n.max(0)).unwrap_or(u64::MAX)
}

/// Bytes, exactly, and in binary units for a person.
fn shown(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes as f64;
    let mut unit = "";
    for u in UNITS {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = u;
    }
    match unit {
        "" => format!("{bytes} bytes"),
        unit => format!("{bytes} bytes ({value:.1} {unit})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn free(bytes: u64) -> Option<FreeSpace> {
        Some(FreeSpace {
            bytes,
            reserved: 0,
            inodes: Some(100),
            block: 4096,
        })
    }

    fn new_file(size: u64) -> Write {
        Write {
            size,
            replaces: 0,
            inode: true,
            in_place: false,
        }
    }

    #[test]
    fn sizes_are_rounded_up_to_whole_blocks() {
        let mut account = SpaceAccount::new(free(8192), SpaceCheck::Enforce);
        let frame = FrameSpace {
            writes: vec![new_file(1), new_file(4097)],
            ..FrameSpace::default()
        };
        let Err(SessionError::NoSpace(message)) = account.frame(&frame, true) else {
            panic!("1 + 4097 bytes fit two blocks");
        };
        assert!(
            message.contains("at least 12288 bytes") && message.contains("has 8192 bytes"),
            "{message}"
        );
    }

    #[test]
    fn a_changed_file_needs_its_new_size_beside_the_old_one_only_while_it_is_written() {
        let mut account = SpaceAccount::new(free(3 * 4096), SpaceCheck::Enforce);
        let change = Write {
            size: 2 * 4096,
            replaces: 2 * 4096,
            inode: false,
            in_place: false,
        };
        let frame = FrameSpace {
            writes: vec![change; 5],
            ..FrameSpace::default()
        };
        assert_eq!(account.frame(&frame, true).unwrap(), SpaceVerdict::Fits);
        assert_eq!(account.needed().bytes, 2 * 4096);
        let bigger = Write {
            size: 4 * 4096,
            ..change
        };
        let frame = FrameSpace {
            writes: vec![bigger],
            ..FrameSpace::default()
        };
        assert!(account.frame(&frame, true).is_err(), "4 blocks fit in 3");
    }

    #[test]
    fn a_file_updated_in_place_needs_only_what_it_grows_by() {
        let mut account = SpaceAccount::new(free(4096), SpaceCheck::Enforce);
        let image = Write {
            size: 100 * 4096,
            replaces: 100 * 4096,
            inode: false,
            in_place: true,
        };
        let grown = Write {
            size: 101 * 4096,
            ..image
        };
        let frame = FrameSpace {
            writes: vec![image, grown],
            ..FrameSpace::default()
        };
        assert_eq!(account.frame(&frame, true).unwrap(), SpaceVerdict::Fits);
        assert_eq!(account.needed().bytes, 4096);
        let copied = Write {
            in_place: false,
            ..image
        };
        let frame = FrameSpace {
            writes: vec![copied],
            ..FrameSpace::default()
        };
        assert!(
            account.frame(&frame, true).is_err(),
            "a temp copy needs the whole size beside the old file"
        );
    }

    #[test]
    fn extras_are_deleted_first_only_when_the_writes_need_their_room() {
        let mut account = SpaceAccount::new(free(4 * 4096), SpaceCheck::Enforce);
        let extras = Usage {
            bytes: 8 * 4096,
            inodes: 2,
        };
        let small = FrameSpace {
            writes: vec![new_file(4096)],
            extras,
        };
        assert_eq!(account.frame(&small, true).unwrap(), SpaceVerdict::Fits);
        let big = FrameSpace {
            writes: vec![new_file(8 * 4096)],
            ..FrameSpace::default()
        };
        assert_eq!(
            account.frame(&big, true).unwrap(),
            SpaceVerdict::DeleteFirst
        );
        // 1 block written, 8 deleted, 8 written: never more than 1 block of the 4 free.
        assert_eq!(account.needed().bytes, 4096);
    }

    #[test]
    fn extras_are_not_deleted_early_when_a_directory_was_incomplete_or_nobody_checks() {
        let extras = Usage {
            bytes: 8 * 4096,
            inodes: 2,
        };
        let frame = FrameSpace {
            writes: vec![new_file(8 * 4096)],
            extras,
        };
        let mut account = SpaceAccount::new(free(4 * 4096), SpaceCheck::Enforce);
        assert!(account.frame(&frame, false).is_err());
        let mut unchecked = SpaceAccount::new(free(4 * 4096), SpaceCheck::Off);
        assert_eq!(unchecked.frame(&frame, true).unwrap(), SpaceVerdict::Fits);
        assert_eq!(unchecked.needed().bytes, 8 * 4096);
        let mut unknown = SpaceAccount::new(None, SpaceCheck::Enforce);
        assert_eq!(unknown.frame(&frame, true).unwrap(), SpaceVerdict::Fits);
    }

    #[test]
    fn a_dry_run_estimates_as_the_real_run_would_and_never_stops() {
        let extras = Usage {
            bytes: 2 * 4096,
            inodes: 1,
        };
        let frame = FrameSpace {
            writes: vec![new_file(3 * 4096), new_file(9 * 4096)],
            extras,
        };
        let mut dry = SpaceAccount::new(free(4 * 4096), SpaceCheck::Estimate);
        assert_eq!(dry.frame(&frame, true).unwrap(), SpaceVerdict::DeleteFirst);
        // 2 blocks deleted first: 3 + 9 - 2 = 10 blocks needed, more than the 4 free.
        assert_eq!(dry.needed().bytes, 10 * 4096);
    }

    #[test]
    fn inodes_run_out_too() {
        let mut account = SpaceAccount::new(
            Some(FreeSpace {
                bytes: u64::MAX / 2,
                reserved: 0,
                inodes: Some(3),
                block: 4096,
            }),
            SpaceCheck::Enforce,
        );
        let frame = FrameSpace {
            writes: vec![new_file(0); 4],
            ..FrameSpace::default()
        };
        let Err(SessionError::NoSpace(message)) = account.frame(&frame, true) else {
            panic!("4 inodes fit in 3");
        };
        assert!(
            message.contains("at least 4 inodes") && message.contains("3 free"),
            "{message}"
        );
    }
}
