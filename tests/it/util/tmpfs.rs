//! A tmpfs mounted for one test (the tests run as root): a filesystem of a chosen size,
//! to fill up or to declare files as large as.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs mounted for the test, unmounted on drop.
pub struct Tmpfs {
    pub dir: PathBuf,
}

impl Tmpfs {
    pub fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mount tmpfs on {dir:?} failed (needs root)"
        );
        Tmpfs {
            dir: dir.to_path_buf(),
        }
    }

    /// The filesystem's size, as the target reads it (`f_blocks * f_frsize`).
    pub fn capacity(&self) -> u64 {
        let stat = rustix::fs::statvfs(&self.dir).expect("statvfs");
        stat.f_blocks * stat.f_frsize
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}
