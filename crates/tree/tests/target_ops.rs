//! Target operations: temp files, holes, metadata, privileges, removal.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use common::{lstat, meta, rel};
use ferry_proto::{Meta, RelPath, SpecialKind, Xattr};
use ferry_tree::{Dir, ExistingKind, NotApplied, Privileges, TreeError, Volume};

const ROOT: Privileges = Privileges::ALL;
const USER: Privileges = Privileges::NONE;

fn volume(p: Privileges) -> (tempfile::TempDir, Volume, Dir) {
    let base = tempfile::tempdir().unwrap();
    let volume = Volume::open(base.path(), p).unwrap();
    let root = volume.open_dir(&RelPath::root()).unwrap();
    (base, volume, root)
}

fn xattr(name: &str, value: &str) -> Xattr {
    Xattr {
        name: name.as_bytes().to_vec(),
        value: value.as_bytes().to_vec(),
    }
}

#[test]
fn gaps_and_set_len_leave_holes() {
    let (base, _v, root) = volume(ROOT);
    let mut t = root.create_temp(b"sparse").unwrap();
    let mib = 1024 * 1024;
    t.write_at(0, &[b'a'; 4096]).unwrap();
    t.write_at(8 * mib, &[b'b'; 4096]).unwrap();
    t.set_len(16 * mib).unwrap();
    t.sync().unwrap();
    t.commit(&root, b"sparse").unwrap();
    let p = base.path().join("sparse");
    let md = lstat(&p);
    assert_eq!(md.size(), 16 * mib);
    assert!(md.blocks() * 512 < 1024 * 1024, "blocks {}", md.blocks());
    let data = std::fs::read(&p).unwrap();
    assert!(data[..4096].iter().all(|&b| b == b'a'));
    assert!(data[4096..8 * mib as usize].iter().all(|&b| b == 0));
    assert!(data[8 * mib as usize..8 * mib as usize + 4096]
        .iter()
        .all(|&b| b == b'b'));
    assert!(data[8 * mib as usize + 4096..].iter().all(|&b| b == 0));
    let file = std::fs::File::open(&p).unwrap();
    let regions = ferry_tree::regions(&file, md.size()).unwrap();
    assert!(regions.iter().any(|r| r.hole), "{regions:?}");
    assert_eq!(regions.iter().map(|r| r.len).sum::<u64>(), md.size());
}

#[test]
fn commit_replaces_a_directory_and_leaves_no_temp() {
    let (base, _v, root) = volume(ROOT);
    std::fs::create_dir_all(base.path().join("name/sub/deeper")).unwrap();
    std::fs::write(base.path().join("name/sub/f"), b"old").unwrap();
    let mut t = root.create_temp(b"name").unwrap();
    let temp = t.temp_name().to_vec();
    assert!(Dir::is_temp_name(&temp));
    assert!(temp.starts_with(b".ferry.name."));
    assert_eq!(temp.len(), b".ferry.name.".len() + 8);
    t.write_at(0, b"new").unwrap();
    t.commit(&root, b"name").unwrap();
    assert_eq!(std::fs::read(base.path().join("name")).unwrap(), b"new");
    assert_eq!(root.names().unwrap(), vec![b"name".to_vec()]);
}

#[test]
fn long_names_get_a_hashed_temp_name() {
    let (_b, _v, root) = volume(ROOT);
    let name = vec![b'n'; 250];
    let t = root.create_temp(&name).unwrap();
    assert!(t.temp_name().len() <= 255);
    assert!(t.temp_name().starts_with(b".ferry."));
    assert_eq!(t.temp_name().len(), 7 + 16 + 1 + 8);
}

#[test]
fn dropped_and_discarded_temps_are_removed() {
    let (_b, _v, root) = volume(ROOT);
    drop(root.create_temp(b"a").unwrap());
    root.create_temp(b"b").unwrap().discard(&root);
    assert!(root.names().unwrap().is_empty());
    let other = root.ensure_dir(b"other").unwrap().0;
    let t = root.create_temp(b"c").unwrap();
    assert!(t.commit(&other, b"c").is_err());
    assert_eq!(root.names().unwrap(), vec![b"other".to_vec()]);
}

#[test]
fn apply_meta_sets_special_modes_times_xattrs_and_owner() {
    let (base, _v, root) = volume(ROOT);
    for (i, mode) in [0o4755, 0o2775, 0o1777, 0o6750, 0o000]
        .into_iter()
        .enumerate()
    {
        let name = format!("f{i}");
        let mut t = root.create_temp(name.as_bytes()).unwrap();
        t.write_at(0, b"data").unwrap();
        let m = Meta {
            xattrs: vec![xattr("user.a", "1"), xattr("user.b", "")],
            ..meta(mode, 1234, 5678, 1_600_000_000, 123_456_789)
        };
        assert_eq!(t.apply_meta(&m, ROOT).unwrap(), NotApplied::default());
        t.commit(&root, name.as_bytes()).unwrap();
        let md = lstat(&base.path().join(&name));
        assert_eq!(md.mode() & 0o7777, mode, "{name}");
        assert_eq!((md.uid(), md.gid()), (1234, 5678));
        assert_eq!((md.mtime(), md.mtime_nsec()), (1_600_000_000, 123_456_789));
        assert_eq!(root.xattrs(name.as_bytes()).unwrap(), m.xattrs);
        let e = root.stat(name.as_bytes()).unwrap().unwrap();
        assert_eq!(
            (e.kind, e.mode, e.size, e.uid),
            (ExistingKind::File, mode, 4, 1234)
        );
        assert_eq!(e.mtime, m.mtime);
    }
}

#[test]
fn without_privilege_only_the_group_is_attempted() {
    let (base, _v, root) = volume(USER);
    let mut t = root.create_temp(b"f").unwrap();
    let m = meta(0o640, 4321, 8765, 5, 0);
    let na = t.apply_meta(&m, USER).unwrap();
    assert!(na.owner);
    t.commit(&root, b"f").unwrap();
    let md = lstat(&base.path().join("f"));
    // The uid was not attempted (we are really root here, so it would have worked).
    assert_eq!(md.uid(), rustix::process::geteuid().as_raw());
    // Changing the group is allowed for groups we are in; root is in all of them.
    assert_eq!(md.gid(), 8765);
    // Same ids as ours: nothing to report.
    let mut t = root.create_temp(b"g").unwrap();
    let ours = meta(0o644, md.uid(), md.gid(), 5, 0);
    assert_eq!(t.apply_meta(&ours, USER).unwrap(), NotApplied::default());
}

#[test]
fn devices_need_privilege_fifos_and_sockets_do_not() {
    let (base, _v, root) = volume(USER);
    let m = meta(0o600, 0, 0, 9, 0);
    let dev = rustix::fs::makedev(1, 3);
    let na = root
        .special(b"null", SpecialKind::CharDevice, dev, &m)
        .unwrap();
    assert!(na.special);
    let na = root
        .special(b"blk", SpecialKind::BlockDevice, dev, &m)
        .unwrap();
    assert!(na.special);
    assert!(root.stat(b"null").unwrap().is_none());
    assert!(root.stat(b"blk").unwrap().is_none());
    for (name, kind) in [
        (&b"fifo"[..], SpecialKind::Fifo),
        (b"sock", SpecialKind::Socket),
    ] {
        let na = root
            .special(name, kind, 0, &meta(0o640, 0, 0, 9, 0))
            .unwrap();
        assert!(!na.special);
        let e = root.stat(name).unwrap().unwrap();
        assert_eq!(
            (e.kind, e.mode, e.mtime.sec),
            (ExistingKind::Special(kind), 0o640, 9)
        );
    }
    assert!(root.names().unwrap().iter().all(|n| !Dir::is_temp_name(n)));
    let _ = base;
}

#[test]
fn devices_as_root() {
    let (base, _v, root) = volume(ROOT);
    let dev = rustix::fs::makedev(1, 3);
    let na = root
        .special(
            b"null",
            SpecialKind::CharDevice,
            dev,
            &meta(0o666, 0, 0, 3, 0),
        )
        .unwrap();
    if na.special {
        return; // no CAP_MKNOD here: reported, not fatal
    }
    let e = root.stat(b"null").unwrap().unwrap();
    assert_eq!(e.kind, ExistingKind::Special(SpecialKind::CharDevice));
    assert_eq!((e.rdev, e.mode), (dev, 0o666));
    // set_meta on a device never opens it for I/O.
    root.set_meta(b"null", &meta(0o600, 7, 7, 4, 0)).unwrap();
    assert_eq!(lstat(&base.path().join("null")).mode() & 0o7777, 0o600);
}

#[test]
fn set_meta_syncs_xattrs_but_keeps_foreign_namespaces() {
    for privileges in [ROOT, USER] {
        let (base, _v, root) = volume(privileges);
        let p = base.path().join("f");
        std::fs::write(&p, b"x").unwrap();
        common::set_xattr(&p, "user.old", b"1");
        common::set_xattr(&p, "user.same", b"s");
        common::set_xattr(&p, "trusted.t", b"t");
        let m = Meta {
            xattrs: vec![xattr("user.new", "n"), xattr("user.same", "s")],
            ..meta(0o751, 0, 0, 77, 5)
        };
        let na = root.set_meta(b"f", &m).unwrap();
        assert_eq!(na.xattrs, 0);
        let names: Vec<_> = common::list_xattrs(&p)
            .into_iter()
            .map(|x| x.name)
            .collect();
        let mut want = vec![b"user.new".to_vec(), b"user.same".to_vec()];
        if !privileges.has(ferry_tree::Cap::SysAdmin) {
            want.insert(0, b"trusted.t".to_vec());
        }
        assert_eq!(names, want);
        let md = lstat(&p);
        assert_eq!(
            (md.mode() & 0o7777, md.mtime(), md.mtime_nsec()),
            (0o751, 77, 5)
        );
    }
}

#[test]
fn set_own_meta_sets_mtime_last_after_contents() {
    let (base, v, root) = volume(ROOT);
    let (d, created) = root.ensure_dir(b"d").unwrap();
    assert!(created);
    assert_eq!(lstat(&base.path().join("d")).mode() & 0o777, 0o700);
    let mut t = d.create_temp(b"f").unwrap();
    t.write_at(0, b"1").unwrap();
    t.commit(&d, b"f").unwrap();
    let m = meta(0o2775, 0, 100, 1000, 1);
    d.set_own_meta(&m).unwrap();
    let md = lstat(&base.path().join("d"));
    assert_eq!(
        (md.mode() & 0o7777, md.gid(), md.mtime(), md.mtime_nsec()),
        (0o2775, 100, 1000, 1)
    );
    let again = v.open_dir(&rel("d")).unwrap();
    assert_eq!(again.names().unwrap(), vec![b"f".to_vec()]);
    assert_eq!(again.path().as_bytes(), b"d");
}

#[test]
fn ensure_dir_replaces_files_and_opens_up_dirs_without_privilege() {
    let (base, _v, root) = volume(USER);
    std::fs::write(base.path().join("was_file"), b"x").unwrap();
    let (_, created) = root.ensure_dir(b"was_file").unwrap();
    assert!(created);
    assert!(lstat(&base.path().join("was_file")).is_dir());
    std::fs::create_dir(base.path().join("ro")).unwrap();
    std::fs::set_permissions(
        base.path().join("ro"),
        std::fs::Permissions::from_mode(0o555),
    )
    .unwrap();
    let (_, created) = root.ensure_dir(b"ro").unwrap();
    assert!(!created);
    assert_eq!(lstat(&base.path().join("ro")).mode() & 0o777, 0o755);
}

#[test]
fn remove_counts_and_tolerates_missing() {
    let (base, _v, root) = volume(ROOT);
    std::fs::create_dir_all(base.path().join("t/a/b")).unwrap();
    std::fs::write(base.path().join("t/a/b/f"), b"1").unwrap();
    std::fs::write(base.path().join("t/g"), b"1").unwrap();
    std::os::unix::fs::symlink("/", base.path().join("t/l")).unwrap();
    assert_eq!(root.remove(b"t").unwrap(), 6);
    assert_eq!(root.remove(b"t").unwrap(), 0);
    assert!(root.names().unwrap().is_empty());
}

#[test]
fn symlinks_hard_links_basis_and_errors() {
    let (base, v, root) = volume(ROOT);
    let m = meta(0o777, 11, 12, 42, 7);
    assert_eq!(
        root.symlink(b"dangling", b"no/such\xff", &m).unwrap(),
        NotApplied::default()
    );
    assert_eq!(root.read_link(b"dangling").unwrap(), b"no/such\xff");
    let md = lstat(&base.path().join("dangling"));
    assert_eq!(
        (md.uid(), md.gid(), md.mtime(), md.mtime_nsec()),
        (11, 12, 42, 7)
    );
    // Without privilege, different ids are reported.
    let user_root = Volume::open(base.path(), USER)
        .unwrap()
        .open_dir(&RelPath::root())
        .unwrap();
    assert!(user_root.symlink(b"l2", b"x", &m).unwrap().owner);
    // Replacing a directory with a symlink.
    std::fs::create_dir_all(base.path().join("dir/sub")).unwrap();
    root.symlink(b"dir", b"target", &m).unwrap();
    assert_eq!(
        root.stat(b"dir").unwrap().unwrap().kind,
        ExistingKind::Symlink
    );
    // Hard links across directories of the volume.
    std::fs::write(base.path().join("leader"), b"L").unwrap();
    let (sub, _) = root.ensure_dir(b"sub").unwrap();
    sub.hard_link(b"follower", &root, b"leader").unwrap();
    assert_eq!(
        lstat(&base.path().join("sub/follower")).ino(),
        lstat(&base.path().join("leader")).ino()
    );
    assert!(sub
        .hard_link(b"x", &root, b"missing")
        .unwrap_err()
        .is_not_found());
    // Basis: only regular files.
    let mut f = root.open_basis(b"leader").unwrap().unwrap();
    let mut s = String::new();
    std::io::Read::read_to_string(&mut f, &mut s).unwrap();
    assert_eq!(s, "L");
    assert!(root.open_basis(b"missing").unwrap().is_none());
    assert!(root.open_basis(b"sub").unwrap().is_none());
    common::mkfifo(&base.path().join("fifo"));
    assert!(root.open_basis(b"fifo").unwrap().is_none());
    assert!(root.stat(b"missing").unwrap().is_none());
    assert!(root.read_link(b"missing").unwrap_err().is_not_found());
    v.check_writable().unwrap();
    assert!(root.names().unwrap().iter().all(|n| !Dir::is_temp_name(n)));
    assert!(Volume::open(&base.path().join("leader"), ROOT).is_err());
    let e = root.set_meta(b"missing", &m).unwrap_err();
    assert!(matches!(e, TreeError::Io { op: "open", .. }) && e.is_not_found());
    assert_eq!(e.to_string().split(':').next().unwrap(), "open missing");
}

#[test]
fn temp_names_are_recognised_strictly() {
    let (_b, _v, root) = volume(ROOT);
    let t = root.create_temp(b"x.y").unwrap();
    assert!(Dir::is_temp_name(t.temp_name()));
    for user_name in [
        &b".ferry.conf"[..],
        b".ferry.",
        b".ferry..12345678",
        b".ferry.x.1234567G",
        b"ferry.x.12345678",
    ] {
        assert!(!Dir::is_temp_name(user_name), "{user_name:?}");
    }
    assert!(Dir::is_temp_name(b".ferry.x.0123abcd"));
}

#[test]
fn handles_are_send_and_sync() {
    fn both<T: Send + Sync>() {}
    both::<Dir>();
    both::<Volume>();
    both::<ferry_tree::TempFile>();
    both::<TreeError>();
    fn send<T: Send>() {}
    send::<ferry_tree::Walker>();
    send::<ferry_tree::Listing>();
}

#[test]
fn set_meta_on_directories_and_fifos_in_place() {
    let (base, _v, root) = volume(ROOT);
    std::fs::create_dir(base.path().join("d")).unwrap();
    common::mkfifo(&base.path().join("p"));
    common::set_xattr(&base.path().join("d"), "user.gone", b"1");
    for name in ["d", "p"] {
        let m = Meta {
            xattrs: vec![xattr("user.k", "v")],
            ..meta(0o1750, 21, 22, 123, 456)
        };
        // Linux allows `user.*` only on files and directories: refused on the FIFO.
        let refused = u32::from(name == "p");
        let na = root.set_meta(name.as_bytes(), &m).unwrap();
        assert_eq!((na.owner, na.xattrs), (false, refused));
        let md = lstat(&base.path().join(name));
        assert_eq!(
            (
                md.mode() & 0o7777,
                md.uid(),
                md.gid(),
                md.mtime(),
                md.mtime_nsec()
            ),
            (0o1750, 21, 22, 123, 456)
        );
        if name == "d" {
            assert_eq!(root.xattrs(b"d").unwrap(), m.xattrs);
        }
        // Unchanged meta: a second pass changes nothing (ctime stays).
        let ctime = (md.ctime(), md.ctime_nsec());
        root.set_meta(name.as_bytes(), &m).unwrap();
        let md = lstat(&base.path().join(name));
        assert_eq!((md.ctime(), md.ctime_nsec()), ctime);
    }
}

#[test]
fn a_volume_root_is_created_when_missing_in_an_existing_parent() {
    let tmp = tempfile::TempDir::new().unwrap();
    let dest = tmp.path().join("dest");
    Volume::create(&dest, Privileges::current()).expect("created");
    assert!(dest.is_dir());
    std::fs::write(dest.join("kept"), b"k").unwrap();
    Volume::create(&dest, Privileges::current()).expect("an existing root is opened");
    assert!(dest.join("kept").exists(), "nothing in it was touched");
    let Err(e) = Volume::create(&tmp.path().join("missing/dest"), Privileges::current()) else {
        panic!("the parent must exist");
    };
    assert!(e.to_string().contains("missing/dest"), "{e}");
}
