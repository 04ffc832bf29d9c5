//! The source root: a held directory fd, and every later open beneath it confined the
//! way the target's are (`openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`, or a walk of
//! `O_NOFOLLOW` opens where the kernel lacks it).
//!
//! The source is the application's own volume, but its contents change while Ferry
//! reads them: a stage pass runs beside the live application, and a served volume
//! answers pulls. A directory swapped for a symlink between the walk and the read must
//! not make Ferry read, and send, a file from outside the tree (a service-account token,
//! the TLS key of the pod).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ferry_proto::{RelPath, Timestamp};
use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use crate::error::{io_err, shown, TreeError};
use crate::target::volume::{open_beneath, open_beneath_with};
use crate::target::Existing;

/// The directory a walk starts from, shared by the walker and the readers of files.
#[derive(Clone, Debug)]
pub struct SourceRoot {
    fd: Arc<OwnedFd>,
    path: PathBuf,
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
    pub fn open_file(&self, rel: &RelPath) -> Result<std::fs::File, TreeError> {
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
        Ok(std::fs::File::from(fd))
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

/// A path naming `name` in the open directory `dir` through `/proc/self/fd`, for the
/// calls that only take paths (`llistxattr`, `lgetxattr`): the kernel resolves the fd
/// itself, so no component of the directory's own path is looked up again. Where
/// `/proc` is not mounted, the directory's path `fallback` is used instead.
pub(crate) fn path_in(dir: BorrowedFd<'_>, fallback: &Path, name: &[u8]) -> PathBuf {
    static PROC: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let name = std::ffi::OsStr::from_bytes(name);
    if *PROC.get_or_init(|| Path::new("/proc/self/fd").is_dir()) {
        PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd())).join(name)
    } else {
        fallback.join(name)
    }
}
