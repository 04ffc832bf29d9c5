//! Removing entries, directories recursively, always through held directory fds.
//! A symlink is unlinked, never descended into: subdirectories are opened with
//! `O_NOFOLLOW | O_DIRECTORY`, so a link swapped in mid-removal stops the walk
//! instead of redirecting it.
//!
//! The walk keeps an explicit stack (no recursion), holding one fd per level; a tree
//! deeper than the process's fd limit fails with `EMFILE` rather than crashing.

use std::os::fd::AsFd;

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use super::dir::checked;
use super::node::Node;
use super::Dir;
use crate::caps::Cap;
use crate::error::TreeError;

/// One directory being emptied: its fd, its name in the parent, what is left in it.
struct Frame {
    dir: Dir,
    name: Vec<u8>,
    pending: Vec<Vec<u8>>,
}

enum Unlinked {
    Removed,
    Missing,
    IsDir,
}

impl Dir {
    /// Removes `name` whatever it is. Directories go recursively (a directory counts
    /// itself plus its contents); a symlink is removed, not its target. Returns how
    /// many entries were removed; 0 if nothing was there.
    pub fn remove(&self, name: &[u8]) -> Result<u64, TreeError> {
        checked(name)?;
        match self.unlink_child(name)? {
            Unlinked::Removed => return Ok(1),
            Unlinked::Missing => return Ok(0),
            Unlinked::IsDir => {}
        }
        let top = self.open_subdir_fillable(name)?;
        let mut stack = vec![Frame {
            pending: top.names()?,
            dir: top,
            name: name.to_vec(),
        }];
        let mut count = 0;
        while let Some(frame) = stack.last_mut() {
            if let Some(child) = frame.pending.pop() {
                match frame.dir.unlink_child(&child)? {
                    Unlinked::Removed => count += 1,
                    Unlinked::Missing => {}
                    Unlinked::IsDir => {
                        let dir = frame.dir.open_subdir_fillable(&child)?;
                        let pending = dir.names()?;
                        stack.push(Frame {
                            dir,
                            name: child,
                            pending,
                        });
                    }
                }
                continue;
            }
            let done = stack.pop().expect("stack is not empty");
            let parent = stack.last().map_or(self, |f| &f.dir);
            match rfs::unlinkat(parent.fd(), done.name.as_slice(), AtFlags::REMOVEDIR) {
                Ok(()) => count += 1,
                Err(Errno::NOENT) => {}
                Err(e) => return Err(parent.err("rmdir", &done.name, e)),
            }
        }
        Ok(count)
    }

    /// Unlinks a non-directory; tells the caller when `name` is a directory.
    fn unlink_child(&self, name: &[u8]) -> Result<Unlinked, TreeError> {
        let mut opened_up = false;
        loop {
            match rfs::unlinkat(self.fd(), name, AtFlags::empty()) {
                Ok(()) => return Ok(Unlinked::Removed),
                Err(Errno::NOENT) => return Ok(Unlinked::Missing),
                Err(Errno::ISDIR) => return Ok(Unlinked::IsDir),
                Err(Errno::ACCESS) if !opened_up && !self.privileges().has(Cap::DacOverride) => {
                    // Without CAP_DAC_OVERRIDE and this directory is not writable for us (a previous
                    // pass gave it its final mode): open it up and try once more.
                    opened_up = true;
                    let st = rfs::fstat(self.fd()).map_err(|e| self.err("stat", b"", e))?;
                    let mode = Mode::from_raw_mode((st.st_mode & 0o7777) | 0o700);
                    rfs::fchmod(self.fd(), mode).map_err(|e| self.err("chmod", b"", e))?;
                }
                Err(e) => return Err(self.err("unlink", name, e)),
            }
        }
    }

    /// Opens a subdirectory to fill or empty it; without privilege, one we may not
    /// read is first given owner `rwx` (through an `O_PATH` fd, so no symlink is
    /// followed). Its final mode is restored by `set_own_meta` (or it is removed).
    pub(crate) fn open_subdir_fillable(&self, name: &[u8]) -> Result<Dir, TreeError> {
        match self.open_subdir(name) {
            Err(TreeError::Io { source, .. })
                if source.raw_os_error() == Some(Errno::ACCESS.raw_os_error())
                    && !self.privileges().has(Cap::DacOverride) =>
            {
                let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::DIRECTORY | OFlags::CLOEXEC;
                let fd = rfs::openat(self.fd(), name, flags, Mode::empty())
                    .map_err(|e| self.err("open", name, e))?;
                let node = Node::path(fd.as_fd());
                let st = node.stat().map_err(|e| self.err("stat", name, e))?;
                if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
                    node.chmod((st.st_mode & 0o7777) | 0o700)
                        .map_err(|e| self.err("chmod", name, e))?;
                }
                self.open_subdir(name)
            }
            other => other,
        }
    }
}
