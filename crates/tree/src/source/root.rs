//! The source root: a held directory fd, and every later open beneath it confined the
//! way the target's are (`openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`, or a walk of
//! `O_NOFOLLOW` opens where the kernel lacks it).
//!
//! The source is the application's own volume, but its contents change while Ferry
//! reads them: a stage pass runs beside the live application, and a served volume
//! answers pulls. A directory swapped for a symlink between the walk and the read must
//! not make Ferry read, and send, a file from outside the tree (a service-account token,
//! the TLS key of the pod).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ferry_proto::{RelPath, Timestamp};
use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use crate::error::{io_err, shown, TreeError};
use crate::proc_fd;
use crate::volume::root::{open_beneath, open_beneath_with};
use crate::volume::Existing;

/// The directory a walk starts from, shared by the walker and the readers of files.
#[derive(Clone, Debug)]
pub struct SourceRoot {
    fd: Arc<OwnedFd>,
    path: PathBuf,
}

/// A source file opened for reading, and what `fstat` said of it then (so the reader
/// can tell it is still the file that was listed without asking again).
#[derive(Debug)]
pub struct OpenedFile {
    pub file: std::fs::File,
    pub size: u64,
    pub mtime: Timestamp,
    /// Bytes allocated on disk (`st_blocks * 512`).
    pub allocated: u64,
}

/// Flags of every source file opened for reading. `O_NONBLOCK` keeps the open from
/// hanging on a FIFO that replaced the file; reads of a regular file ignore it.
const FILE_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC)
    .union(OFlags::NONBLOCK);

impl SourceRoot {
    /// Opens `path`, which must be a directory (symlinks in `path` itself are followed:
    /// the operator chose it).
    pub fn open(path: &Path) -> Result<SourceRoot, TreeError> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let fd =
            rfs::open(path, flags, Mode::empty()).map_err(|e| io_err("open", ".".into(), e))?;
        Ok(SourceRoot {
            fd: Arc::new(fd),
            path: path.to_path_buf(),
        })
    }

    /// The path it was opened at (for messages; never used to reach a file).
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Opens directory `rel` (the root for the root) without crossing a symlink.
    pub(crate) fn open_dir(&self, rel: &RelPath) -> Result<OwnedFd, TreeError> {
        if rel.is_root() {
            return rustix::io::fcntl_dupfd_cloexec(self.fd(), 0)
                .map_err(|e| io_err("open", ".".into(), e));
        }
        open_beneath(self.fd(), rel)
    }

    /// Opens file `rel` for reading, `O_NOATIME` when permitted (we own the file or are
    /// root). Refuses a symlink anywhere on the way, and anything but a regular file.
    pub fn open_file(&self, rel: &RelPath) -> Result<OpenedFile, TreeError> {
        let err = |op, e| io_err(op, shown(rel, b""), e);
        let fd = match open_beneath_with(self.fd(), rel, FILE_FLAGS | OFlags::NOATIME) {
            Err(Errno::PERM) => open_beneath_with(self.fd(), rel, FILE_FLAGS),
            other => other,
        }
        .map_err(|e| err("open", e))?;
        let st = rfs::fstat(&fd).map_err(|e| err("stat", e))?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Err(err("open", Errno::INVAL));
        }
        let existing = Existing::from_stat(&st);
        #[allow(clippy::unnecessary_cast)]
        Ok(OpenedFile {
            file: std::fs::File::from(fd),
            size: existing.size,
            mtime: existing.mtime,
            allocated: (st.st_blocks as u64).saturating_mul(512),
        })
    }

    /// `lstat` of `rel` now, as `(size, mtime)`, reached without crossing a symlink.
    pub fn stat(&self, rel: &RelPath) -> Result<(u64, Timestamp), TreeError> {
        let err = |e| io_err("stat", shown(rel, b""), e);
        let st = match rel.split_last() {
            None => rfs::fstat(self.fd()).map_err(err)?,
            Some((parent, name)) => {
                let dir = self.open_dir(&parent)?;
                rfs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW).map_err(err)?
            }
        };
        let existing = Existing::from_stat(&st);
        Ok((existing.size, existing.mtime))
    }
}

/// How the walk names an entry to the calls that only take paths (`llistxattr`,
/// `lgetxattr`) without looking up any component of its directory's path again, which
/// a swapped symlink could redirect outside the tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum XattrPaths {
    /// The walking thread has a working directory of its own (`unshare(CLONE_FS)`) and
    /// moves it into each directory it lists (`fchdir`): the bare name is the path.
    OwnCwd,
    /// Through `/proc/self/fd/N/NAME`: the kernel resolves the fd itself. Costs about
    /// 2 µs an entry more (procfs lookups); used where `unshare` is not permitted (the
    /// default seccomp profiles of container runtimes refuse it).
    ProcFd,
    /// Neither is available (no `/proc`): the directory's path, as rsync does.
    DirPath,
}

impl XattrPaths {
    /// Gives the calling thread a working directory of its own if it may, else picks
    /// the best remaining way. Call it on the thread that walks.
    pub(crate) fn for_this_thread() -> XattrPaths {
        // SAFETY: CLONE_FS unshares only the working directory, root and umask of this
        // thread; no file descriptor table is involved (the unsafety of `unshare` is in
        // CLONE_FILES).
        #[allow(unsafe_code)]
        let unshared = unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::FS) };
        match unshared {
            Ok(()) => XattrPaths::OwnCwd,
            Err(_) => XattrPaths::without_own_cwd(),
        }
    }

    /// The way for a thread that has no working directory of its own: through `/proc`
    /// if it is mounted, else by the directory's path.
    pub(crate) fn without_own_cwd() -> XattrPaths {
        if proc_fd::available() {
            XattrPaths::ProcFd
        } else {
            XattrPaths::DirPath
        }
    }

    /// Moves to directory `dir` (just opened for listing), where that is the way; if
    /// the move fails, falls back to `/proc` for this directory.
    pub(crate) fn enter(self, dir: BorrowedFd<'_>) -> XattrPaths {
        match self {
            XattrPaths::OwnCwd if rustix::process::fchdir(dir).is_err() => {
                XattrPaths::without_own_cwd()
            }
            other => other,
        }
    }

    /// The path of `name` in `dir` (whose path is `dir_path`), for this way.
    pub(crate) fn path(self, dir: BorrowedFd<'_>, dir_path: &Path, name: &[u8]) -> PathBuf {
        let name = std::ffi::OsStr::from_bytes(name);
        match self {
            XattrPaths::OwnCwd => PathBuf::from(name),
            XattrPaths::ProcFd => PathBuf::from(proc_fd::path(dir)).join(name),
            XattrPaths::DirPath => dir_path.join(name),
        }
    }
}
