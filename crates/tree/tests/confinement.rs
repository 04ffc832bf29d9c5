//! Nothing outside the volume may be created, written, chmod-ed, chowned, renamed or
//! removed, whatever names are passed and whatever symlinks the volume holds.

mod common;

use std::os::unix::fs::{symlink, MetadataExt};
use std::path::{Path, PathBuf};

use common::{lstat, meta, rel, snapshot};
use ferry_proto::{Meta, RelPath, SpecialKind, Timestamp, Xattr};
use ferry_tree::{Dir, ExistingKind, Privileges, TreeError, Volume};

/// `base/outside` is the sentinel tree; `base/vol` the volume, with
/// `inside/link -> <abs outside>` and `inside/flink -> ../../outside/file`.
struct Setup {
    _base: tempfile::TempDir,
    outside: PathBuf,
    vol_path: PathBuf,
    volume: Volume,
}

fn setup() -> Setup {
    let base = tempfile::tempdir().unwrap();
    let outside = base.path().join("outside");
    std::fs::create_dir_all(outside.join("dir")).unwrap();
    std::fs::write(outside.join("file"), b"precious").unwrap();
    std::fs::write(outside.join("dir/inner"), b"also precious").unwrap();
    common::set_xattr(&outside.join("file"), "user.keep", b"me");
    let vol_path = base.path().join("vol");
    std::fs::create_dir_all(vol_path.join("inside")).unwrap();
    symlink(&outside, vol_path.join("inside/link")).unwrap();
    symlink("../../outside/file", vol_path.join("inside/flink")).unwrap();
    symlink(&outside, vol_path.join("rootlink")).unwrap();
    let volume = Volume::open(&vol_path, Privileges::ALL).unwrap();
    Setup {
        _base: base,
        outside,
        vol_path,
        volume,
    }
}

fn inside(s: &Setup) -> Dir {
    s.volume.open_dir(&rel("inside")).unwrap()
}

fn hostile_meta() -> Meta {
    Meta {
        xattrs: vec![Xattr {
            name: b"user.evil".to_vec(),
            value: b"1".to_vec(),
        }],
        ..meta(0o4777, 4242, 4343, 1, 0)
    }
}

fn assert_escape<T>(r: Result<T, TreeError>) {
    match r {
        Err(TreeError::Escape { .. }) => {}
        Err(e) => panic!("expected Escape, got {e:?}"),
        Ok(_) => panic!("expected Escape, got Ok"),
    }
}

#[test]
fn open_dir_refuses_symlink_components() {
    let s = setup();
    assert_escape(s.volume.open_dir(&rel("inside/link")));
    assert_escape(s.volume.open_dir(&rel("inside/link/dir")));
    assert_escape(s.volume.open_dir(&rel("rootlink")));
    assert_escape(s.volume.open_dir(&rel("inside/flink")));
    assert_escape(inside(&s).open_subdir(b"link"));
    assert!(s
        .volume
        .open_dir(&rel("missing"))
        .unwrap_err()
        .is_not_found());
    let root = s.volume.open_dir(&RelPath::root()).unwrap();
    assert!(root.path().is_root());
    assert_eq!(inside(&s).path().as_bytes(), b"inside");
}

#[test]
fn ensure_dir_replaces_a_symlink_and_leaves_the_outside_alone() {
    let s = setup();
    let before = snapshot(&s.outside);
    let (dir, created) = inside(&s).ensure_dir(b"link").unwrap();
    assert!(created);
    assert!(lstat(&s.vol_path.join("inside/link")).is_dir());
    let mut t = dir.create_temp(b"new").unwrap();
    t.write_at(0, b"x").unwrap();
    t.commit(&dir, b"new").unwrap();
    assert!(s.vol_path.join("inside/link/new").is_file());
    // A second call opens what is there.
    let (_, created) = inside(&s).ensure_dir(b"link").unwrap();
    assert!(!created);
    assert_eq!(snapshot(&s.outside), before);
}

#[test]
fn commit_onto_a_symlink_replaces_the_link() {
    let s = setup();
    let before = snapshot(&s.outside);
    let dir = inside(&s);
    for name in [&b"flink"[..], b"link"] {
        let mut t = dir.create_temp(name).unwrap();
        t.write_at(0, b"replaced").unwrap();
        t.apply_meta(&hostile_meta(), Privileges::ALL).unwrap();
        t.commit(&dir, name).unwrap();
        let p = s
            .vol_path
            .join("inside")
            .join(std::str::from_utf8(name).unwrap());
        assert!(lstat(&p).is_file());
        assert_eq!(std::fs::read(&p).unwrap(), b"replaced");
    }
    assert_eq!(snapshot(&s.outside), before);
}

#[test]
fn remove_of_a_link_to_a_directory_removes_only_the_link() {
    let s = setup();
    let before = snapshot(&s.outside);
    let dir = inside(&s);
    assert_eq!(dir.remove(b"link").unwrap(), 1);
    assert_eq!(dir.remove(b"flink").unwrap(), 1);
    assert_eq!(dir.remove(b"link").unwrap(), 0);
    let root = s.volume.open_dir(&RelPath::root()).unwrap();
    assert_eq!(root.remove(b"rootlink").unwrap(), 1);
    // Recursive removal of a directory holding links.
    assert_eq!(root.remove(b"inside").unwrap(), 1);
    assert_eq!(snapshot(&s.outside), before);
}

#[test]
fn recursive_remove_never_descends_through_links() {
    let s = setup();
    let before = snapshot(&s.outside);
    let root = s.volume.open_dir(&RelPath::root()).unwrap();
    std::fs::create_dir_all(s.vol_path.join("inside/d/e")).unwrap();
    std::fs::write(s.vol_path.join("inside/d/e/f"), b"1").unwrap();
    symlink(&s.outside, s.vol_path.join("inside/d/e/out")).unwrap();
    // inside, link, flink, d, e, f, out
    assert_eq!(root.remove(b"inside").unwrap(), 7);
    assert!(!s.vol_path.join("inside").exists());
    assert_eq!(snapshot(&s.outside), before);
}

#[test]
fn set_meta_on_a_symlink_never_touches_its_target() {
    let s = setup();
    let before = snapshot(&s.outside);
    let dir = inside(&s);
    for name in [&b"flink"[..], b"link"] {
        dir.set_meta(name, &hostile_meta()).unwrap();
        dir.set_link_meta(name, &hostile_meta()).unwrap();
        let md = lstat(&common::path_of(&s.vol_path.join("inside"), name));
        assert!(md.file_type().is_symlink());
        assert_eq!((md.uid(), md.gid(), md.mtime()), (4242, 4343, 1));
        assert_eq!(dir.xattrs(name).unwrap(), Vec::new());
        assert!(dir.open_basis(name).unwrap().is_none());
        assert_eq!(dir.stat(name).unwrap().unwrap().kind, ExistingKind::Symlink);
    }
    assert_eq!(snapshot(&s.outside), before);
}

#[test]
fn hard_link_never_follows() {
    let s = setup();
    let before = snapshot(&s.outside);
    let dir = inside(&s);
    dir.hard_link(b"hl", &dir, b"flink").unwrap();
    let st = dir.stat(b"hl").unwrap().unwrap();
    assert_eq!(st.kind, ExistingKind::Symlink);
    assert_eq!(st.ino, dir.stat(b"flink").unwrap().unwrap().ino);
    // Linking onto an existing symlink name replaces the link.
    std::fs::write(s.vol_path.join("inside/real"), b"data").unwrap();
    dir.hard_link(b"link", &dir, b"real").unwrap();
    assert_eq!(
        std::fs::read(s.vol_path.join("inside/link")).unwrap(),
        b"data"
    );
    assert_eq!(lstat(&s.vol_path.join("inside/real")).nlink(), 2);
    // Same inode already: nothing happens, no temp left behind.
    dir.hard_link(b"link", &dir, b"real").unwrap();
    assert!(dir.names().unwrap().iter().all(|n| !Dir::is_temp_name(n)));
    assert_eq!(snapshot(&s.outside), before);
}

#[test]
fn symlink_and_special_replace_links() {
    let s = setup();
    let before = snapshot(&s.outside);
    let dir = inside(&s);
    dir.symlink(b"link", b"/etc/passwd", &hostile_meta())
        .unwrap();
    assert_eq!(dir.read_link(b"link").unwrap(), b"/etc/passwd");
    dir.special(b"flink", SpecialKind::Fifo, 0, &hostile_meta())
        .unwrap();
    let md = lstat(&s.vol_path.join("inside/flink"));
    assert_eq!(md.mode() & 0o170000, 0o010000);
    assert_eq!(md.mode() & 0o7777, 0o4777 & 0o7777);
    assert_eq!(snapshot(&s.outside), before);
}

#[test]
fn hostile_names_are_refused() {
    let s = setup();
    let dir = inside(&s);
    let bad: [&[u8]; 6] = [b"..", b".", b"", b"../outside", b"a/b", b"a\0b"];
    for name in bad {
        let is_bad = |r: Result<(), TreeError>| matches!(r, Err(TreeError::BadName { .. }));
        assert!(is_bad(dir.stat(name).map(|_| ())), "{name:?}");
        assert!(is_bad(dir.create_temp(name).map(|_| ())));
        assert!(is_bad(dir.ensure_dir(name).map(|_| ())));
        assert!(is_bad(dir.remove(name).map(|_| ())));
        assert!(is_bad(
            dir.symlink(name, b"x", &meta(0, 0, 0, 0, 0)).map(|_| ())
        ));
        assert!(is_bad(dir.set_meta(name, &hostile_meta()).map(|_| ())));
        assert!(is_bad(dir.hard_link(b"ok", &dir, name)));
        assert!(is_bad(dir.open_subdir(name).map(|_| ())));
    }
    assert!(matches!(
        dir.symlink(b"ok", b"a\0b", &meta(0, 0, 0, 0, 0)),
        Err(TreeError::BadName { .. })
    ));
}

#[test]
fn set_own_meta_and_ensure_dir_stay_inside() {
    let s = setup();
    let before = snapshot(&s.outside);
    let (dir, _) = inside(&s).ensure_dir(b"link").unwrap();
    let m = Meta {
        mtime: Timestamp { sec: 7, nsec: 9 },
        ..hostile_meta()
    };
    dir.set_own_meta(&m).unwrap();
    let md = lstat(&s.vol_path.join("inside/link"));
    assert_eq!(
        (md.mode() & 0o7777, md.mtime(), md.mtime_nsec()),
        (0o4777, 7, 9)
    );
    assert_eq!(snapshot(&s.outside), before);
    let _ = Path::new("unused");
}
