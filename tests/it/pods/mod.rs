//! Ferry as the transfer pods of a migration: supplemental groups and `--run-as` on both
//! sides, honest reports from a target without privileges, and `ferry manifests`.
//!
//! These tests start as root (as CI does) and drop to uid 1001, the way a hand-run
//! ferry between two hosts does, or start as uid 1001 with the groups already granted,
//! the way kubelet starts a pod.

mod capabilities;
mod groups;
mod manifests;
mod manifests_privileges;
mod manifests_schema;
mod not_applied;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::util::Certs;

/// The plain user the tests drop to, and the group that grants access to the storage.
pub const USER: u32 = 1001;
pub const GROUP: u32 = 2000;

/// The capabilities a non-root source and target are given in the capability tests,
/// which `privileges: least` pods must carry exactly (as `--keep-caps` takes them).
pub const SOURCE_CAPS: &str = "dac_read_search";
pub const TARGET_CAPS: &str = "chown,fowner,fsetid,dac_override";

/// Lets a plain user walk down to the test's directories (TempDir makes them 0700).
pub fn open_up(dir: &Path) {
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).expect("chmod 0755");
}

/// A copy of the client TLS files a plain user can read: a push reads them after it
/// dropped to `--run-as` (serve reads its own before).
pub fn readable_client_tls(certs: &Certs, base: &Path) -> PathBuf {
    let tls = base.join("client-tls");
    fs::create_dir(&tls).expect("mkdir client-tls");
    for name in ["tls.crt", "tls.key", "ca.crt"] {
        fs::copy(certs.client_dir().join(name), tls.join(name)).expect("copy tls file");
        fs::set_permissions(tls.join(name), fs::Permissions::from_mode(0o644)).expect("chmod");
    }
    tls
}
