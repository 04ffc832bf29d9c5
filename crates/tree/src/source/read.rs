//! Reading source files: finding the data and hole regions (so holes are neither read
//! nor sent). Opening them is [`super::SourceRoot`]'s.

use rustix::fs::{self as rfs, SeekFrom};
use rustix::io::Errno;

use crate::error::{io_err, TreeError};

/// One stretch of a file: data, or a hole that reads as zeros.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    pub offset: u64,
    pub len: u64,
    pub hole: bool,
}

/// Largest file [`regions_allocated`] trusts its allocation for.
const TRUST_ALLOCATION_UP_TO: u64 = 1024 * 1024;

/// [`regions`] without its two `lseek`s for a small file that has no room for holes:
/// when `allocated` (`st_blocks * 512`) covers `size`, the whole file is one data region.
/// Most small files are like that, and a many-small-files tree pays those calls per file.
///
/// Only up to `TRUST_ALLOCATION_UP_TO` bytes: blocks preallocated past the end of a file
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
    regions_within(file, 0, size)
}

/// The data and hole regions covering `[start, end)`, in order, as [`regions`] finds
/// them for a whole file: one range of a large file asks only about its own extents.
/// Empty when `start >= end`.
pub fn regions_within(
    file: &std::fs::File,
    start: u64,
    end: u64,
) -> Result<Vec<Region>, TreeError> {
    let mut out = Vec::new();
    let mut pos = start;
    while pos < end {
        let data = match rfs::seek(file, SeekFrom::Data(pos)) {
            Ok(d) => d.clamp(pos, end),
            // No data at or after `pos`: the rest is a hole.
            Err(Errno::NXIO) => end,
            Err(Errno::INVAL | Errno::NOTSUP) if pos == start => {
                out.push(Region {
                    offset: start,
                    len: end - start,
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
        if data >= end {
            break;
        }
        let hole = match rfs::seek(file, SeekFrom::Hole(data)) {
            Ok(h) => h.min(end),
            // Truncated meanwhile: treat the rest as data; the reader will see the change.
            Err(Errno::NXIO) => end,
            Err(e) => return Err(io_err("seek", "(open file)".into(), e)),
        };
        // Guard against a file changing under us: always make progress.
        let stop = hole.max(data + 1).min(end);
        out.push(Region {
            offset: data,
            len: stop - data,
            hole: false,
        });
        pos = stop;
    }
    Ok(out)
}
