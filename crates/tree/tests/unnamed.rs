//! Unnamed temp files (`O_TMPFILE`): invisible until committed, linked at the final name
//! or renamed over what is there, and nothing left behind when dropped.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use common::{lstat, meta};
use ferry_proto::RelPath;
use ferry_tree::{Dir, Privileges, TempFile, Volume};

const ROOT: Privileges = Privileges::ALL;

fn volume() -> (tempfile::TempDir, Volume, Dir) {
    let base = tempfile::tempdir().unwrap();
    let volume = Volume::open(base.path(), ROOT).unwrap();
    let root = volume.open_dir(&RelPath::root()).unwrap();
    (base, volume, root)
}

/// The test directory lives on a filesystem with `O_TMPFILE` (ext4, xfs, btrfs, tmpfs):
/// `None` here would mean the receiver silently fell back to named partials.
fn unnamed(dir: &Dir, name: &[u8]) -> TempFile {
    dir.create_unnamed(name, 0o600)
        .unwrap()
        .expect("the test filesystem supports O_TMPFILE")
}

#[test]
fn an_unnamed_file_is_invisible_until_committed_then_has_its_content_and_attributes() {
    let (base, _v, root) = volume();
    let mut t = unnamed(&root, b"new");
    assert!(t.temp_name().is_empty());
    t.write_at(0, b"hello").unwrap();
    t.apply_meta(&meta(0o640, 0, 0, 1_000_000, 5), ROOT)
        .unwrap();
    assert!(
        root.names().unwrap().is_empty(),
        "nothing is visible before commit"
    );
    t.commit(&root, b"new").unwrap();
    assert_eq!(root.names().unwrap(), vec![b"new".to_vec()]);
    let st = lstat(&base.path().join("new"));
    assert_eq!(std::fs::read(base.path().join("new")).unwrap(), b"hello");
    assert_eq!(st.permissions().mode() & 0o7777, 0o640);
    assert_eq!((st.mtime(), st.mtime_nsec()), (1_000_000, 5));
    assert_eq!(st.nlink(), 1);
}

#[test]
fn committing_over_an_existing_file_replaces_it_without_writing_through() {
    let (base, _v, root) = volume();
    let old = base.path().join("f");
    std::fs::write(&old, b"old content").unwrap();
    let keeper = base.path().join("hard-link-to-old");
    std::fs::hard_link(&old, &keeper).unwrap();
    let mut t = unnamed(&root, b"f");
    t.write_at(0, b"new").unwrap();
    t.commit(&root, b"f").unwrap();
    assert_eq!(std::fs::read(&old).unwrap(), b"new");
    assert_eq!(std::fs::read(&keeper).unwrap(), b"old content");
    let mut names = root.names().unwrap();
    names.sort();
    assert_eq!(names, vec![b"f".to_vec(), b"hard-link-to-old".to_vec()]);
}

#[test]
fn committing_over_a_symlink_or_a_directory_replaces_them() {
    let (base, _v, root) = volume();
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("victim");
    std::fs::write(&victim, b"keep").unwrap();
    std::os::unix::fs::symlink(&victim, base.path().join("link")).unwrap();
    std::fs::create_dir_all(base.path().join("dir/sub")).unwrap();
    for name in ["link", "dir"] {
        let mut t = unnamed(&root, name.as_bytes());
        t.write_at(0, name.as_bytes()).unwrap();
        t.commit(&root, name.as_bytes()).unwrap();
        let path = base.path().join(name);
        assert!(lstat(&path).file_type().is_file(), "{name} is now a file");
        assert_eq!(std::fs::read(&path).unwrap(), name.as_bytes());
    }
    assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
    assert_eq!(root.names().unwrap().len(), 2, "no temp name left");
}

#[test]
fn dropped_or_discarded_unnamed_files_leave_nothing() {
    let (_b, _v, root) = volume();
    let mut t = unnamed(&root, b"a");
    t.write_at(0, b"data").unwrap();
    drop(t);
    unnamed(&root, b"b").discard(&root);
    assert!(root.names().unwrap().is_empty());
    let other = root.ensure_dir(b"other").unwrap().0;
    let t = unnamed(&root, b"c");
    assert!(
        t.commit(&other, b"c").is_err(),
        "committed only where it was made"
    );
    assert_eq!(root.names().unwrap(), vec![b"other".to_vec()]);
    assert!(other.names().unwrap().is_empty());
}

const NO_FOWNER_ENV: &str = "FERRY_TREE_NO_FOWNER_DIR";

/// A target holding `CAP_CHOWN` without `CAP_FOWNER` could be refused the link of a file it chowned to another
/// owner (`fs.protected_hardlinks`) after writing it: it must not make unnamed files. The
/// test re-runs itself with `CAP_FOWNER` dropped, so the kernel's view is what is checked.
#[test]
fn root_without_cap_fowner_makes_no_unnamed_files() {
    if let Ok(dir) = std::env::var(NO_FOWNER_ENV) {
        return without_fowner(Path::new(&dir));
    }
    if !rustix::process::geteuid().is_root() {
        return; // not root: it never chowns to another owner, nothing to check
    }
    let base = tempfile::tempdir().unwrap();
    let test = "root_without_cap_fowner_makes_no_unnamed_files";
    common::rerun_in_child(test, NO_FOWNER_ENV, base.path(), |_| {});
}

fn without_fowner(base: &Path) {
    use rustix::thread::{capabilities, set_capabilities, CapabilitySet};
    let mut caps = capabilities(None).unwrap();
    caps.effective.remove(CapabilitySet::FOWNER);
    set_capabilities(None, caps).unwrap();
    // As a target finds its privileges: from the kernel (CAP_CHOWN held, CAP_FOWNER not).
    let privileges = Privileges::current();
    assert!(privileges.applies_owners() && !privileges.has(ferry_tree::Cap::Fowner));
    let volume = Volume::open(base, privileges).unwrap();
    let root = volume.open_dir(&RelPath::root()).unwrap();
    assert!(root.create_unnamed(b"f", 0o600).unwrap().is_none());
    assert!(root.names().unwrap().is_empty(), "the probe left nothing");
}

/// Made with the source's permission bits, an unnamed file still ends with exactly the
/// source's mode: set-id and sticky bits (never given at the create), bits the umask
/// takes away, a mode without write permission for the writer (its fd writes anyway),
/// and under a directory's default ACL, which masks the create mode (the `fchmod`
/// skipped only when the mode already is right).
#[test]
fn a_file_made_with_the_sources_mode_ends_with_exactly_it() {
    let (base, volume, root) = volume();
    std::fs::create_dir(base.path().join("acl")).unwrap();
    // A default ACL of u::rwx,g::---,o::--- (the xattr's binary form: version 2, then
    // tag, permissions, id per entry): files made in the directory get at most 0o700.
    let mut value = 2u32.to_le_bytes().to_vec();
    for (tag, perm) in [(0x01u16, 7u16), (0x04, 0), (0x20, 0)] {
        value.extend(tag.to_le_bytes());
        value.extend(perm.to_le_bytes());
        value.extend(u32::MAX.to_le_bytes());
    }
    let acl = rustix::fs::setxattr(
        base.path().join("acl"),
        "system.posix_acl_default",
        &value,
        rustix::fs::XattrFlags::empty(),
    )
    .is_ok();
    let acl_dir = volume.open_dir(&common::rel("acl")).unwrap();
    let modes = [
        0o644, 0o640, 0o777, 0o666, 0o4755, 0o2750, 0o1777, 0o444, 0o000,
    ];
    for (dir, sub) in [(&root, ""), (&acl_dir, "acl/")] {
        if sub == "acl/" && !acl {
            eprintln!("no default ACL here (filesystem without ACLs): that case is not checked");
            continue;
        }
        for mode in modes {
            let name = format!("m{mode:o}");
            let mut t = dir.create_unnamed(name.as_bytes(), mode).unwrap().unwrap();
            t.write_at(0, b"data").unwrap();
            t.apply_meta(&meta(mode, 0, 0, 7, 0), ROOT).unwrap();
            t.commit(dir, name.as_bytes()).unwrap();
            let path = base.path().join(format!("{sub}{name}"));
            let st = lstat(&path);
            assert_eq!(
                st.permissions().mode() & 0o7777,
                mode,
                "{}: mode {:o}, the source's {mode:o}",
                path.display(),
                st.permissions().mode() & 0o7777
            );
            assert_eq!(std::fs::read(&path).unwrap(), b"data");
        }
    }
}
