//! `/proc/self/fd/N`: a magic link to exactly the inode an fd holds. The tree reaches an
//! inode through it where a syscall has no fd form (xattrs on `O_PATH` fds, `linkat` of
//! an unnamed file); no name in a volume is looked up on the way.

use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;
use std::sync::OnceLock;

use rustix::fs::{self as rfs, AtFlags};
use rustix::io::Errno;

/// Whether `/proc` is mounted here (asked once: it does not come or go under us).
pub(crate) fn available() -> bool {
    static MOUNTED: OnceLock<bool> = OnceLock::new();
    *MOUNTED.get_or_init(|| Path::new("/proc/self/fd").is_dir())
}

/// The magic link for `fd`.
pub(crate) fn path(fd: impl AsFd) -> String {
    format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd())
}

/// Links the inode `fd` holds at `name` in `dir` (`linkat` of its magic link, following
/// it): how an unnamed (`O_TMPFILE`) file gets a name. `EEXIST` if `name` is taken.
pub(crate) fn link_at(fd: impl AsFd, dir: impl AsFd, name: &[u8]) -> Result<(), Errno> {
    rfs::linkat(
        rfs::CWD,
        path(fd).as_str(),
        dir,
        name,
        AtFlags::SYMLINK_FOLLOW,
    )
}
