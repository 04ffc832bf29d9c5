//! The same operations as a real unprivileged user: the test re-runs itself as
//! `nobody` (when started as root), so the kernel, not a flag, says no.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;

use common::{lstat, meta};
use ferry_proto::{Meta, RelPath, SpecialKind, Xattr};
use ferry_tree::{Privileges, Volume};

const NOBODY: u32 = 65534;
const CHILD_ENV: &str = "FERRY_TREE_UNPRIVILEGED_DIR";

#[test]
fn as_a_real_unprivileged_user() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        return child(Path::new(&dir));
    }
    if !rustix::process::geteuid().is_root() {
        return; // already unprivileged: nothing to switch to
    }
    let base = tempfile::tempdir().unwrap();
    std::os::unix::fs::chown(base.path(), Some(NOBODY), Some(NOBODY)).unwrap();
    common::rerun_in_child(
        "as_a_real_unprivileged_user",
        CHILD_ENV,
        base.path(),
        |child| {
            child.uid(NOBODY).gid(NOBODY);
        },
    );
}

fn child(base: &Path) {
    let privileges = Privileges::current();
    assert!(privileges.caps.is_empty(), "{privileges:?}");
    let volume = Volume::open(base, privileges).unwrap();
    let root = volume.open_dir(&RelPath::root()).unwrap();
    let user = |v: &str| Xattr {
        name: format!("user.{v}").into_bytes(),
        value: v.as_bytes().to_vec(),
    };

    // Ownership: only the group could change, and not to root's; reported.
    let mut t = root.create_temp(b"ro").unwrap();
    t.write_at(0, b"data").unwrap();
    let m = Meta {
        xattrs: vec![user("a")],
        ..meta(0o444, 0, 0, 10, 0)
    };
    let na = t.apply_meta(&m, privileges).unwrap();
    assert!(na.owner);
    assert_eq!(na.xattrs, 0);
    t.commit(&root, b"ro").unwrap();
    assert_eq!(lstat(&base.join("ro")).uid(), NOBODY);

    // A read-only file of ours still gets its xattrs, and keeps its final mode.
    let m2 = Meta {
        xattrs: vec![user("b")],
        ..meta(0o444, NOBODY, NOBODY, 11, 0)
    };
    let na = root.set_meta(b"ro", &m2).unwrap();
    assert_eq!((na.owner, na.xattrs), (false, 0));
    assert_eq!(root.xattrs(b"ro").unwrap(), m2.xattrs);
    assert_eq!(lstat(&base.join("ro")).mode() & 0o7777, 0o444);

    // Directories left read-only or unreadable by a previous pass can be filled and removed.
    for mode in [0o555, 0o000] {
        let d = base.join(format!("d{mode:o}"));
        std::fs::create_dir_all(d.join("sub")).unwrap();
        std::fs::write(d.join("sub/f"), b"1").unwrap();
        std::fs::set_permissions(d.join("sub"), std::fs::Permissions::from_mode(mode)).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(mode)).unwrap();
        let name = format!("d{mode:o}");
        let (dir, created) = root.ensure_dir(name.as_bytes()).unwrap();
        assert!(!created);
        let mut t = dir.create_temp(b"new").unwrap();
        t.write_at(0, b"x").unwrap();
        t.commit(&dir, b"new").unwrap();
        assert_eq!(root.remove(name.as_bytes()).unwrap(), 4);
        assert!(!d.exists());
    }

    // Devices are not even attempted; FIFOs are made.
    let dev = rustix::fs::makedev(1, 3);
    let na = root
        .special(
            b"null",
            SpecialKind::CharDevice,
            dev,
            &meta(0o600, NOBODY, NOBODY, 1, 0),
        )
        .unwrap();
    assert!(na.special);
    assert!(root.stat(b"null").unwrap().is_none());
    let na = root
        .special(
            b"fifo",
            SpecialKind::Fifo,
            0,
            &meta(0o600, NOBODY, NOBODY, 1, 0),
        )
        .unwrap();
    assert_eq!(na, Default::default());
    volume.check_writable().unwrap();

    // An unnamed temp file is linked into place through /proc/self/fd as a plain user.
    let mut t = root
        .create_unnamed(b"unnamed", 0o644)
        .unwrap()
        .expect("the test filesystem supports O_TMPFILE");
    t.write_at(0, b"data").unwrap();
    t.apply_meta(&meta(0o644, NOBODY, NOBODY, 7, 0), privileges)
        .unwrap();
    t.commit(&root, b"unnamed").unwrap();
    assert_eq!(std::fs::read(base.join("unnamed")).unwrap(), b"data");
}
