//! The volume root: the one path-based open on the target. Everything after it goes
//! through the root fd with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ferry_proto::{escape, RelPath};
use rustix::fs::{self as rfs, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use super::Dir;
use crate::error::{io_err, shown, TreeError};

/// Whether this process may apply ownership and create device nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Privileges {
    pub root: bool,
}

impl Privileges {
    /// Root is effective uid 0. (A root without `CAP_CHOWN`/`CAP_MKNOD` still gets
    /// `EPERM` from the kernel; those are counted as not applied, not fatal.)
    pub fn current() -> Privileges {
        Privileges {
            root: rustix::process::geteuid().is_root(),
        }
    }
}

/// The receiving volume: a held fd on its root directory.
#[derive(Debug)]
pub struct Volume {
    root: Arc<OwnedFd>,
    privileges: Privileges,
}

/// Flags for every directory opened on the target: never follow the final
/// component, never leak the fd into a child process.
pub(crate) const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// Set once `openat2` turned out to be missing (old kernel, or a seccomp profile
/// that does not know it), so later opens go straight to the component walk.
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

impl Volume {
    /// Opens the volume root directory. Symlinks in `path` itself are followed: the
    /// operator chose it. Fails if it is not a directory.
    pub fn open(path: &Path, privileges: Privileges) -> Result<Volume, TreeError> {
        let shown = path.display().to_string();
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let fd = rfs::open(path, flags, Mode::empty()).map_err(|e| io_err("open", shown, e))?;
        Ok(Volume {
            root: Arc::new(fd),
            privileges,
        })
    }

    pub fn privileges(&self) -> Privileges {
        self.privileges
    }

    /// Opens directory `rel` beneath the root (the root itself for `RelPath::root()`).
    /// A symlink or non-directory on the way is [`TreeError::Escape`].
    pub fn open_dir(&self, rel: &RelPath) -> Result<Dir, TreeError> {
        let fd = if rel.is_root() {
            rustix::io::fcntl_dupfd_cloexec(&*self.root, 0)
                .map_err(|e| io_err("open", ".".into(), e))?
        } else {
            open_beneath(self.root.as_fd(), rel)?
        };
        Ok(Dir::from_parts(Arc::new(fd), rel.clone(), self.privileges))
    }

    /// Checks the volume is writable: creates and removes a temp file in the root.
    pub fn check_writable(&self) -> Result<(), TreeError> {
        let root = self.open_dir(&RelPath::root())?;
        let mut temp = root.create_temp(b"probe")?;
        temp.unlink()
    }
}

/// Opens `rel` beneath `root` without crossing a symlink or leaving the tree.
fn open_beneath(root: BorrowedFd<'_>, rel: &RelPath) -> Result<OwnedFd, TreeError> {
    if !NO_OPENAT2.load(Ordering::Relaxed) {
        let resolve =
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
        let mut attempts = 0;
        loop {
            match rfs::openat2(root, rel.as_bytes(), DIR_FLAGS, Mode::empty(), resolve) {
                Ok(fd) => return Ok(fd),
                // A rename raced with the lookup; the kernel asks us to try again.
                Err(Errno::AGAIN) if attempts < 8 => attempts += 1,
                // Seccomp profiles of older container runtimes answer EPERM for
                // syscalls they do not know; the walk below is just as confined.
                Err(Errno::NOSYS) | Err(Errno::PERM) => {
                    NO_OPENAT2.store(true, Ordering::Relaxed);
                    break;
                }
                Err(e) => return Err(dir_open_error(e, rel.as_bytes())),
            }
        }
    }
    walk_components(root, rel)
}

/// The fallback: one `openat(O_NOFOLLOW | O_DIRECTORY)` per component. `RelPath`
/// already refused `..`, `.` and empty components, so each step goes one level down.
fn walk_components(root: BorrowedFd<'_>, rel: &RelPath) -> Result<OwnedFd, TreeError> {
    let mut current: Option<OwnedFd> = None;
    for component in rel.components() {
        let parent = current.as_ref().map_or(root, |fd| fd.as_fd());
        let next = rfs::openat(parent, component, DIR_FLAGS, Mode::empty())
            .map_err(|e| dir_open_error(e, rel.as_bytes()))?;
        current = Some(next);
    }
    match current {
        Some(fd) => Ok(fd),
        None => rustix::io::fcntl_dupfd_cloexec(root, 0).map_err(|e| io_err("open", ".".into(), e)),
    }
}

/// Maps the errors of a confined directory open: symlinks (`ELOOP`), leaving the
/// tree (`EXDEV`) and non-directories (`ENOTDIR`) are all [`TreeError::Escape`].
pub(crate) fn dir_open_error(e: Errno, path: &[u8]) -> TreeError {
    match e {
        Errno::LOOP | Errno::XDEV | Errno::NOTDIR => TreeError::Escape { path: escape(path) },
        e => io_err("open", shown(&RelPath::root(), path), e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_proto::Limits;

    fn rel(s: &str) -> RelPath {
        RelPath::new(s.as_bytes().to_vec(), &Limits::default()).unwrap()
    }

    #[test]
    fn component_walk_is_as_confined_as_openat2() {
        let base = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(base.path().join("a/b")).unwrap();
        std::fs::write(base.path().join("a/file"), b"").unwrap();
        std::os::unix::fs::symlink("/", base.path().join("a/up")).unwrap();
        std::os::unix::fs::symlink("b", base.path().join("a/side")).unwrap();
        let root = rfs::open(
            base.path(),
            OFlags::RDONLY | OFlags::DIRECTORY,
            Mode::empty(),
        )
        .unwrap();
        assert!(walk_components(root.as_fd(), &rel("a/b")).is_ok());
        assert!(walk_components(root.as_fd(), &RelPath::root()).is_ok());
        for bad in ["a/up", "a/up/etc", "a/side", "a/file", "a/file/x"] {
            let r = walk_components(root.as_fd(), &rel(bad));
            assert!(matches!(r, Err(TreeError::Escape { .. })), "{bad}");
            let r = open_beneath(root.as_fd(), &rel(bad));
            assert!(matches!(r, Err(TreeError::Escape { .. })), "{bad}");
        }
        assert!(walk_components(root.as_fd(), &rel("a/none")).is_err());
    }
}
