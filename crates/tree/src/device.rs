//! A block session's one file: a block device or a disk image (a regular file), opened
//! whole and read or written at offsets. It owns the syscalls of a block sync: the size
//! (`lseek(SEEK_END)`, which a block device answers with its capacity), positioned reads
//! and writes, zeroing a range without writing it (`fallocate(PUNCH_HOLE | KEEP_SIZE)`,
//! which a block device turns into a discard or write-zeroes, with zeros written where
//! neither is supported), and the final flush.
//!
//! It does not decide what to write, nor check the peer's offsets (the block cores in
//! `ferry_proto::session::block` do); writes past the size it was opened with are
//! refused here too, as a last fence.
//!
//! Must not import: the network, the engine.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::FallocateFlags;

use crate::error::TreeError;

/// What a path holds, for a block session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceKind {
    /// A block device: fixed size; a target smaller than the source is refused.
    Block,
    /// A regular file (a disk image): a target is resized to the source's size.
    Image,
}

impl DeviceKind {
    /// A block device or a regular file at `path` (symlinks followed, as a device path
    /// such as `/dev/disk/by-id/...` is one); `None` for anything else or nothing.
    pub fn of(path: &Path) -> Option<DeviceKind> {
        let kind = std::fs::metadata(path).ok()?.file_type();
        if kind.is_block_device() {
            Some(DeviceKind::Block)
        } else if kind.is_file() {
            Some(DeviceKind::Image)
        } else {
            None
        }
    }
}

/// An open device or image.
#[derive(Debug)]
pub struct Device {
    file: File,
    kind: DeviceKind,
    size: u64,
    path: PathBuf,
}

impl Device {
    /// Opens `path` to read it.
    pub fn open_read(path: &Path) -> Result<Device, TreeError> {
        let file = File::open(path).map_err(|e| io("open", path, e))?;
        Device::new(file, path)
    }

    /// Opens `path`, an existing device or image, to write it in place. A block device
    /// is opened exclusively (`O_EXCL`: the kernel refuses it while it is mounted or held
    /// by another exclusive user).
    pub fn open_write(path: &Path) -> Result<Device, TreeError> {
        let mut options = OpenOptions::new();
        options.read(true).write(true);
        match DeviceKind::of(path) {
            Some(DeviceKind::Block) => {
                options.custom_flags(rustix::fs::OFlags::EXCL.bits() as i32);
            }
            Some(DeviceKind::Image) => {}
            None => {
                return Err(io(
                    "open",
                    path,
                    std::io::Error::other("not a block device or a regular file"),
                ))
            }
        }
        let file = options.open(path).map_err(|e| open_error(path, e))?;
        Device::new(file, path)
    }

    /// Opens a served block volume at `path`, which must be the canonical path (no
    /// symbolic link on the way) the server resolved when it started: to write it in
    /// place as [`Device::open_write`] does, or to read it. A path that now crosses a
    /// symbolic link is refused, so a file swapped for a link since (by a push to a volume
    /// that holds its directory, or a local user who may write there) cannot redirect
    /// the session's writes or reads to another file.
    pub fn open_served(path: &Path, write: bool) -> Result<Device, TreeError> {
        let kind = std::fs::symlink_metadata(path).map_err(|e| io("stat", path, e))?;
        let mut options = OpenOptions::new();
        options.read(true).write(write);
        let mut flags = rustix::fs::OFlags::NOFOLLOW;
        if write && kind.file_type().is_block_device() {
            flags |= rustix::fs::OFlags::EXCL;
        }
        options.custom_flags(flags.bits() as i32);
        let linked = || {
            io(
                "open",
                path,
                std::io::Error::other(
                    "it is now reached through a symbolic link, which it was not when the server started; refused, as the link could lead the session to another file (restart ferry serve if the change is yours)",
                ),
            )
        };
        let file = match options.open(path) {
            Ok(file) => file,
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
                return Err(linked())
            }
            Err(e) => return Err(open_error(path, e)),
        };
        // O_NOFOLLOW covers the last component; the kernel's name for what was opened
        // covers the directories on the way.
        let opened = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))
            .map_err(|e| io("readlink /proc/self/fd of", path, e))?;
        if opened != path {
            return Err(linked());
        }
        Device::new(file, path)
    }

    fn new(mut file: File, path: &Path) -> Result<Device, TreeError> {
        let kind = if file
            .metadata()
            .map_err(|e| io("stat", path, e))?
            .file_type()
            .is_block_device()
        {
            DeviceKind::Block
        } else {
            DeviceKind::Image
        };
        let size = file
            .seek(SeekFrom::End(0))
            .map_err(|e| io("lseek", path, e))?;
        Ok(Device {
            file,
            kind,
            size,
            path: path.to_owned(),
        })
    }

    pub fn kind(&self) -> DeviceKind {
        self.kind
    }

    /// Bytes it holds (a device's capacity, an image's length).
    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The most an image may grow to: the size of the file system that holds it
    /// (`fstatvfs`: `f_blocks * f_frsize`), as no larger image could ever be filled
    /// there. A device's is its size.
    pub fn room(&self) -> Result<u64, TreeError> {
        if self.kind == DeviceKind::Block {
            return Ok(self.size);
        }
        let stat =
            rustix::fs::fstatvfs(&self.file).map_err(|e| io("statvfs", &self.path, e.into()))?;
        Ok(stat.f_blocks.saturating_mul(stat.f_frsize))
    }

    /// Sets an image's length (a longer one reads as zeros past the old end, without
    /// taking space).
    ///
    /// # Panics
    /// On a block device, whose size is fixed.
    pub fn resize(&mut self, size: u64) -> Result<(), TreeError> {
        assert_eq!(
            self.kind,
            DeviceKind::Image,
            "a block device has a fixed size"
        );
        self.file
            .set_len(size)
            .map_err(|e| io("truncate", &self.path, e))?;
        self.size = size;
        Ok(())
    }

    /// Fills `buf` from `offset`; fewer bytes only at the end.
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize, TreeError> {
        let mut done = 0;
        while done < buf.len() {
            match self.file.read_at(&mut buf[done..], offset + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io("read", &self.path, e)),
            }
        }
        Ok(done)
    }

    /// Writes all of `bytes` at `offset`, which must lie within the size.
    pub fn write_at(&self, bytes: &[u8], offset: u64) -> Result<(), TreeError> {
        self.check_range(offset, bytes.len() as u64)?;
        self.file
            .write_all_at(bytes, offset)
            .map_err(|e| io("write", &self.path, e))
    }

    /// Makes `offset..offset + len` read as zeros: a hole (or a discard) where the file
    /// system or device can, zeros written where it cannot.
    pub fn zero(&self, offset: u64, len: u64) -> Result<(), TreeError> {
        self.check_range(offset, len)?;
        let punch = FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE;
        if rustix::fs::fallocate(&self.file, punch, offset, len).is_ok() {
            return Ok(());
        }
        let zeros = vec![0u8; len.min(1 << 20) as usize];
        let mut at = offset;
        while at < offset + len {
            let n = zeros.len().min((offset + len - at) as usize);
            self.write_at(&zeros[..n], at)?;
            at += n as u64;
        }
        Ok(())
    }

    /// Flushes what was written to stable storage.
    pub fn sync(&self) -> Result<(), TreeError> {
        self.file.sync_all().map_err(|e| io("fsync", &self.path, e))
    }

    fn check_range(&self, offset: u64, len: u64) -> Result<(), TreeError> {
        match offset.checked_add(len) {
            Some(end) if end <= self.size => Ok(()),
            _ => Err(io(
                "write",
                &self.path,
                std::io::Error::other(format!(
                    "{len} bytes at {offset} reach past the end ({} bytes)",
                    self.size
                )),
            )),
        }
    }
}

/// An open to write that failed; a device another program holds exclusively (`EBUSY`
/// for our `O_EXCL`) says so and what to do.
fn open_error(path: &Path, e: std::io::Error) -> TreeError {
    if e.raw_os_error() == Some(rustix::io::Errno::BUSY.raw_os_error()) {
        return io(
            "open",
            path,
            std::io::Error::other(
                "the device is in use: mounted, or held open exclusively by another program (a volume group, a RAID or a VM); unmount it or stop that program, then run again",
            ),
        );
    }
    io("open", path, e)
}

fn io(op: &'static str, path: &Path, source: std::io::Error) -> TreeError {
    TreeError::Io {
        op,
        path: path.display().to_string(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_is_read_written_zeroed_and_fenced_at_its_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk.img");
        std::fs::write(&path, vec![7u8; 3 * 4096]).unwrap();
        assert_eq!(DeviceKind::of(&path), Some(DeviceKind::Image));
        assert_eq!(DeviceKind::of(dir.path()), None);
        let mut image = Device::open_write(&path).unwrap();
        assert_eq!((image.kind(), image.size()), (DeviceKind::Image, 3 * 4096));

        image.write_at(b"abc", 4096).unwrap();
        image.zero(0, 4096).unwrap();
        let mut buf = vec![1u8; 3 * 4096];
        assert_eq!(image.read_at(&mut buf, 0).unwrap(), 3 * 4096);
        assert!(buf[..4096].iter().all(|&b| b == 0));
        assert_eq!(&buf[4096..4099], b"abc");
        assert_eq!(buf[4099], 7);

        // Nothing lands past the size it has, however the range is given.
        assert!(image.write_at(b"x", 3 * 4096).is_err());
        assert!(image.zero(u64::MAX - 1, 4096).is_err());
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 3 * 4096);

        let room = image.room().unwrap();
        let stat = rustix::fs::statvfs(dir.path()).unwrap();
        assert_eq!(room, stat.f_blocks * stat.f_frsize);
        assert!(room >= 3 * 4096);

        image.resize(5 * 4096).unwrap();
        assert_eq!(image.size(), 5 * 4096);
        image.write_at(b"y", 5 * 4096 - 1).unwrap();
        assert_eq!(
            image.read_at(&mut buf, 4 * 4096).unwrap(),
            4096,
            "short at the end"
        );
    }

    #[test]
    fn a_served_image_is_not_opened_through_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap();
        let image = base.join("disk.img");
        std::fs::write(&image, b"image").unwrap();
        assert!(Device::open_served(&image, true).is_ok());
        assert!(Device::open_served(&image, false).is_ok());

        let other = base.join("other");
        std::fs::write(&other, b"other").unwrap();
        let link = base.join("link.img");
        std::os::unix::fs::symlink(&other, &link).unwrap();
        let linked_dir = base.join("linked");
        std::os::unix::fs::symlink(&base, &linked_dir).unwrap();
        for path in [link, linked_dir.join("disk.img")] {
            for write in [true, false] {
                let refused = Device::open_served(&path, write).unwrap_err().to_string();
                assert!(refused.contains("symbolic link"), "{path:?}: {refused}");
            }
        }
    }

    #[test]
    fn only_an_existing_device_or_image_is_opened_to_write() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Device::open_write(&dir.path().join("missing.img")).is_err());
        assert!(Device::open_write(dir.path()).is_err());
    }
}
