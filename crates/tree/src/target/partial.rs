//! Partial files: what an interrupted session had received of a file, kept under a name
//! that is the same every time (`.ferry.NAME.partial`), so the next session can verify
//! the prefix (BLAKE3, against the source's) and resume after it instead of from zero.
//! A partial is never under the final name; it is renamed there only when complete and
//! verified, like any temp file.

use rustix::fs::{self as rfs, FileType, Mode, OFlags};
use rustix::io::Errno;

use super::dir::{checked, TEMP_PREFIX};
use super::{Dir, TempFile};
use crate::error::{io_err, shown, TreeError};

const PARTIAL_SUFFIX: &[u8] = b".partial";
const NAME_MAX: usize = 255;

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

impl Dir {
    /// Creates (or truncates) the partial file for `name`, open for reading and writing.
    pub fn create_partial(&self, name: &[u8]) -> Result<TempFile, TreeError> {
        checked(name)?;
        let partial = partial_name(name);
        let flags = OFlags::CREATE
            | OFlags::TRUNC
            | OFlags::RDWR
            | OFlags::NOFOLLOW
            | OFlags::NONBLOCK
            | OFlags::CLOEXEC;
        let fd = rfs::openat(
            self.fd(),
            partial.as_slice(),
            flags,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|e| io_err("create", shown(self.path(), &partial), e))?;
        if rfs::fstat(&fd).map(|st| FileType::from_raw_mode(st.st_mode))
            != Ok(FileType::RegularFile)
        {
            return Err(io_err("create", shown(self.path(), &partial), Errno::INVAL));
        }
        Ok(TempFile::new(std::fs::File::from(fd), partial, self, 0))
    }

    /// Opens the partial an interrupted session left for `name`, with its length.
    /// `Ok(None)` if there is none (or something other than a regular file is there).
    pub fn open_partial(&self, name: &[u8]) -> Result<Option<(TempFile, u64)>, TreeError> {
        checked(name)?;
        let partial = partial_name(name);
        let flags = OFlags::RDWR | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let fd = match rfs::openat(self.fd(), partial.as_slice(), flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT | Errno::LOOP | Errno::NXIO) => return Ok(None),
            Err(e) => return Err(io_err("open", shown(self.path(), &partial), e)),
        };
        let st = rfs::fstat(&fd).map_err(|e| io_err("stat", shown(self.path(), &partial), e))?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Ok(None);
        }
        let len = st.st_size as u64;
        Ok(Some((
            TempFile::new(std::fs::File::from(fd), partial, self, len),
            len,
        )))
    }
}
