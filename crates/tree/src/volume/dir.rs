//! A held directory fd on the target. Every name passed in is a single checked
//! component resolved relative to this fd with no-follow semantics, so nothing a
//! caller passes can reach outside the volume.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use ferry_proto::{check_name, escape, Limits, RelPath, Xattr};
use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use super::existing::Existing;
use super::node::Node;
use super::root::{dir_open_error, open_beneath, DIR_FLAGS};
use super::Privileges;
use crate::caps::Cap;
use crate::error::{io_err, shown, TreeError};
use crate::xattr;

/// Prefix of every name Ferry creates before renaming it into place.
pub(crate) const TEMP_PREFIX: &[u8] = b".ferry.";

/// A directory on the target volume: a held fd plus its path (for messages).
#[derive(Debug)]
pub struct Dir {
    fd: Arc<OwnedFd>,
    path: RelPath,
    privileges: Privileges,
    /// The volume root, to check that this directory is still beneath it.
    root: Arc<OwnedFd>,
    /// When [`Dir::check_in_volume`] last found it there, in ms since [`epoch`].
    checked_at: AtomicU64,
    /// Entries put in place since that check.
    since_check: AtomicU32,
}

/// How long a directory found in the volume is taken to still be there. A held fd
/// follows its directory wherever it is renamed, out of the volume too (a local user may
/// do that mid-session); every entry put in place checks it, at most this often...
const IN_VOLUME_RECHECK: Duration = Duration::from_millis(50);
/// ...or after this many entries, whichever comes first: small files batched many to a
/// frame land hundreds in 50 ms, and this bounds how many can follow a directory out of
/// the volume by count, not by how fast they come (a check costs an `openat2` and two
/// `fstat`s, a few µs against this many files' creates and writes).
const IN_VOLUME_RECHECK_ENTRIES: u32 = 32;

impl Dir {
    pub(crate) fn from_parts(
        fd: Arc<OwnedFd>,
        path: RelPath,
        privileges: Privileges,
        root: Arc<OwnedFd>,
    ) -> Dir {
        Dir {
            fd,
            path,
            privileges,
            root,
            checked_at: AtomicU64::new(0),
            since_check: AtomicU32::new(0),
        }
    }

    /// Checks that this directory is still at its path beneath the volume root (it was
    /// not renamed out of the volume, or replaced): before anything is put in place in
    /// it. A directory that left is [`TreeError::Moved`], and nothing more is written
    /// into it.
    pub(crate) fn check_in_volume(&self) -> Result<(), TreeError> {
        if self.path.is_root() {
            return Ok(());
        }
        let now = epoch().elapsed().as_millis() as u64 + 1;
        let last = self.checked_at.load(Ordering::Relaxed);
        let entries = self.since_check.fetch_add(1, Ordering::Relaxed);
        if last != 0
            && now.saturating_sub(last) < IN_VOLUME_RECHECK.as_millis() as u64
            && entries < IN_VOLUME_RECHECK_ENTRIES
        {
            return Ok(());
        }
        let here = open_beneath(self.root.as_fd(), &self.path)
            .ok()
            .and_then(|fd| rfs::fstat(&fd).ok());
        let held = rfs::fstat(self.fd()).map_err(|e| self.err("stat", b"", e))?;
        match here {
            Some(st) if st.st_dev == held.st_dev && st.st_ino == held.st_ino => {
                self.checked_at.store(now, Ordering::Relaxed);
                self.since_check.store(0, Ordering::Relaxed);
                Ok(())
            }
            _ => Err(TreeError::Moved {
                path: escape(self.path.as_bytes()),
            }),
        }
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    pub(crate) fn shared_fd(&self) -> &Arc<OwnedFd> {
        &self.fd
    }

    pub(crate) fn privileges(&self) -> Privileges {
        self.privileges
    }

    pub(crate) fn err(&self, op: &'static str, name: &[u8], e: Errno) -> TreeError {
        io_err(op, shown(&self.path, name), e)
    }

    /// This directory's path relative to the volume root.
    pub fn path(&self) -> &RelPath {
        &self.path
    }

    /// What is at `name` (`fstatat(AT_SYMLINK_NOFOLLOW)`); `None` if nothing is.
    pub fn stat(&self, name: &[u8]) -> Result<Option<Existing>, TreeError> {
        checked(name)?;
        match rfs::statat(self.fd(), name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(Existing::from_stat(&st))),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(self.err("stat", name, e)),
        }
    }

    /// The target of the symlink `name`, as bytes.
    pub fn read_link(&self, name: &[u8]) -> Result<Vec<u8>, TreeError> {
        checked(name)?;
        rfs::readlinkat(self.fd(), name, Vec::new())
            .map(|t| t.into_bytes())
            .map_err(|e| self.err("readlink", name, e))
    }

    /// Extended attributes of the file or directory `name`, sorted by name, without
    /// `security.selinux`; empty for a symlink.
    pub fn xattrs(&self, name: &[u8]) -> Result<Vec<Xattr>, TreeError> {
        checked(name)?;
        let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rfs::openat(self.fd(), name, flags, Mode::empty())
            .map_err(|e| self.err("open", name, e))?;
        let node = Node::path(fd.as_fd());
        let st = node.stat().map_err(|e| self.err("stat", name, e))?;
        if FileType::from_raw_mode(st.st_mode) == FileType::Symlink {
            return Ok(Vec::new());
        }
        match node.with_xattrs(xattr::read_all) {
            None => Ok(Vec::new()),
            Some(read) => read.map_err(|e| self.err("xattr", name, e)),
        }
    }

    /// All names in the directory except `.` and `..`, in no particular order.
    pub fn names(&self) -> Result<Vec<Vec<u8>>, TreeError> {
        // `read_from` reopens "." so this fd's offset is never shared or moved.
        let mut entries =
            rfs::Dir::read_from(self.fd()).map_err(|e| self.err("readdir", b"", e))?;
        let mut names = Vec::new();
        while let Some(entry) = entries.read() {
            let entry = entry.map_err(|e| self.err("readdir", b"", e))?;
            let name = entry.file_name().to_bytes();
            if name != b"." && name != b".." {
                names.push(name.to_vec());
            }
        }
        Ok(names)
    }

    /// Opens the subdirectory `name`; a symlink or non-directory is
    /// [`TreeError::Escape`].
    pub fn open_subdir(&self, name: &[u8]) -> Result<Dir, TreeError> {
        checked(name)?;
        let path = self.path.join(name, &Limits::default())?;
        let fd = rfs::openat(self.fd(), name, DIR_FLAGS, Mode::empty())
            .map_err(|e| dir_open_error(e, path.as_bytes()))?;
        Ok(Dir::from_parts(
            Arc::new(fd),
            path,
            self.privileges,
            self.root.clone(),
        ))
    }

    /// Makes `name` a directory: opens it if it is one; otherwise removes whatever is
    /// there (a symlink is replaced, never followed) and creates it with mode 0o700,
    /// so the owner can fill it (the final mode comes from [`Dir::set_own_meta`]).
    /// Returns the directory and whether it was created.
    pub fn ensure_dir(&self, name: &[u8]) -> Result<(Dir, bool), TreeError> {
        checked(name)?;
        // Another process may swap what is at `name` between our calls; a few rounds
        // settle it, and each round is confined on its own.
        let mut rounds = 0;
        loop {
            rounds += 1;
            match rfs::statat(self.fd(), name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {
                    match self.open_subdir_fillable(name) {
                        Ok(dir) => {
                            dir.make_fillable(st.st_mode)?;
                            return Ok((dir, false));
                        }
                        Err(TreeError::Escape { .. }) if rounds < 4 => continue,
                        Err(e) => return Err(e),
                    }
                }
                Ok(_) => {
                    self.remove(name)?;
                }
                Err(Errno::NOENT) => {}
                Err(e) => return Err(self.err("stat", name, e)),
            }
            self.check_in_volume()?;
            match rfs::mkdirat(self.fd(), name, Mode::from_raw_mode(0o700)) {
                Ok(()) => return Ok((self.open_subdir(name)?, true)),
                Err(Errno::EXIST) if rounds < 4 => continue,
                Err(e) => return Err(self.err("mkdir", name, e)),
            }
        }
    }

    /// Without privilege, a directory whose final mode lacks owner write (set by a
    /// previous pass) could not be filled; open it up until `set_own_meta` runs.
    fn make_fillable(&self, st_mode: u32) -> Result<(), TreeError> {
        if self.privileges.has(Cap::DacOverride) || st_mode & 0o700 == 0o700 {
            return Ok(());
        }
        let mode = Mode::from_raw_mode((st_mode & 0o7777) | 0o700);
        rfs::fchmod(self.fd(), mode).map_err(|e| self.err("chmod", b"", e))
    }

    /// Opens the regular file `name` for reading as a delta basis; `None` if it is
    /// missing or not a regular file (a symlink is never followed, a FIFO or device
    /// is never opened for reading).
    pub fn open_basis(&self, name: &[u8]) -> Result<Option<std::fs::File>, TreeError> {
        checked(name)?;
        let before = match rfs::statat(self.fd(), name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::RegularFile => st,
            Ok(_) | Err(Errno::NOENT) => return Ok(None),
            Err(e) => return Err(self.err("stat", name, e)),
        };
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
        let fd = match rfs::openat(self.fd(), name, flags | OFlags::NOCTTY, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT | Errno::LOOP | Errno::NXIO) => return Ok(None),
            Err(e) => return Err(self.err("open", name, e)),
        };
        let st = rfs::fstat(&fd).map_err(|e| self.err("stat", name, e))?;
        let same = st.st_dev == before.st_dev && st.st_ino == before.st_ino;
        if !same || FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Ok(None);
        }
        Ok(Some(std::fs::File::from(fd)))
    }

    /// Whether `name` is one of Ferry's temp names (left behind by an interrupted run,
    /// for the engine to clean up).
    pub fn is_temp_name(name: &[u8]) -> bool {
        // `.ferry.<something>.<8 lowercase hex>`: stricter than the prefix alone, so a
        // user's own `.ferry.conf` is not mistaken for debris.
        let Some(rest) = name.strip_prefix(TEMP_PREFIX) else {
            return false;
        };
        let Some(split) = rest.len().checked_sub(9).filter(|&s| s > 0) else {
            return false;
        };
        let (_, tail) = rest.split_at(split);
        tail[0] == b'.'
            && tail[1..]
                .iter()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    }
}

/// A fixed instant of this process, for [`Dir`]'s check times.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Re-checks a caller's name: one component, not `.`/`..`, no `/` or NUL.
pub(crate) fn checked(name: &[u8]) -> Result<(), TreeError> {
    check_name(name, &Limits::default()).map_err(TreeError::from)
}
