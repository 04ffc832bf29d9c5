//! What the target volume has room for (its free blocks and inodes, `statvfs`) and what
//! an entry about to be deleted holds (its blocks and inodes, its contents included).
//! Read only: the session core decides what fits (`ferry_proto::session::target`).
//!
//! The walk of a directory to delete goes through held fds like its removal does
//! (`O_NOFOLLOW | O_DIRECTORY`, an explicit stack): a symlink is counted, never followed.
//! What cannot be read is left out, so the space a deletion frees is never overstated.

use ferry_proto::session::target::{FreeSpace, Usage};
use rustix::fs::{self as rfs, AtFlags, FileType};

use super::{Dir, Volume};
use crate::error::{io_err, TreeError};

impl Volume {
    /// The volume's free space: what unprivileged writers may use (`f_bavail`,
    /// `f_favail`), what is reserved for root besides, the block size.
    pub fn space(&self) -> Result<FreeSpace, TreeError> {
        let stat = rfs::fstatvfs(&*self.root).map_err(|e| io_err("statvfs", ".".into(), e))?;
        let block = stat.f_frsize.max(1);
        Ok(FreeSpace {
            bytes: stat.f_bavail.saturating_mul(block),
            reserved: stat
                .f_bfree
                .saturating_sub(stat.f_bavail)
                .saturating_mul(block),
            inodes: (stat.f_files > 0).then_some(stat.f_favail),
            block,
        })
    }
}

impl Dir {
    /// What `name` holds: its allocated bytes (`st_blocks × 512`) and one inode, and
    /// for a directory everything inside it. Nothing if it is gone.
    pub fn usage(&self, name: &[u8]) -> Result<Usage, TreeError> {
        let mut usage = Usage::default();
        let Some(kind) = count(self, name, &mut usage)? else {
            return Ok(usage);
        };
        if kind != FileType::Directory {
            return Ok(usage);
        }
        let mut stack = Vec::new();
        if let Ok(top) = self.open_subdir(name) {
            stack.push((top.names().unwrap_or_default(), top));
        }
        while let Some((pending, dir)) = stack.last_mut() {
            let Some(child) = pending.pop() else {
                stack.pop();
                continue;
            };
            if count(dir, &child, &mut usage)? == Some(FileType::Directory) {
                if let Ok(sub) = dir.open_subdir(&child) {
                    stack.push((sub.names().unwrap_or_default(), sub));
                }
            }
        }
        Ok(usage)
    }
}

/// Adds `name`'s own blocks and inode to `usage`, unless another name keeps them (a
/// file with more links: removing this one frees nothing); its type, `None` if it is
/// gone.
fn count(dir: &Dir, name: &[u8], usage: &mut Usage) -> Result<Option<FileType>, TreeError> {
    match rfs::statat(dir.fd(), name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => {
            let kind = FileType::from_raw_mode(st.st_mode);
            #[allow(clippy::unnecessary_cast)]
            if kind == FileType::Directory || st.st_nlink as u64 == 1 {
                let bytes = (st.st_blocks as u64).saturating_mul(512);
                usage.bytes = usage.bytes.saturating_add(bytes);
                usage.inodes += 1;
            }
            Ok(Some(kind))
        }
        Err(rustix::io::Errno::NOENT) => Ok(None),
        Err(e) => Err(dir.err("stat", name, e)),
    }
}

#[cfg(test)]
mod tests {
    use ferry_proto::RelPath;

    use super::*;
    use crate::volume::Privileges;

    #[test]
    fn free_space_is_what_statvfs_says_unprivileged_writers_may_use() {
        let base = tempfile::tempdir().unwrap();
        let volume = Volume::open(base.path(), Privileges::current()).unwrap();
        let space = volume.space().unwrap();
        let stat = rfs::statvfs(base.path()).unwrap();
        assert_eq!(space.block, stat.f_frsize);
        assert!(space.bytes <= stat.f_bfree * stat.f_frsize);
        assert!(space.bytes > 0);
    }

    #[test]
    fn usage_counts_a_directory_with_its_contents_and_never_follows_a_symlink() {
        let base = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(base.path().join("gone/sub")).unwrap();
        std::fs::write(base.path().join("gone/a"), vec![1u8; 100_000]).unwrap();
        std::fs::write(base.path().join("gone/sub/b"), vec![2u8; 50_000]).unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("big"), vec![3u8; 1_000_000]).unwrap();
        std::os::unix::fs::symlink(outside.path(), base.path().join("gone/link")).unwrap();
        // A second name of a file that stays: removing it frees nothing.
        std::fs::write(base.path().join("kept"), vec![4u8; 500_000]).unwrap();
        std::fs::hard_link(base.path().join("kept"), base.path().join("gone/kept")).unwrap();
        let volume = Volume::open(base.path(), Privileges::current()).unwrap();
        let root = volume.open_dir(&RelPath::root()).unwrap();
        let usage = root.usage(b"gone").unwrap();
        // gone, sub, a, b, link; not kept, whose other name stays.
        assert_eq!(usage.inodes, 5);
        assert!(usage.bytes >= 150_000, "{usage:?}");
        assert!(
            usage.bytes < 500_000,
            "the symlink was followed, or kept was counted: {usage:?}"
        );
        assert_eq!(root.usage(b"missing").unwrap(), Usage::default());
    }
}
