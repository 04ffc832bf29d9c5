//! Block volumes on real loop devices (the test command runs as root): a device or disk
//! image pushed onto a served device, pulled from one, re-synced after a small change,
//! refused when it does not fit; zero runs keep a thin target thin. Beside them: hostile
//! peers (`hostile`, and a hostile server in `pull_dest`), a served path swapped for a
//! link (`served_path`), a device in use (`busy`), a size that is not whole blocks
//! (`odd_size`), and what a pull does to a DEST that is not a device (`pull_dest`).
//!
//! Each loop device is detached by a Drop guard, also when a test fails.

mod busy;
mod hostile;
mod odd_size;
mod pull_dest;
mod served_path;
mod sync;

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{Certs, Server};

pub const MIB: u64 = 1024 * 1024;

/// A loop device over a sparse backing file, detached on drop.
pub struct LoopDevice {
    pub dev: PathBuf,
    pub backing: PathBuf,
}

impl LoopDevice {
    /// A device of `size` bytes over `dir/name` (a new sparse file: it reads as zeros).
    pub fn new(dir: &Path, name: &str, size: u64) -> LoopDevice {
        let backing = dir.join(name);
        File::create(&backing)
            .and_then(|f| f.set_len(size))
            .unwrap_or_else(|e| panic!("create {backing:?}: {e}"));
        let out = Command::new("losetup")
            .args(["-f", "--show"])
            .arg(&backing)
            .output()
            .expect("run losetup");
        assert!(
            out.status.success(),
            "losetup -f --show {backing:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let dev = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        LoopDevice { dev, backing }
    }

    /// Writes `bytes` at `offset` through the device.
    pub fn write_at(&self, bytes: &[u8], offset: u64) {
        let dev = OpenOptions::new()
            .write(true)
            .open(&self.dev)
            .expect("open device");
        dev.write_all_at(bytes, offset).expect("write device");
        dev.sync_all().expect("fsync device");
    }

    /// The device's whole content.
    pub fn content(&self) -> Vec<u8> {
        fs::read(&self.dev).unwrap_or_else(|e| panic!("read {:?}: {e}", self.dev))
    }

    /// Bytes the backing file occupies on disk.
    pub fn allocated(&self) -> u64 {
        fs::metadata(&self.backing).expect("stat backing").blocks() * 512
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.dev).status();
    }
}

/// A server with one block volume `blk` over a fresh loop device of `size` bytes.
pub struct BlockFixture {
    pub tmp: tempfile::TempDir,
    pub certs: Certs,
    pub target: LoopDevice,
    pub server: Server,
}

impl BlockFixture {
    pub fn new(size: u64, read_only: bool, fill: impl FnOnce(&LoopDevice)) -> BlockFixture {
        let tmp = tempfile::TempDir::new().expect("tempdir");
        let target = LoopDevice::new(tmp.path(), "target.img", size);
        fill(&target);
        let certs = Certs::new();
        let builder = Server::builder(&certs);
        let server = match read_only {
            true => builder.read_only_volume("blk", &target.dev).start(),
            false => builder.volume("blk", &target.dev).start(),
        };
        BlockFixture {
            tmp,
            certs,
            target,
            server,
        }
    }

    pub fn url(&self) -> String {
        self.server.url("blk")
    }

    /// A file `name` in the fixture's directory holding `content`.
    pub fn image(&self, name: &str, content: &[u8]) -> PathBuf {
        let path = self.tmp.path().join(name);
        fs::write(&path, content).expect("write image");
        path
    }
}
