//! Reading source files: opening without following a symlink, finding the data and
//! hole regions (so holes are neither read nor sent), and re-checking a file for
//! changes after it was sent.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use ferry_proto::{RelPath, Timestamp};
use rustix::fs::{self as rfs, FileType, Mode, OFlags, SeekFrom};
use rustix::io::Errno;

use crate::error::{io_err, shown, TreeError};
use crate::target::Existing;

/// One stretch of a file: data, or a hole that reads as zeros.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    pub offset: u64,
    pub len: u64,
    pub hole: bool,
}

fn full_path(root: &Path, rel: &RelPath) -> PathBuf {
    root.join(OsStr::from_bytes(rel.as_bytes()))
}

/// Opens a source file for reading: `O_RDONLY|O_NOFOLLOW|O_CLOEXEC`, plus `O_NOATIME`
/// when permitted (we own the file or are root). Refuses anything but a regular file,
/// so a file replaced by a FIFO since the walk cannot block the reader.
pub fn open_source_file(root: &Path, rel: &RelPath) -> Result<std::fs::File, TreeError> {
    let path = full_path(root, rel);
    let err = |op, e| io_err(op, shown(rel, b""), e);
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
    let fd = match rfs::open(&path, flags | OFlags::NOATIME, Mode::empty()) {
        Err(Errno::PERM) => rfs::open(&path, flags, Mode::empty()),
        other => other,
    }
    .map_err(|e| err("open", e))?;
    let st = rfs::fstat(&fd).map_err(|e| err("stat", e))?;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
        return Err(err("open", Errno::INVAL));
    }
    // O_NONBLOCK stays set: it kept the open from hanging on a FIFO that replaced the
    // file, and reads of a regular file ignore it (two fcntl calls per file saved).
    Ok(std::fs::File::from(fd))
}

/// Largest file [`regions_allocated`] trusts its allocation for.
const TRUST_ALLOCATION_UP_TO: u64 = 1024 * 1024;

/// [`regions`] without its two `lseek`s for a small file that has no room for holes:
/// when `allocated` (`st_blocks * 512`) covers `size`, the whole file is one data region.
/// Most small files are like that, and a many-small-files tree pays those calls per file.
///
/// Only up to [`TRUST_ALLOCATION_UP_TO`]: blocks preallocated past the end of a file
/// (`fallocate` with `KEEP_SIZE`, XFS's speculative preallocation) also count in
/// `st_blocks`, so a sparse file can look fully allocated. For a small file the cost of
/// being fooled is a few zeros written instead of a hole; a large one always asks.
pub fn regions_allocated(
    file: &std::fs::File,
    size: u64,
    allocated: u64,
) -> Result<Vec<Region>, TreeError> {
    if size == 0 {
        return Ok(Vec::new());
    }
    if allocated >= size && size <= TRUST_ALLOCATION_UP_TO {
        return Ok(vec![Region {
            offset: 0,
            len: size,
            hole: false,
        }]);
    }
    regions(file, size)
}

/// The data and hole regions covering `[0, size)`, in order, found with
/// `SEEK_DATA`/`SEEK_HOLE`. Where the filesystem cannot tell, one data region covers
/// everything. Moves the file offset (readers use positional reads).
pub fn regions(file: &std::fs::File, size: u64) -> Result<Vec<Region>, TreeError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < size {
        let data = match rfs::seek(file, SeekFrom::Data(pos)) {
            Ok(d) => d.min(size),
            // No data at or after `pos`: the rest is a hole.
            Err(Errno::NXIO) => size,
            Err(Errno::INVAL | Errno::NOTSUP) if pos == 0 => {
                out.push(Region {
                    offset: 0,
                    len: size,
                    hole: false,
                });
                return Ok(out);
            }
            Err(e) => return Err(io_err("seek", "(open file)".into(), e)),
        };
        if data > pos {
            out.push(Region {
                offset: pos,
                len: data - pos,
                hole: true,
            });
        }
        if data >= size {
            break;
        }
        let hole = match rfs::seek(file, SeekFrom::Hole(data)) {
            Ok(h) => h.min(size),
            // Truncated meanwhile: treat the rest as data; the reader will see the change.
            Err(Errno::NXIO) => size,
            Err(e) => return Err(io_err("seek", "(open file)".into(), e)),
        };
        // Guard against a file changing under us: always make progress.
        let end = hole.max(data + 1).min(size);
        out.push(Region {
            offset: data,
            len: end - data,
            hole: false,
        });
        pos = end;
    }
    Ok(out)
}

/// `lstat` again: the `(size, mtime)` of the path now, to detect a file that changed
/// while it was being sent.
pub fn stat_source(root: &Path, rel: &RelPath) -> Result<(u64, Timestamp), TreeError> {
    let path = full_path(root, rel);
    let st = rfs::lstat(&path).map_err(|e| io_err("stat", shown(rel, b""), e))?;
    let existing = Existing::from_stat(&st);
    Ok((existing.size, existing.mtime))
}
