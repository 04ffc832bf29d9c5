//! Partial files: what an interrupted session had received of a file, kept under a name
//! that is the same every time (`.ferry.NAME.partial`), so the next session can verify
//! the prefix (BLAKE3, against the source's) and resume after it instead of from zero.
//! A partial is never under the final name; it is renamed there only when complete and
//! verified, like any temp file.
//!
//! A name proves nothing: a user's own file may be called `.ferry.big.partial` (the source
//! lists it, and it is copied like any other), and a local user of the target may put a
//! hard link to a file outside the volume, a symlink or a FIFO there. So a file at a
//! partial name is written into only when it [`looks_like_ours`]: a regular file with one
//! link, owned by this process's user, with no permissions for anyone else (Ferry creates
//! partials 0600 and sets the final mode only on the way into place). Anything else is
//! left alone and the file is received under a fresh exclusive temp name instead (not
//! resumable, but never written through someone else's name). Whether the *source* lists
//! the partial name as an entry of its own is the engine's to know (it sees the listing);
//! it then does not ask for a partial at all.
//!
//! A user's own file at a partial name from an earlier pass (copied from the source, which
//! no longer lists it) can pass those checks too. So where the filesystem keeps `user.*`
//! xattrs, Ferry marks each partial it creates with [`MARK`], whose value is the
//! partial's own device and inode numbers (a copy of a marked file elsewhere carries the
//! wrong ones), and resumes only marked files; the mark is removed before the file goes
//! into place. Where the filesystem has no xattrs, the checks above are all there is.

use std::os::fd::{AsFd, OwnedFd};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, Stat, XattrFlags};
use rustix::io::Errno;

use super::dir::{checked, TEMP_PREFIX};
use super::{Dir, TempFile};
use crate::error::{io_err, shown, TreeError};

const PARTIAL_SUFFIX: &[u8] = b".partial";
const NAME_MAX: usize = 255;
/// How Ferry creates a partial (and every temp file): read and write for its owner only.
const PARTIAL_MODE: u32 = 0o600;

/// The xattr that marks a partial as one Ferry created (see the module doc).
pub(crate) const MARK: &str = "user.ferry.partial";

/// The mark's value for the file `st` describes.
fn mark_of(st: &Stat) -> Vec<u8> {
    format!("{}:{}", st.st_dev, st.st_ino).into_bytes()
}

/// Marks the partial just created on `fd`. A filesystem without `user.*` xattrs (or one
/// that refuses them) leaves it unmarked: [`is_marked`] then falls back to the stat checks.
fn mark(fd: impl AsFd, st: &Stat) {
    let _ = rfs::fsetxattr(fd, MARK, &mark_of(st), XattrFlags::empty());
}

/// Whether the file on `fd` carries this partial's mark, or cannot carry one (the
/// filesystem has no `user.*` xattrs).
fn is_marked(fd: impl AsFd, st: &Stat) -> bool {
    let mut value = [0u8; 64];
    match rfs::fgetxattr(fd, MARK, &mut value) {
        Ok(n) => value[..n] == mark_of(st)[..],
        Err(Errno::OPNOTSUPP) => true,
        Err(_) => false,
    }
}

/// Removes the mark before the file goes into place (it is Ferry's, not the user's).
pub(crate) fn unmark(fd: impl AsFd) -> Result<(), Errno> {
    match rfs::fremovexattr(fd, MARK) {
        Ok(()) | Err(Errno::NODATA | Errno::OPNOTSUPP) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The partial name for `name` (hashed when `name` is too long to carry).
pub fn partial_name(name: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(NAME_MAX);
    out.extend_from_slice(TEMP_PREFIX);
    if TEMP_PREFIX.len() + name.len() + PARTIAL_SUFFIX.len() <= NAME_MAX {
        out.extend_from_slice(name);
    } else {
        out.extend_from_slice(&blake3::hash(name).to_hex().as_bytes()[..32]);
    }
    out.extend_from_slice(PARTIAL_SUFFIX);
    out
}

/// Whether `name` is a partial file's name (`.ferry.<something>.partial`).
pub fn is_partial_name(name: &[u8]) -> bool {
    name.len() > TEMP_PREFIX.len() + PARTIAL_SUFFIX.len()
        && name.starts_with(TEMP_PREFIX)
        && name.ends_with(PARTIAL_SUFFIX)
}

/// Whether the inode `st` describes can be one of this process's partial files: a
/// regular file, one link (a second name could be anywhere on the filesystem, outside
/// the volume too), owned by our effective uid, nothing for group or others and no
/// set-id or sticky bit.
#[allow(clippy::unnecessary_cast)] // st_nlink's width differs between architectures
pub fn looks_like_ours(st: &Stat) -> bool {
    FileType::from_raw_mode(st.st_mode) == FileType::RegularFile
        && st.st_nlink as u64 == 1
        && st.st_uid == rustix::process::geteuid().as_raw()
        && st.st_mode & 0o7077 == 0
}

impl Dir {
    /// A file to receive `name` into under its partial name, empty: created exclusively
    /// (mode 0600), or a leftover partial of ours truncated. When something else holds
    /// the partial name (see the module doc), a fresh temp name instead.
    pub fn create_partial(&self, name: &[u8]) -> Result<TempFile, TreeError> {
        checked(name)?;
        let partial = partial_name(name);
        let flags = OFlags::CREATE
            | OFlags::EXCL
            | OFlags::RDWR
            | OFlags::NOFOLLOW
            | OFlags::NONBLOCK
            | OFlags::CLOEXEC;
        let mode = Mode::from_raw_mode(PARTIAL_MODE);
        match rfs::openat(self.fd(), partial.as_slice(), flags, mode) {
            Ok(fd) => {
                if let Ok(st) = rfs::fstat(&fd) {
                    mark(&fd, &st);
                }
                return Ok(TempFile::new(std::fs::File::from(fd), partial, self, 0));
            }
            Err(Errno::EXIST) => {}
            Err(e) => return Err(io_err("create", shown(self.path(), &partial), e)),
        }
        match self.open_own(&partial)? {
            Some((fd, _)) => {
                rfs::ftruncate(&fd, 0)
                    .map_err(|e| io_err("truncate", shown(self.path(), &partial), e))?;
                Ok(TempFile::new(std::fs::File::from(fd), partial, self, 0))
            }
            None => {
                tracing::info!(
                    name = %shown(self.path(), &partial),
                    "not a partial file of ours (another owner, another link, a symlink or not a regular file); receiving under a fresh temp name"
                );
                self.create_temp(name)
            }
        }
    }

    /// Opens the partial an interrupted session left for `name`, with its length.
    /// `Ok(None)` if there is none, or if what is there is not ours to write into (see
    /// the module doc): then it is left as it is.
    pub fn open_partial(&self, name: &[u8]) -> Result<Option<(TempFile, u64)>, TreeError> {
        checked(name)?;
        let partial = partial_name(name);
        Ok(self.open_own(&partial)?.map(|(fd, st)| {
            let len = u64::try_from(st.st_size).unwrap_or(0);
            (
                TempFile::new(std::fs::File::from(fd), partial, self, len),
                len,
            )
        }))
    }

    /// Opens `partial` for reading and writing if it [`looks_like_ours`], checked before
    /// the open (a FIFO or device is never opened) and again on the open fd (the name may
    /// have been swapped in between).
    fn open_own(&self, partial: &[u8]) -> Result<Option<(OwnedFd, Stat)>, TreeError> {
        let shown_name = || shown(self.path(), partial);
        let before = match rfs::statat(self.fd(), partial, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if looks_like_ours(&st) => st,
            Ok(_) | Err(Errno::NOENT) => return Ok(None),
            Err(e) => return Err(io_err("stat", shown_name(), e)),
        };
        let flags =
            OFlags::RDWR | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
        let fd = match rfs::openat(self.fd(), partial, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT | Errno::LOOP | Errno::NXIO) => return Ok(None),
            Err(e) => return Err(io_err("open", shown_name(), e)),
        };
        let st = rfs::fstat(&fd).map_err(|e| io_err("stat", shown_name(), e))?;
        let same = st.st_dev == before.st_dev && st.st_ino == before.st_ino;
        Ok((same && looks_like_ours(&st) && is_marked(&fd, &st)).then_some((fd, st)))
    }
}
