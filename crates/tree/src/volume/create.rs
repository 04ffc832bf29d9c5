//! Creating entries: always at a fresh temp name (`O_EXCL`-style), attributes applied
//! there, then renamed over the final name. Whatever was at the final name (a file,
//! a symlink, a directory) is replaced, never followed or written through.

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;

use ferry_proto::{Meta, PathError, SpecialKind};
use rustix::fs::{self as rfs, AtFlags, Mode, OFlags};
use rustix::io::Errno;

use super::dir::{checked, TEMP_PREFIX};
use super::existing::{file_type_of, NotApplied};
use super::temp::TempFile;
use super::Dir;
use crate::caps::Cap;
use crate::error::TreeError;
use crate::{link_fd, proc_fd};

/// Longest name Linux accepts in one component.
const NAME_MAX: usize = 255;
/// How many temp names to try before giving up on `EEXIST`.
const TEMP_ATTEMPTS: usize = 16;

impl Dir {
    /// Creates a new temp file for `name`: `O_CREAT|O_EXCL|O_WRONLY|O_NOFOLLOW`, mode
    /// 0o600, named `.ferry.<name>.<8 hex>` (or `.ferry.<16 hex of BLAKE3(name)>.<8 hex>`
    /// when that would be too long). Never under the final name.
    pub fn create_temp(&self, name: &[u8]) -> Result<TempFile, TreeError> {
        checked(name)?;
        let flags =
            OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let (fd, temp) = self.at_temp_name(name, "create", |temp| {
            rfs::openat(self.fd(), temp, flags, Mode::from_raw_mode(0o600))
        })?;
        Ok(TempFile::new(std::fs::File::from(fd), temp, self, 0))
    }

    /// Creates an unnamed file for `name` in this directory (`O_TMPFILE`) with the
    /// permission bits of `mode` (never set-id or sticky; the umask and a default ACL
    /// apply), so that [`TempFile::apply_meta`] has no `fchmod` to make when that already
    /// is the source's mode (it checks): nothing is visible until [`TempFile::commit`]
    /// links it at `name`, whatever its mode, and a session cut
    /// at any point (even by SIGKILL) leaves nothing behind. `Ok(None)` where that cannot
    /// be relied on, so the caller uses [`Dir::create_partial`]: the filesystem has no
    /// `O_TMPFILE` (NFS, FUSE), this process cannot link an unnamed file through `/proc`
    /// (no `/proc`, a sandbox: tried once, see `unnamed_links_work`), or it may have to
    /// link a file it gave to another owner without `CAP_FOWNER` (with
    /// `fs.protected_hardlinks` the kernel may refuse that link after the data is written).
    pub fn create_unnamed(&self, name: &[u8], mode: u32) -> Result<Option<TempFile>, TreeError> {
        checked(name)?;
        if UNNAMED_REFUSED.load(Ordering::Relaxed)
            || (self.privileges().applies_owners() && !self.privileges().has(Cap::Fowner))
            || !unnamed_links_work(self)
        {
            return Ok(None);
        }
        match self.open_unnamed(mode & 0o777) {
            Ok(fd) => Ok(Some(TempFile::unnamed(std::fs::File::from(fd), name, self))),
            // EOPNOTSUPP: the filesystem has no O_TMPFILE (NFS, FUSE); EISDIR: a kernel
            // older than 3.11 took it for O_DIRECTORY.
            Err(Errno::OPNOTSUPP | Errno::ISDIR | Errno::INVAL) => Ok(None),
            Err(e) => Err(self.err("create", name, e)),
        }
    }

    /// An `O_TMPFILE` of permission bits `mode`: the fd writes whatever the mode, which
    /// only applies to later opens.
    fn open_unnamed(&self, mode: u32) -> Result<OwnedFd, Errno> {
        let flags = OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC;
        rfs::openat(self.fd(), c".", flags, Mode::from_raw_mode(mode))
    }

    /// Creates or replaces `name` as a symlink to `target` (opaque bytes, never
    /// resolved). Ownership and mtime are set on the link itself before it is renamed
    /// into place.
    pub fn symlink(
        &self,
        name: &[u8],
        target: &[u8],
        meta: &Meta,
    ) -> Result<NotApplied, TreeError> {
        checked(name)?;
        if target.is_empty() {
            return Err(TreeError::from(PathError::Empty));
        }
        if target.contains(&0) {
            let shown = ferry_proto::escape(target);
            return Err(TreeError::from(PathError::BadByte(shown)));
        }
        let ((), temp) = self.at_temp_name(name, "symlink", |temp| {
            rfs::symlinkat(target, self.fd(), temp)
        })?;
        self.finish(&temp, name, |dir| dir.apply_fresh(&temp, meta, true))
    }

    /// Creates or replaces `name` as a hard link to `leader_name` in `leader_dir`.
    /// Nothing is followed: `linkat` without `AT_SYMLINK_FOLLOW` links whatever inode
    /// the leader name holds. Does nothing if `name` already is that inode.
    pub fn hard_link(
        &self,
        name: &[u8],
        leader_dir: &Dir,
        leader_name: &[u8],
    ) -> Result<(), TreeError> {
        checked(name)?;
        checked(leader_name)?;
        if let (Some(here), Some(leader)) = (self.stat(name)?, leader_dir.stat(leader_name)?) {
            if here.dev == leader.dev && here.ino == leader.ino {
                return Ok(());
            }
        }
        let ((), temp) = self.at_temp_name(name, "link", |temp| {
            rfs::linkat(
                leader_dir.fd(),
                leader_name,
                self.fd(),
                temp,
                AtFlags::empty(),
            )
        })?;
        self.finish(&temp, name, |_| Ok(()))?;
        // If `name` became the same inode meanwhile, rename() did nothing and left the
        // temp name behind.
        let _ = rfs::unlinkat(self.fd(), temp.as_slice(), AtFlags::empty());
        Ok(())
    }

    /// Creates or replaces a FIFO, socket or device node. Devices need
    /// `CAP_MKNOD`; without it nothing is created and `special` is reported.
    pub fn special(
        &self,
        name: &[u8],
        kind: SpecialKind,
        rdev: u64,
        meta: &Meta,
    ) -> Result<NotApplied, TreeError> {
        checked(name)?;
        let device = matches!(kind, SpecialKind::CharDevice | SpecialKind::BlockDevice);
        if device && !self.privileges().has(Cap::Mknod) {
            return Ok(NotApplied::special());
        }
        let rdev = if device { rdev } else { 0 };
        let made = self.at_temp_name(name, "mknod", |temp| {
            rfs::mknodat(
                self.fd(),
                temp,
                file_type_of(kind),
                Mode::from_raw_mode(0o600),
                rdev,
            )
        });
        let ((), temp) = match made {
            Ok(made) => made,
            Err(e) if device && is_errno(&e, Errno::PERM) => return Ok(NotApplied::special()),
            Err(e) => return Err(e),
        };
        self.finish(&temp, name, |dir| dir.apply_fresh(&temp, meta, false))
    }

    /// Runs `make` at fresh temp names until one does not exist yet.
    pub(crate) fn at_temp_name<T>(
        &self,
        name: &[u8],
        op: &'static str,
        mut make: impl FnMut(&[u8]) -> Result<T, Errno>,
    ) -> Result<(T, Vec<u8>), TreeError> {
        let mut attempt = 0;
        loop {
            let temp = temp_name(name);
            match make(&temp) {
                Ok(made) => return Ok((made, temp)),
                Err(Errno::EXIST) if attempt < TEMP_ATTEMPTS => attempt += 1,
                Err(e) => return Err(self.err(op, &temp, e)),
            }
        }
    }

    /// Applies attributes at the temp name, then renames it over `name`; the temp
    /// name is removed if anything fails.
    fn finish<T>(
        &self,
        temp: &[u8],
        name: &[u8],
        attrs: impl FnOnce(&Dir) -> Result<T, TreeError>,
    ) -> Result<T, TreeError> {
        let done = attrs(self).and_then(|t| self.install(temp, name).map(|()| t));
        if done.is_err() {
            let _ = rfs::unlinkat(self.fd(), temp, AtFlags::empty());
        }
        done
    }

    /// `renameat(temp -> name)`; a directory at `name` is removed first (rename cannot
    /// replace a directory with a non-directory).
    pub(crate) fn install(&self, temp: &[u8], name: &[u8]) -> Result<(), TreeError> {
        self.check_in_volume()?;
        match rfs::renameat(self.fd(), temp, self.fd(), name) {
            Ok(()) => Ok(()),
            Err(Errno::ISDIR) => {
                self.remove(name)?;
                rfs::renameat(self.fd(), temp, self.fd(), name)
                    .map_err(|e| self.err("rename", name, e))
            }
            Err(e) => Err(self.err("rename", name, e)),
        }
    }
}

/// Set when linking an unnamed file failed for any reason but a name in the way: from
/// then on this process writes every file under a partial name.
pub(crate) static UNNAMED_REFUSED: AtomicBool = AtomicBool::new(false);

/// Whether this process can give an unnamed file a name: tried once, in the first
/// directory that asks, by linking one at a temp name and removing it. A filesystem
/// without `O_TMPFILE` answers `true` here and `None` at each create.
fn unnamed_links_work(dir: &Dir) -> bool {
    static WORKS: OnceLock<bool> = OnceLock::new();
    *WORKS.get_or_init(|| {
        if !proc_fd::available() {
            return false;
        }
        let Ok(fd) = dir.open_unnamed(0o600) else {
            return true;
        };
        let linked = dir.at_temp_name(b"probe", "link", |temp| {
            link_fd::link_at(&fd, dir.fd(), temp)
        });
        match linked {
            Ok(((), temp)) => {
                let _ = rfs::unlinkat(dir.fd(), temp.as_slice(), AtFlags::empty());
                true
            }
            Err(e) => {
                tracing::info!(error = %e, "unnamed temp files cannot be linked here; using partial files");
                false
            }
        }
    })
}

/// `CAP_FOWNER` in the effective set: lets root link a file it chowned to someone else
/// whatever `fs.protected_hardlinks` says.
fn is_errno(e: &TreeError, errno: Errno) -> bool {
    matches!(e, TreeError::Io { source, .. } if source.raw_os_error() == Some(errno.raw_os_error()))
}

/// `.ferry.<name>.<8 hex>`, or `.ferry.<16 hex of BLAKE3(name)>.<8 hex>` if too long.
pub(crate) fn temp_name(name: &[u8]) -> Vec<u8> {
    let suffix = random_hex();
    let mut out = Vec::with_capacity(TEMP_PREFIX.len() + name.len() + 1 + suffix.len());
    out.extend_from_slice(TEMP_PREFIX);
    if TEMP_PREFIX.len() + name.len() + 1 + suffix.len() <= NAME_MAX {
        out.extend_from_slice(name);
    } else {
        let hash = blake3::hash(name);
        out.extend_from_slice(&hash.to_hex().as_bytes()[..16]);
    }
    out.push(b'.');
    out.extend_from_slice(&suffix);
    out
}

/// Eight hex digits that differ between calls and processes. They need not be
/// unpredictable: every temp name is created exclusively and never followed, so a
/// name someone else took only costs a retry.
fn random_hex() -> [u8; 8] {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = blake3::Hasher::new();
    hasher.update(&std::process::id().to_le_bytes());
    hasher.update(&COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    hasher.update(&now.as_nanos().to_le_bytes());
    let hex = hasher.finalize().to_hex();
    let mut out = [0u8; 8];
    out.copy_from_slice(&hex.as_bytes()[..8]);
    out
}
