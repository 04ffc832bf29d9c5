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
use crate::caps::{Cap, Caps};
use crate::error::{io_err, shown, TreeError};

/// What this process may do on the target beyond what its uid owns: the capabilities
/// it holds, each asked for by the operation that needs it (a root without `CAP_CHOWN`
/// cannot chown; a uid-1001 process with it can).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Privileges {
    pub caps: Caps,
}

impl Privileges {
    /// Every capability Ferry uses (a root process with a full set).
    pub const ALL: Privileges = Privileges { caps: Caps::ALL };
    /// None (a plain user).
    pub const NONE: Privileges = Privileges { caps: Caps::NONE };

    /// The effective set of the calling thread, as the kernel will check it.
    pub fn current() -> Privileges {
        Privileges {
            caps: Caps::effective(),
        }
    }

    pub fn has(self, cap: Cap) -> bool {
        self.caps.has(cap)
    }

    /// Whether numeric owners are applied (`CAP_CHOWN`): what a target compares and
    /// counts as not applied.
    pub fn applies_owners(self) -> bool {
        self.has(Cap::Chown)
    }
}

/// The receiving volume: a held fd on its root directory.
#[derive(Debug)]
pub struct Volume {
    pub(super) root: Arc<OwnedFd>,
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

    /// Creates the volume root directory if it is missing (its parent must exist, as for
    /// rsync's destination), then opens it as [`Volume::open`] does. A new root is made
    /// `0777` less the umask, as `mkdir` makes it; the session then gives it the source
    /// root's attributes.
    pub fn create(path: &Path, privileges: Privileges) -> Result<Volume, TreeError> {
        match rfs::mkdir(path, Mode::from_raw_mode(0o777)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(io_err("create", path.display().to_string(), e)),
        }
        Volume::open(path, privileges)
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
        Ok(Dir::from_parts(
            Arc::new(fd),
            rel.clone(),
            self.privileges,
            self.root.clone(),
        ))
    }

    /// The size of the filesystem the volume is on, in bytes (`statvfs`: `f_blocks *
    /// f_frsize`): no file larger than this can be written there, however sparse.
    pub fn capacity(&self) -> Result<u64, TreeError> {
        let stat = rfs::fstatvfs(&*self.root).map_err(|e| io_err("statvfs", ".".into(), e))?;
        Ok(stat.f_blocks.saturating_mul(stat.f_frsize))
    }

    /// Checks the volume is writable: creates and removes a temp file in the root.
    pub fn check_writable(&self) -> Result<(), TreeError> {
        let root = self.open_dir(&RelPath::root())?;
        let mut temp = root.create_temp(b"probe")?;
        temp.unlink()
    }
}

/// Opens directory `rel` beneath `root` without crossing a symlink or leaving the tree.
pub(crate) fn open_beneath(root: BorrowedFd<'_>, rel: &RelPath) -> Result<OwnedFd, TreeError> {
    open_beneath_with(root, rel, DIR_FLAGS).map_err(|e| dir_open_error(e, rel.as_bytes()))
}

/// Opens `rel` beneath `root` with `flags` (which must hold `O_NOFOLLOW`) without
/// crossing a symlink or leaving the tree: `openat2` with `RESOLVE_BENEATH |
/// RESOLVE_NO_SYMLINKS`, or one `openat(O_NOFOLLOW)` per component where the kernel lacks
/// it. A symlink anywhere on the way is `ELOOP` (or `ENOTDIR`/`EXDEV`).
pub(crate) fn open_beneath_with(
    root: BorrowedFd<'_>,
    rel: &RelPath,
    flags: OFlags,
) -> Result<OwnedFd, Errno> {
    debug_assert!(flags.contains(OFlags::NOFOLLOW));
    if rel.is_root() {
        return rfs::openat(root, ".", flags, Mode::empty());
    }
    if !NO_OPENAT2.load(Ordering::Relaxed) {
        let resolve =
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
        let mut attempts = 0;
        loop {
            match rfs::openat2(root, rel.as_bytes(), flags, Mode::empty(), resolve) {
                Ok(fd) => return Ok(fd),
                // A rename raced with the lookup; the kernel asks us to try again.
                Err(Errno::AGAIN) if attempts < 8 => attempts += 1,
                // Seccomp profiles of older container runtimes answer EPERM for
                // syscalls they do not know; the walk below is just as confined.
                // An open of a file for reading is refused with EPERM when O_NOATIME is
                // not ours to ask: that is the caller's to retry, not a missing openat2.
                Err(Errno::PERM) if flags.contains(OFlags::NOATIME) => return Err(Errno::PERM),
                Err(Errno::NOSYS) | Err(Errno::PERM) => {
                    NO_OPENAT2.store(true, Ordering::Relaxed);
                    break;
                }
                Err(e) => return Err(e),
            }
        }
    }
    walk_components(root, rel, flags)
}

/// The fallback: one `openat(O_NOFOLLOW | O_DIRECTORY)` per directory component, then
/// the last with `flags`. `RelPath` already refused `..`, `.` and empty components, so
/// each step goes one level down.
fn walk_components(root: BorrowedFd<'_>, rel: &RelPath, flags: OFlags) -> Result<OwnedFd, Errno> {
    let Some((parent, last)) = rel.split_last() else {
        return rfs::openat(root, ".", flags, Mode::empty());
    };
    let mut current: Option<OwnedFd> = None;
    for component in parent.components() {
        let dir = current.as_ref().map_or(root, |fd| fd.as_fd());
        current = Some(rfs::openat(dir, component, DIR_FLAGS, Mode::empty())?);
    }
    let dir = current.as_ref().map_or(root, |fd| fd.as_fd());
    rfs::openat(dir, last, flags, Mode::empty())
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
    fn capacity_is_the_filesystems_size() {
        let base = tempfile::tempdir().unwrap();
        let volume = Volume::open(base.path(), Privileges::current()).unwrap();
        let capacity = volume.capacity().expect("statvfs");
        let stat = rfs::statvfs(base.path()).unwrap();
        assert_eq!(capacity, stat.f_blocks * stat.f_frsize);
        assert!(capacity > 0);
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
        let walk = |r: &RelPath| {
            walk_components(root.as_fd(), r, DIR_FLAGS).map_err(|e| dir_open_error(e, b"x"))
        };
        assert!(walk(&rel("a/b")).is_ok());
        assert!(walk(&RelPath::root()).is_ok());
        for bad in ["a/up", "a/up/etc", "a/side", "a/file", "a/file/x"] {
            assert!(
                matches!(walk(&rel(bad)), Err(TreeError::Escape { .. })),
                "{bad}"
            );
            let r = open_beneath(root.as_fd(), &rel(bad));
            assert!(matches!(r, Err(TreeError::Escape { .. })), "{bad}");
        }
        assert!(walk(&rel("a/none")).is_err());
    }

    #[test]
    fn file_opens_beneath_the_root_cross_no_symlink_either_way() {
        let base = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(base.path().join("a/b")).unwrap();
        std::fs::write(base.path().join("a/b/file"), b"inside").unwrap();
        std::os::unix::fs::symlink("/etc", base.path().join("a/up")).unwrap();
        std::os::unix::fs::symlink("b", base.path().join("a/side")).unwrap();
        std::os::unix::fs::symlink("b/file", base.path().join("a/link")).unwrap();
        let root = rfs::open(
            base.path(),
            OFlags::RDONLY | OFlags::DIRECTORY,
            Mode::empty(),
        )
        .unwrap();
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        assert!(open_beneath_with(root.as_fd(), &rel("a/b/file"), flags).is_ok());
        assert!(walk_components(root.as_fd(), &rel("a/b/file"), flags).is_ok());
        for bad in ["a/up/passwd", "a/side/file", "a/link"] {
            let r = open_beneath_with(root.as_fd(), &rel(bad), flags);
            assert!(r.is_err(), "{bad} opened through a symlink");
            let r = walk_components(root.as_fd(), &rel(bad), flags);
            assert!(
                r.is_err(),
                "{bad} opened through a symlink (component walk)"
            );
        }
    }
}
