//! Files updated in place: the existing file at a name, opened for writing, so a changed
//! file's new content needs no second copy's worth of space. The engine decides when
//! (`--inplace`, or no room); this module owns opening it safely and the mark.
//!
//! Before the first write the file is marked with [`MARK`], whose value is its device
//! and inode numbers (a copy of a marked file elsewhere, or a source file that carries
//! the attribute, has the wrong ones and is not taken for marked). An interrupted update
//! leaves the mark; [`Dir::in_place_marked`] finds it, and the engine then treats the
//! file as changed whatever its size and mtime say. The mark is removed once the whole
//! file verified, before its attributes are applied ([`TempFile::apply_meta`]).
//!
//! Only a regular file with one link, the very inode the engine planned against (its
//! basis), is written in place: a second link may be anywhere, outside the volume too,
//! and would see the new content. A file on a filesystem that refuses `user.*` xattrs
//! is not written in place either: without the mark an interrupted update could look
//! finished. Must not decide what to transfer, nor import the engine.

use rustix::fs::{self as rfs, FallocateFlags, FileType, Mode, OFlags, XattrFlags};
use rustix::io::Errno;

use super::dir::checked;
use super::{Dir, TempFile};
use crate::error::{shown, TreeError};
use crate::proc_fd;

/// The xattr that marks a file being updated in place (see the module doc).
pub(crate) const MARK: &str = "user.ferry.inplace";

/// Zeros written at a time where a hole cannot be punched.
const ZEROS: usize = 64 * 1024;

fn mark_of(dev: u64, ino: u64) -> Vec<u8> {
    format!("{dev}:{ino}").into_bytes()
}

/// Removes the mark (a file without one is fine).
pub(crate) fn unmark(file: &std::fs::File) -> Result<(), Errno> {
    match rfs::fremovexattr(file, MARK) {
        Ok(()) | Err(Errno::NODATA | Errno::OPNOTSUPP) => Ok(()),
        Err(e) => Err(e),
    }
}

impl Dir {
    /// Opens the regular file `name` to write its new content in place, marked, if it
    /// is still the inode `dev`/`ino` (the basis the engine planned against) with one
    /// link. `Ok(None)` if it is not, or if the filesystem will not keep the mark: the
    /// engine then writes a temp copy as usual.
    pub fn open_in_place(
        &self,
        name: &[u8],
        dev: u64,
        ino: u64,
    ) -> Result<Option<TempFile>, TreeError> {
        checked(name)?;
        let flags =
            OFlags::RDWR | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
        let fd = match rfs::openat(self.fd(), name, flags, Mode::empty()) {
            Ok(fd) => fd,
            // Gone or another kind now, or not writable for us (another owner's file,
            // a read-only mode without root, a program being run): a temp copy instead.
            Err(
                Errno::NOENT
                | Errno::LOOP
                | Errno::NXIO
                | Errno::ISDIR
                | Errno::ACCESS
                | Errno::PERM
                | Errno::TXTBSY,
            ) => return Ok(None),
            Err(e) => return Err(self.err("open", name, e)),
        };
        let st = rfs::fstat(&fd).map_err(|e| self.err("stat", name, e))?;
        #[allow(clippy::unnecessary_cast)] // st_nlink's width differs between architectures
        let ours = FileType::from_raw_mode(st.st_mode) == FileType::RegularFile
            && st.st_nlink as u64 == 1
            && st.st_dev == dev
            && st.st_ino == ino;
        if !ours {
            return Ok(None);
        }
        if let Err(e) = rfs::fsetxattr(&fd, MARK, &mark_of(dev, ino), XattrFlags::empty()) {
            tracing::info!(
                name = %shown(self.path(), name),
                "cannot mark the file for an in-place update ({e}); writing a temp copy"
            );
            return Ok(None);
        }
        let len = u64::try_from(st.st_size).unwrap_or(0);
        Ok(Some(TempFile::in_place(
            std::fs::File::from(fd),
            name,
            self,
            len,
        )))
    }

    /// Whether `name` carries the mark of an in-place update that did not finish. One
    /// `lgetxattr` through the directory's magic link; any failure reads as unmarked.
    pub fn in_place_marked(&self, name: &[u8], dev: u64, ino: u64) -> bool {
        if checked(name).is_err() || !proc_fd::available() {
            return false;
        }
        let mut path = proc_fd::path(self.fd()).into_bytes();
        path.push(b'/');
        path.extend_from_slice(name);
        let mut value = [0u8; 64];
        match rfs::lgetxattr(path.as_slice(), MARK, &mut value) {
            Ok(n) => value[..n] == mark_of(dev, ino)[..],
            Err(_) => false,
        }
    }

    /// Bytes free for this process on the directory's filesystem (`f_bavail`).
    pub fn room(&self) -> Result<u64, TreeError> {
        let st = rfs::fstatvfs(self.fd()).map_err(|e| self.err("statvfs", b"", e))?;
        Ok(st.f_bavail.saturating_mul(st.f_frsize))
    }
}

impl TempFile {
    /// Makes `len` bytes at `offset` read as zeros: a hole punched where the filesystem
    /// can, zeros written where it cannot. For a file written in place, whose old
    /// content is there (a new temp file reads zeros wherever nothing was written).
    pub fn zero_range(&mut self, offset: u64, len: u64) -> Result<(), TreeError> {
        if len == 0 {
            return Ok(());
        }
        let punch = FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE;
        if rfs::fallocate(self.file(), punch, offset, len).is_ok() {
            return Ok(());
        }
        let zeros = vec![0u8; ZEROS];
        let mut at = offset;
        let end = offset.saturating_add(len);
        while at < end {
            let n = (end - at).min(ZEROS as u64) as usize;
            self.write_at(at, &zeros[..n])?;
            at += n as u64;
        }
        Ok(())
    }
}
