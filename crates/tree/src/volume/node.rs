//! One thing whose attributes are being changed, reached without ever resolving a
//! name again: an open fd, an `O_PATH` fd, or (for symlinks only) a name with
//! `AT_SYMLINK_NOFOLLOW`.
//!
//! `O_PATH` fds cannot `fchmod` or `f*xattr` (`EBADF`); those go through
//! `/proc/self/fd/N`, a magic link to exactly the inode the fd holds, so no name is
//! looked up again and no symlink in the volume is followed. Ownership and times use
//! `AT_EMPTY_PATH`, which works on `O_PATH` fds without `/proc`.

use std::os::fd::BorrowedFd;

use ferry_proto::Timestamp;
use rustix::fs::{self as rfs, AtFlags, Stat, Timespec, Timestamps, CWD, UTIME_OMIT};
use rustix::io::Errno;
use rustix::process::{Gid, Uid};

use crate::proc_fd;
use crate::xattr::On;

pub(crate) enum Node<'a> {
    /// A real fd: the temp file being written, or a directory's own fd.
    Fd(BorrowedFd<'a>),
    /// An `O_PATH | O_NOFOLLOW` fd on a file, directory or special file.
    Path { fd: BorrowedFd<'a>, proc: String },
    /// A symlink by name: only ownership and times apply (Linux has no symlink modes,
    /// and `user.*` attributes are not allowed on symlinks).
    Link { dir: BorrowedFd<'a>, name: &'a [u8] },
}

impl<'a> Node<'a> {
    pub(crate) fn path(fd: BorrowedFd<'a>) -> Node<'a> {
        Node::Path {
            fd,
            proc: proc_fd::path(fd),
        }
    }

    pub(crate) fn stat(&self) -> Result<Stat, Errno> {
        match self {
            Node::Fd(fd) | Node::Path { fd, .. } => rfs::fstat(fd),
            Node::Link { dir, name } => rfs::statat(dir, *name, AtFlags::SYMLINK_NOFOLLOW),
        }
    }

    /// `None` leaves that id unchanged.
    pub(crate) fn chown(&self, uid: Option<u32>, gid: Option<u32>) -> Result<(), Errno> {
        // `-1` means "unchanged" to the kernel; a peer cannot ask for it.
        let uid = uid.filter(|&u| u != u32::MAX).map(Uid::from_raw_unchecked);
        let gid = gid.filter(|&g| g != u32::MAX).map(Gid::from_raw_unchecked);
        match self {
            Node::Fd(fd) => rfs::fchown(fd, uid, gid),
            Node::Path { fd, .. } => rfs::chownat(fd, "", uid, gid, AtFlags::EMPTY_PATH),
            Node::Link { dir, name } => {
                rfs::chownat(dir, *name, uid, gid, AtFlags::SYMLINK_NOFOLLOW)
            }
        }
    }

    pub(crate) fn chmod(&self, mode: u32) -> Result<(), Errno> {
        let mode = rfs::Mode::from_raw_mode(mode & 0o7777);
        match self {
            Node::Fd(fd) => rfs::fchmod(fd, mode),
            Node::Path { proc, .. } => {
                rfs::chmodat(CWD, proc.as_str(), mode, AtFlags::empty()).map_err(proc_errno)
            }
            Node::Link { .. } => Ok(()),
        }
    }

    /// Sets the modification time; the access time is left alone.
    pub(crate) fn set_mtime(&self, mtime: Timestamp) -> Result<(), Errno> {
        let times = Timestamps {
            last_access: Timespec {
                tv_sec: 0,
                tv_nsec: UTIME_OMIT,
            },
            last_modification: Timespec {
                tv_sec: mtime.sec,
                tv_nsec: i64::from(mtime.nsec),
            },
        };
        match self {
            Node::Fd(fd) => rfs::futimens(fd, &times),
            Node::Path { fd, .. } => rfs::utimensat(fd, "", &times, AtFlags::EMPTY_PATH),
            Node::Link { dir, name } => {
                rfs::utimensat(dir, *name, &times, AtFlags::SYMLINK_NOFOLLOW)
            }
        }
    }

    /// Runs an xattr operation on this node; `None` for symlinks (which carry none).
    pub(crate) fn with_xattrs<T>(
        &self,
        op: impl FnOnce(On<'_>) -> Result<T, Errno>,
    ) -> Option<Result<T, Errno>> {
        let result = op(self.xattr_handle()?);
        Some(match self {
            Node::Path { .. } => result.map_err(proc_errno),
            _ => result,
        })
    }

    /// Where extended attributes are read and written; `None` for symlinks.
    fn xattr_handle(&self) -> Option<On<'_>> {
        match self {
            Node::Fd(fd) => Some(On::Fd(*fd)),
            Node::Path { proc, .. } => Some(On::Follow(std::path::Path::new(proc))),
            Node::Link { .. } => None,
        }
    }
}

/// Through `/proc/self/fd/N` the inode is held by the fd, so `ENOENT` can only mean
/// that `/proc` is not mounted; reporting it as "not found" would make the engine
/// think the entry vanished.
fn proc_errno(e: Errno) -> Errno {
    match e {
        Errno::NOENT => Errno::NOSYS,
        e => e,
    }
}
