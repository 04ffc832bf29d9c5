//! One source entry, from its `lstat` to the plain [`Entry`] the protocol carries.

use std::io::Read;
use std::os::fd::BorrowedFd;
use std::path::Path;

use ferry_proto::{Content, Entry, Limits, Meta, RelPath, SpecialKind, Xattr};
use rustix::fs::{self as rfs, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;

use super::root::XattrPaths;
use crate::error::{io_err, shown, std_err, TreeError};
use crate::volume::{Existing, ExistingKind};
use crate::xattr::{self, On};

/// Where the entry is and what the walk was asked for.
pub(crate) struct At<'a> {
    /// The open directory holding the entry.
    pub dir_fd: BorrowedFd<'a>,
    /// That directory's full path (for messages, and for the path-based `l*xattr` calls
    /// when nothing better is available).
    pub dir_path: &'a Path,
    /// How the `l*xattr` calls name the entry.
    pub xattr_paths: XattrPaths,
    /// That directory relative to the source root (for messages).
    pub rel: &'a RelPath,
    pub checksum: bool,
    pub limits: &'a Limits,
}

/// Builds the entry for `name`. `Ok(None)`: it vanished meanwhile (not an error on a
/// live source). `leader`: the index and path of an earlier name of the same inode.
pub(crate) fn build(
    at: &At<'_>,
    name: &[u8],
    st: &Stat,
    leader: Option<(u64, RelPath)>,
) -> Result<Option<Entry>, TreeError> {
    let shown_name = || shown(at.rel, name);
    let existing = Existing::from_stat(st);
    let content = match existing.kind {
        ExistingKind::File => match leader {
            Some((leader, path)) => Content::HardLink {
                leader,
                path: path.into_bytes(),
            },
            None => {
                let checksum = if at.checksum {
                    match hash_file(at.dir_fd, name, existing.size) {
                        Ok(sum) => Some(sum),
                        Err(e) if e.raw_os_error() == Some(Errno::NOENT.raw_os_error()) => {
                            return Ok(None)
                        }
                        Err(e) => return Err(std_err("read", shown_name(), e)),
                    }
                } else {
                    None
                };
                Content::File {
                    size: existing.size,
                    checksum,
                }
            }
        },
        ExistingKind::Dir => Content::Dir,
        ExistingKind::Symlink => match rfs::readlinkat(at.dir_fd, name, Vec::new()) {
            Ok(target) => {
                let target = target.into_bytes();
                if target.len() > at.limits.max_link_target {
                    return Err(too_long("readlink", shown_name()));
                }
                Content::Symlink { target }
            }
            Err(Errno::NOENT) => return Ok(None),
            Err(e) => return Err(io_err("readlink", shown_name(), e)),
        },
        ExistingKind::Special(kind) => {
            if FileType::from_raw_mode(st.st_mode) == FileType::Unknown {
                return Err(io_err("stat", shown_name(), Errno::INVAL));
            }
            let device = matches!(kind, SpecialKind::CharDevice | SpecialKind::BlockDevice);
            Content::Special {
                kind,
                rdev: if device { existing.rdev } else { 0 },
            }
        }
    };
    // Symlinks carry no xattrs: Linux refuses `user.*` on them, and the target does
    // not report any for them either, so a repeat pass sees no difference.
    let xattrs = if existing.kind == ExistingKind::Symlink {
        Vec::new()
    } else {
        let path = at.xattr_paths.path(at.dir_fd, at.dir_path, name);
        match xattr::read_all(On::NoFollow(&path)) {
            Ok(x) => bounded(x, at.limits).ok_or_else(|| too_long("xattr", shown_name()))?,
            Err(Errno::NOENT) => return Ok(None),
            Err(e) => return Err(io_err("xattr", shown_name(), e)),
        }
    };
    let meta = Meta {
        mode: existing.mode,
        uid: existing.uid,
        gid: existing.gid,
        mtime: existing.mtime,
        xattrs,
    };
    Ok(Some(Entry {
        name: name.to_vec(),
        meta,
        content,
    }))
}

/// The attributes of the source root itself, read from its open fd.
pub(crate) fn root_meta(
    root: BorrowedFd<'_>,
    st: &Stat,
    limits: &Limits,
) -> Result<Meta, TreeError> {
    let shown_root = || shown(&RelPath::root(), b".");
    let existing = Existing::from_stat(st);
    let xattrs = xattr::read_all(On::Fd(root)).map_err(|e| io_err("xattr", shown_root(), e))?;
    let xattrs = bounded(xattrs, limits).ok_or_else(|| too_long("xattr", shown_root()))?;
    Ok(Meta {
        mode: existing.mode,
        uid: existing.uid,
        gid: existing.gid,
        mtime: existing.mtime,
        xattrs,
    })
}

/// `None` if there are more attributes, or a longer value, than the peer accepts.
fn bounded(xattrs: Vec<Xattr>, limits: &Limits) -> Option<Vec<Xattr>> {
    let fits = xattrs.len() <= limits.max_xattrs
        && xattrs
            .iter()
            .all(|x| x.value.len() <= limits.max_xattr_value);
    fits.then_some(xattrs)
}

fn too_long(op: &'static str, path: String) -> TreeError {
    std_err(
        op,
        path,
        std::io::Error::new(std::io::ErrorKind::InvalidData, "over the protocol limits"),
    )
}

/// BLAKE3 of a file's contents, read through `O_NOFOLLOW` (and `O_NONBLOCK`, so a
/// file swapped for a FIFO cannot hang the walk).
fn hash_file(dir_fd: BorrowedFd<'_>, name: &[u8], size: u64) -> std::io::Result<[u8; 32]> {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
    let fd = match rfs::openat(dir_fd, name, flags | OFlags::NOATIME, Mode::empty()) {
        Err(Errno::PERM) => rfs::openat(dir_fd, name, flags, Mode::empty())?,
        other => other?,
    };
    let mut file = std::fs::File::from(fd);
    let mut hasher = blake3::Hasher::new();
    // Sized to the file (plus one byte to see the end in one read) so a tree of small
    // files does not allocate a large buffer per file.
    let len = usize::try_from(size).unwrap_or(usize::MAX).min(256 * 1024) + 1;
    let mut buf = vec![0u8; len];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
    }
    Ok(*hasher.finalize().as_bytes())
}
