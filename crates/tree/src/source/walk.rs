//! The source walk: one listing per directory, parents before children, names
//! sorted, every entry numbered in emission order.
//!
//! Memory stays flat whatever the tree: the walker holds the stack of directories
//! still to list, the listing being built, and the `(dev, ino)` of files with more
//! than one link (so later names become hard links to the first).

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use ferry_proto::{check_name, Content, Entry, Filter, Limits, Meta, RelPath};
use rustix::fs::{self as rfs, AtFlags, FileType};
use rustix::io::Errno;

use super::entry::{self, At};
use super::root::{SourceRoot, XattrPaths};
use crate::error::{io_err, shown, TreeError};

/// What the walk computes beyond `lstat`.
#[derive(Clone, Copy, Debug, Default)]
pub struct WalkOptions {
    /// Fill `Content::File::checksum` with the BLAKE3 of the contents (`--checksum`).
    pub checksum: bool,
}

/// One directory's children, sorted by name bytes.
#[derive(Debug)]
pub struct Listing {
    pub dir: RelPath,
    pub entries: Vec<SourceEntry>,
    /// False if reading the directory or some entry failed: the listing may miss
    /// names, so the target must not delete on its strength.
    pub complete: bool,
    pub errors: Vec<TreeError>,
}

/// An entry with its walk-wide index (hard links refer to their leader by it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceEntry {
    pub index: u64,
    pub entry: Entry,
}

/// Depth-first walk of a source tree, listing by listing.
#[derive(Debug)]
pub struct Walker {
    root: SourceRoot,
    options: WalkOptions,
    limits: Limits,
    /// Directories still to list; the next one is on top.
    pending: Vec<RelPath>,
    started: bool,
    next_index: u64,
    /// `(dev, ino)` of multiply-linked files already emitted, with their index.
    /// (dev, ino) of multiply-linked files -> (index, path) of their first name.
    leaders: HashMap<(u64, u64), (u64, RelPath)>,
    /// What not to list (an excluded directory is not entered either).
    filter: Filter,
    /// How extended attributes are read without a path lookup outside the tree; chosen
    /// by [`Walker::on_this_thread`], else through `/proc`.
    xattr_paths: XattrPaths,
}

impl Walker {
    /// `root` must be a directory (a symlink given as the root itself is followed).
    pub fn new(root: &Path, options: WalkOptions, limits: Limits) -> Result<Walker, TreeError> {
        let st = rfs::stat(root).map_err(|e| io_err("stat", ".".into(), e))?;
        if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
            return Err(io_err("open", ".".into(), Errno::NOTDIR));
        }
        Ok(Walker {
            root: SourceRoot::open(root)?,
            options,
            limits,
            pending: Vec::new(),
            started: false,
            next_index: 0,
            leaders: HashMap::new(),
            filter: Filter::default(),
            xattr_paths: XattrPaths::without_own_cwd(),
        })
    }

    /// Readies the calling thread to run this walk: it gets a working directory of its
    /// own, moved into each directory listed, so extended attributes are read by bare
    /// name. Call it on a thread that does nothing else (the engine's walker thread).
    pub fn on_this_thread(mut self) -> Walker {
        self.xattr_paths = XattrPaths::for_this_thread();
        self
    }

    /// Leaves out what `filter` excludes.
    pub fn with_filter(mut self, filter: Filter) -> Walker {
        self.filter = filter;
        self
    }

    /// The root this walk lists, for reading the files it lists.
    pub fn source_root(&self) -> SourceRoot {
        self.root.clone()
    }

    /// Attributes of the root directory itself.
    pub fn root_meta(&self) -> Result<Meta, TreeError> {
        let st = rfs::fstat(self.root.fd()).map_err(|e| io_err("stat", ".".into(), e))?;
        entry::root_meta(self.root.fd(), &st, &self.limits)
    }

    /// The next directory's listing; `None` when the walk is done.
    pub fn next_listing(&mut self) -> Option<Listing> {
        let rel = if self.started {
            self.pending.pop()?
        } else {
            self.started = true;
            RelPath::root()
        };
        Some(self.list(rel))
    }

    fn list(&mut self, rel: RelPath) -> Listing {
        let mut listing = Listing {
            dir: rel,
            entries: Vec::new(),
            complete: true,
            errors: Vec::new(),
        };
        let dir_path = self
            .root
            .path()
            .join(std::ffi::OsStr::from_bytes(listing.dir.as_bytes()));
        let Some((fd, names)) = read_names(&self.root, &mut listing) else {
            return listing;
        };
        let limits = self.limits.clone();
        let dir_fd = std::os::fd::AsFd::as_fd(&fd);
        let at = At {
            dir_fd,
            xattr_paths: self.xattr_paths.enter(dir_fd),
            dir_path: &dir_path,
            rel: &listing.dir,
            checksum: self.options.checksum,
            limits: &limits,
        };
        let mut subdirs = Vec::new();
        let mut built = Vec::with_capacity(names.len());
        let mut errors = Vec::new();
        for name in names {
            match self.one(&at, &name) {
                Ok(Some((entry, sub))) => {
                    built.push(entry);
                    subdirs.extend(sub);
                }
                Ok(None) => {}
                Err(e) => errors.push(e),
            }
        }
        for e in errors {
            listing.fail(e);
        }
        listing.entries = built;
        self.pending.extend(subdirs.into_iter().rev());
        listing
    }

    /// One name: `Ok(None)` if it vanished; the subdirectory path if it is one.
    fn one(
        &mut self,
        at: &At<'_>,
        name: &[u8],
    ) -> Result<Option<(SourceEntry, Option<RelPath>)>, TreeError> {
        check_name(name, at.limits)?;
        let st = match rfs::statat(at.dir_fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::NOENT) => return Ok(None),
            Err(e) => return Err(io_err("stat", shown(at.rel, name), e)),
        };
        let kind = FileType::from_raw_mode(st.st_mode);
        if !self.filter.is_empty() {
            let path = at.rel.join(name, at.limits)?;
            if self
                .filter
                .excluded(path.as_bytes(), kind == FileType::Directory)
            {
                return Ok(None);
            }
        }
        let sub = match kind {
            FileType::Directory => Some(at.rel.join(name, at.limits)?),
            _ => None,
        };
        #[allow(clippy::unnecessary_cast)]
        let key = (kind == FileType::RegularFile && st.st_nlink as u64 > 1)
            .then_some((st.st_dev, st.st_ino));
        let leader = key.and_then(|k| self.leaders.get(&k).cloned());
        let Some(entry) = entry::build(at, name, &st, leader)? else {
            return Ok(None);
        };
        let index = self.next_index;
        self.next_index += 1;
        if let (Some(k), Content::File { .. }) = (key, &entry.content) {
            self.leaders
                .insert(k, (index, at.rel.join(name, at.limits)?));
        }
        Ok(Some((SourceEntry { index, entry }, sub)))
    }
}

impl Listing {
    fn fail(&mut self, e: TreeError) {
        self.complete = false;
        self.errors.push(e);
    }
}

/// Opens a directory beneath the root (no symlink crossed) and reads its names,
/// sorted. Errors go into the listing; a read error midway keeps what was read. `None`
/// if the directory could not be opened at all.
fn read_names(root: &SourceRoot, listing: &mut Listing) -> Option<(OwnedFd, Vec<Vec<u8>>)> {
    let rel = listing.dir.clone();
    let shown_dir = || shown(&rel, b"");
    let opened = root.open_dir(&rel).and_then(|fd| {
        let dir = rfs::Dir::read_from(&fd).map_err(|e| io_err("readdir", shown_dir(), e))?;
        Ok((fd, dir))
    });
    let (fd, mut dir) = match opened {
        Ok(opened) => opened,
        Err(e) => {
            listing.fail(e);
            return None;
        }
    };
    let mut names = Vec::new();
    while let Some(entry) = dir.read() {
        match entry {
            Ok(entry) => {
                let name = entry.file_name().to_bytes();
                if name != b"." && name != b".." {
                    names.push(name.to_vec());
                }
            }
            Err(e) => {
                listing.fail(io_err("readdir", shown_dir(), e));
                break;
            }
        }
    }
    names.sort_unstable();
    Some((fd, names))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::fs::{Mode, OFlags};

    #[test]
    fn an_entry_that_vanished_after_readdir_is_skipped_silently() {
        let base = tempfile::tempdir().unwrap();
        let mut walker = Walker::new(
            base.path(),
            WalkOptions { checksum: true },
            Limits::default(),
        )
        .unwrap();
        let fd = rfs::open(
            base.path(),
            OFlags::RDONLY | OFlags::DIRECTORY,
            Mode::empty(),
        )
        .unwrap();
        let limits = Limits::default();
        let root = RelPath::root();
        let at = At {
            dir_fd: std::os::fd::AsFd::as_fd(&fd),
            xattr_paths: XattrPaths::ProcFd,
            dir_path: base.path(),
            rel: &root,
            checksum: true,
            limits: &limits,
        };
        // As if readdir had returned a name that is gone by the time of lstat.
        assert!(walker.one(&at, b"gone").unwrap().is_none());
        std::fs::write(base.path().join("here"), b"1").unwrap();
        let (entry, sub) = walker.one(&at, b"here").unwrap().unwrap();
        assert_eq!((entry.index, sub), (0, None));
        // The numbering only advances for emitted entries.
        assert!(walker.one(&at, b"gone").unwrap().is_none());
        assert_eq!(walker.one(&at, b"here").unwrap().unwrap().0.index, 1);
    }
}
