//! A file being received: written through its own fd, attributes set on that fd, then
//! put in place. Either it has a temp name in the directory and is renamed over the final
//! name, or it has no name at all (`O_TMPFILE`, see [`Dir::create_unnamed`]) and is linked
//! at the final name. Dropped without `commit`, a named one unlinks itself; an unnamed
//! one simply goes with its fd.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use ferry_proto::{escape, Meta, RelPath};
use rustix::fs::{self as rfs, AtFlags};
use rustix::io::Errno;

use super::create::UNNAMED_REFUSED;
use super::existing::NotApplied;
use super::meta::{apply, Fresh};
use super::node::Node;
use super::partial::{is_partial_name, unmark};
use super::{in_place, Dir, Privileges};
use crate::error::{io_err, shown, std_err, TreeError};
use crate::link_fd;

/// A new file at a temp name in a held directory.
#[derive(Debug)]
pub struct TempFile {
    file: std::fs::File,
    /// The temp name; for an unnamed (`O_TMPFILE`) file, the final name it is for (only
    /// to name it in errors).
    temp_name: Vec<u8>,
    unnamed: bool,
    /// The directory it lives in, held so the temp name can always be removed
    /// through the same fd, even on drop.
    dir_fd: Arc<OwnedFd>,
    dir_path: RelPath,
    /// False once put in place or unlinked.
    live: bool,
    /// The file's length as our own calls left it (`len` at open, then every write and
    /// truncate), so that [`TempFile::set_len`] to that length costs no syscall.
    len: u64,
    /// The existing file under its final name, written in place ([`Dir::open_in_place`]):
    /// never unlinked, and committing it renames nothing.
    in_place: bool,
}

impl TempFile {
    /// `len`: the file's length as opened (0 for one just created or truncated).
    pub(crate) fn new(file: std::fs::File, temp_name: Vec<u8>, dir: &Dir, len: u64) -> TempFile {
        TempFile {
            file,
            temp_name,
            dir_fd: Arc::clone(dir.shared_fd()),
            dir_path: dir.path().clone(),
            live: true,
            len,
            unnamed: false,
            in_place: false,
        }
    }

    /// The existing file `name`, opened and marked for an in-place update, `len` bytes.
    pub(crate) fn in_place(file: std::fs::File, name: &[u8], dir: &Dir, len: u64) -> TempFile {
        let mut temp = TempFile::new(file, name.to_vec(), dir, len);
        temp.in_place = true;
        temp
    }

    /// Whether this is the existing file, written in place.
    pub fn is_in_place(&self) -> bool {
        self.in_place
    }

    /// An unnamed file, empty, for `name` in `dir`.
    pub(crate) fn unnamed(file: std::fs::File, name: &[u8], dir: &Dir) -> TempFile {
        let mut temp = TempFile::new(file, name.to_vec(), dir, 0);
        temp.unnamed = true;
        temp
    }

    /// The temp name in the directory; empty for an unnamed file.
    pub fn temp_name(&self) -> &[u8] {
        match self.unnamed {
            true => &[],
            false => &self.temp_name,
        }
    }

    /// The open file (for reading back a partial's prefix).
    pub fn file(&self) -> &std::fs::File {
        &self.file
    }

    /// Leaves the file where it is (a partial for a later session to resume).
    pub fn keep(mut self) {
        self.live = false;
    }

    fn shown(&self) -> String {
        shown(&self.dir_path, &self.temp_name)
    }

    /// Writes `data` at `offset`. Ranges never written stay holes: the file was
    /// created empty.
    pub fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), TreeError> {
        self.file
            .write_all_at(data, offset)
            .map_err(|e| std_err("write", self.shown(), e))?;
        self.len = self.len.max(offset.saturating_add(data.len() as u64));
        Ok(())
    }

    /// Sets the final length; a trailing hole is made by this. A file whose writes
    /// already end there (most files) needs no call.
    pub fn set_len(&mut self, size: u64) -> Result<(), TreeError> {
        if size == self.len {
            return Ok(());
        }
        self.file
            .set_len(size)
            .map_err(|e| std_err("truncate", self.shown(), e))?;
        self.len = size;
        Ok(())
    }

    /// Applies `meta` on the fd: owner (root; otherwise only the group, if we may),
    /// then mode including setuid/setgid/sticky, then xattrs (refusals counted), then
    /// the modification time last.
    pub fn apply_meta(
        &mut self,
        meta: &Meta,
        privileges: Privileges,
    ) -> Result<NotApplied, TreeError> {
        if self.resumable() {
            unmark(&self.file).map_err(|e| io_err("removexattr", self.shown(), e))?;
        }
        // Verified whole before this is called: the mark goes first, so a source's own
        // attribute of that name, applied below, is kept.
        if self.in_place {
            in_place::unmark(&self.file).map_err(|e| io_err("removexattr", self.shown(), e))?;
        }
        let node = Node::Fd(self.file.as_fd());
        apply(
            &node,
            meta,
            privileges,
            match self.in_place {
                true => Fresh::No,
                false => Fresh::Yes,
            },
            &self.dir_path,
            &self.temp_name,
        )
    }

    /// `fsync`: data and metadata reach the disk before the rename or link makes them
    /// visible.
    pub fn sync(&mut self) -> Result<(), TreeError> {
        self.file
            .sync_all()
            .map_err(|e| std_err("fsync", self.shown(), e))
    }

    /// Renames the temp file to `name` in `dir`, which must be the directory it was
    /// created in. A directory at `name` is removed first. Afterwards the file exists
    /// only under `name`.
    pub fn commit(mut self, dir: &Dir, name: &[u8]) -> Result<(), TreeError> {
        if !self.same_dir(dir) {
            let path = shown(dir.path(), name);
            return Err(io_err("commit", path, Errno::XDEV));
        }
        if self.in_place {
            // Already the file at its final name.
        } else if self.unnamed {
            self.link_into(dir, name)?;
        } else {
            self.rename_into(dir, name)?;
        }
        self.live = false;
        Ok(())
    }

    /// Whether a later session can find this file again and resume it: it is under its
    /// partial name (not an unnamed file, not a fresh temp name).
    pub fn resumable(&self) -> bool {
        !self.unnamed && !self.in_place && is_partial_name(&self.temp_name)
    }

    /// Renames the temp name over `name`, if the temp name still holds this file: another
    /// process may have put something else there since it was created, and a rename by
    /// name would then put *that* in place. In that case this file is linked in through
    /// its fd instead, and whatever is at the temp name is left alone.
    fn rename_into(&mut self, dir: &Dir, name: &[u8]) -> Result<(), TreeError> {
        let ours = rfs::fstat(&self.file).map_err(|e| io_err("stat", self.shown(), e))?;
        match rfs::statat(
            dir.fd(),
            self.temp_name.as_slice(),
            AtFlags::SYMLINK_NOFOLLOW,
        ) {
            Ok(st) if st.st_dev == ours.st_dev && st.st_ino == ours.st_ino => {
                dir.install(&self.temp_name, name)
            }
            _ => {
                tracing::warn!(
                    name = %self.shown(),
                    "the temp file was renamed or replaced by another process; linking it in through its fd"
                );
                self.link_into(dir, name)
            }
        }
    }

    /// Gives an unnamed file its final name: a link of its fd ([`link_fd`]) when nothing
    /// is at `name` (the common case: a file the target did not have), else a link at a
    /// fresh temp name renamed over whatever is there, as a named temp file would be.
    fn link_into(&mut self, dir: &Dir, name: &[u8]) -> Result<(), TreeError> {
        dir.check_in_volume()?;
        let link = |at: &[u8]| link_fd::link_at(&self.file, dir.fd(), at);
        match link(name) {
            Ok(()) => Ok(()),
            Err(Errno::EXIST) => {
                let ((), temp) = dir.at_temp_name(name, "link", link)?;
                dir.install(&temp, name).inspect_err(|_| {
                    let _ = rfs::unlinkat(dir.fd(), temp.as_slice(), AtFlags::empty());
                })
            }
            Err(e) => {
                // A sandbox or a security policy refusing the link: later files take the
                // partial-file path; this one is reported as failed (its data was never
                // visible, and the next run sends it again).
                UNNAMED_REFUSED.store(true, std::sync::atomic::Ordering::Relaxed);
                Err(dir.err("link", name, e))
            }
        }
    }

    /// Unlinks the temp file. Errors are logged, not returned.
    pub fn discard(mut self, _dir: &Dir) {
        if let Err(e) = self.unlink() {
            tracing::warn!(error = %e, "could not remove temp file");
        }
    }

    /// Unlinks now and reports the error (used by the writability probe).
    pub(crate) fn unlink(&mut self) -> Result<(), TreeError> {
        self.live = false;
        // An in-place file stays, with its mark: the next run re-checks it whole.
        if self.unnamed || self.in_place {
            return Ok(());
        }
        rfs::unlinkat(&*self.dir_fd, self.temp_name.as_slice(), AtFlags::empty())
            .map_err(|e| io_err("unlink", self.shown(), e))
    }

    fn same_dir(&self, dir: &Dir) -> bool {
        if Arc::ptr_eq(&self.dir_fd, dir.shared_fd()) {
            return true;
        }
        match (rfs::fstat(&*self.dir_fd), rfs::fstat(dir.fd())) {
            (Ok(a), Ok(b)) => a.st_dev == b.st_dev && a.st_ino == b.st_ino,
            _ => false,
        }
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.live {
            if let Err(e) = self.unlink() {
                tracing::warn!(error = %e, name = %escape(&self.temp_name), "could not remove temp file");
            }
        }
    }
}
