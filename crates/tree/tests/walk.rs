//! The source walk and source reads.

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::{symlink, FileExt, MetadataExt};
use std::path::Path;

use common::{path_of, rel};
use ferry_proto::{Content, Limits, RelPath, SpecialKind};
use ferry_tree::{Listing, Region, WalkOptions, Walker};

fn walk_all(root: &Path, options: WalkOptions, limits: Limits) -> Vec<Listing> {
    let mut w = Walker::new(root, options, limits).unwrap();
    let mut out = Vec::new();
    while let Some(l) = w.next_listing() {
        out.push(l);
    }
    out
}

/// root: a/ (x, y/ (deep)), b/, f1, z/(f2 = hard link to f1), links, fifo, odd names.
fn tree() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    std::fs::create_dir_all(r.join("a/y")).unwrap();
    std::fs::create_dir_all(r.join("b")).unwrap();
    std::fs::create_dir_all(r.join("z")).unwrap();
    std::fs::write(r.join("a/x"), b"x").unwrap();
    std::fs::write(r.join("a/y/deep"), b"deep").unwrap();
    std::fs::write(r.join("f1"), b"hello").unwrap();
    std::fs::hard_link(r.join("f1"), r.join("z/f2")).unwrap();
    std::fs::hard_link(r.join("f1"), r.join("a/f3")).unwrap();
    symlink("/absolute/target", r.join("abs")).unwrap();
    symlink("../dangling\u{1}", r.join("dangling")).unwrap();
    common::mkfifo(&r.join("fifo"));
    std::fs::write(path_of(r, b"bad\xffname\n"), b"odd").unwrap();
    common::set_xattr(&r.join("f1"), "user.b", b"2");
    common::set_xattr(&r.join("f1"), "user.a", b"1");
    t
}

#[test]
fn order_indices_and_kinds() {
    let t = tree();
    let listings = walk_all(t.path(), WalkOptions::default(), Limits::default());
    let dirs: Vec<_> = listings.iter().map(|l| l.dir.as_bytes().to_vec()).collect();
    let want: Vec<&[u8]> = vec![b"", b"a", b"a/y", b"b", b"z"];
    assert_eq!(dirs, want);
    let mut next = 0;
    let mut by_path = HashMap::new();
    for l in &listings {
        assert!(l.complete, "{:?}", l.errors);
        let names: Vec<_> = l.entries.iter().map(|e| e.entry.name.clone()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        for e in &l.entries {
            assert_eq!(e.index, next);
            next += 1;
            let p = l.dir.join(&e.entry.name, &Limits::default()).unwrap();
            by_path.insert(p.into_bytes(), e.clone());
        }
    }
    let get = |p: &[u8]| by_path[p].clone();
    // Hard links: the first name emitted (f1, in the root listing) leads; later names
    // in other directories refer to it by index and path.
    let f1 = get(b"f1");
    assert_eq!(
        f1.entry.content,
        Content::File {
            size: 5,
            checksum: None
        }
    );
    let follower = Content::HardLink {
        leader: f1.index,
        path: b"f1".to_vec(),
    };
    assert_eq!(get(b"a/f3").entry.content, follower);
    assert_eq!(get(b"z/f2").entry.content, follower);
    let xs: Vec<_> = f1
        .entry
        .meta
        .xattrs
        .iter()
        .map(|x| x.name.clone())
        .collect();
    assert_eq!(xs, vec![b"user.a".to_vec(), b"user.b".to_vec()]);
    assert_eq!(
        get(b"abs").entry.content,
        Content::Symlink {
            target: b"/absolute/target".to_vec()
        }
    );
    assert_eq!(
        get(b"dangling").entry.content,
        Content::Symlink {
            target: b"../dangling\x01".to_vec()
        }
    );
    assert_eq!(
        get(b"fifo").entry.content,
        Content::Special {
            kind: SpecialKind::Fifo,
            rdev: 0
        }
    );
    assert_eq!(
        get(b"bad\xffname\n").entry.content,
        Content::File {
            size: 3,
            checksum: None
        }
    );
    assert_eq!(get(b"a").entry.content, Content::Dir);
    let md = std::fs::symlink_metadata(t.path().join("a/x")).unwrap();
    let m = &get(b"a/x").entry.meta;
    assert_eq!(
        (m.mode, m.uid, m.gid),
        (md.mode() & 0o7777, md.uid(), md.gid())
    );
    assert_eq!(
        (m.mtime.sec, m.mtime.nsec),
        (md.mtime(), md.mtime_nsec() as u32)
    );
}

#[test]
fn checksums_when_asked() {
    let t = tree();
    let listings = walk_all(t.path(), WalkOptions { checksum: true }, Limits::default());
    let root = &listings[0];
    let f1 = root.entries.iter().find(|e| e.entry.name == b"f1").unwrap();
    let want = *blake3::hash(b"hello").as_bytes();
    assert_eq!(
        f1.entry.content,
        Content::File {
            size: 5,
            checksum: Some(want)
        }
    );
}

#[test]
fn root_meta_and_root_symlink() {
    let t = tree();
    common::set_xattr(t.path(), "user.root", b"r");
    let link_dir = tempfile::tempdir().unwrap();
    let link = link_dir.path().join("root");
    symlink(t.path(), &link).unwrap();
    let w = Walker::new(&link, WalkOptions::default(), Limits::default()).unwrap();
    let m = w.root_meta().unwrap();
    assert_eq!(m.xattrs.len(), 1);
    let md = std::fs::metadata(t.path()).unwrap();
    assert_eq!(m.mode, md.mode() & 0o7777);
    assert!(Walker::new(
        &t.path().join("f1"),
        WalkOptions::default(),
        Limits::default()
    )
    .is_err());
    assert_eq!(
        walk_all(&link, WalkOptions::default(), Limits::default()).len(),
        5
    );
}

#[test]
fn a_directory_that_vanishes_before_its_listing() {
    let t = tree();
    let mut w = Walker::new(t.path(), WalkOptions::default(), Limits::default()).unwrap();
    let root = w.next_listing().unwrap();
    assert!(root.entries.iter().any(|e| e.entry.name == b"a"));
    std::fs::remove_dir_all(t.path().join("a")).unwrap();
    // Replace it with a symlink: the walk must not follow it either.
    symlink("/", t.path().join("a")).unwrap();
    let a = w.next_listing().unwrap();
    assert_eq!(a.dir, rel("a"));
    assert!(!a.complete);
    assert_eq!(a.errors.len(), 1);
    assert!(a.entries.is_empty());
    std::fs::remove_dir_all(t.path().join("b")).unwrap();
    let b = w.next_listing().unwrap();
    assert_eq!(b.dir, rel("b"));
    assert!(!b.complete && b.errors[0].is_not_found());
    assert_eq!(w.next_listing().unwrap().dir, rel("z"));
    assert!(w.next_listing().is_none());
}

#[test]
fn entries_over_the_limits_are_skipped_and_reported() {
    let t = tempfile::tempdir().unwrap();
    std::fs::write(t.path().join("ok"), b"").unwrap();
    std::fs::write(t.path().join("much_too_long_name"), b"").unwrap();
    std::fs::write(t.path().join("big_xattr"), b"").unwrap();
    common::set_xattr(&t.path().join("big_xattr"), "user.v", &[7u8; 100]);
    symlink("x".repeat(50), t.path().join("long_link")).unwrap();
    let limits = Limits {
        max_name: 12,
        max_xattr_value: 10,
        max_link_target: 20,
        ..Limits::default()
    };
    let l = walk_all(t.path(), WalkOptions::default(), limits);
    assert_eq!(l.len(), 1);
    let names: Vec<_> = l[0].entries.iter().map(|e| e.entry.name.clone()).collect();
    assert_eq!(names, vec![b"ok".to_vec()]);
    assert_eq!(l[0].entries[0].index, 0);
    assert!(!l[0].complete);
    assert_eq!(l[0].errors.len(), 3, "{:?}", l[0].errors);
}

#[test]
fn regions_find_holes() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("sparse");
    let f = std::fs::File::create(&p).unwrap();
    let mib = 1024 * 1024;
    f.write_all_at(&[1u8; 4096], 4 * mib).unwrap();
    f.set_len(12 * mib).unwrap();
    drop(f);
    let file = ferry_tree::SourceRoot::open(t.path())
        .unwrap()
        .open_file(&rel("sparse"))
        .unwrap()
        .file;
    let regions = ferry_tree::regions(&file, 12 * mib).unwrap();
    assert_eq!(
        regions,
        vec![
            Region {
                offset: 0,
                len: 4 * mib,
                hole: true
            },
            Region {
                offset: 4 * mib,
                len: 4096,
                hole: false
            },
            Region {
                offset: 4 * mib + 4096,
                len: 8 * mib - 4096,
                hole: true
            },
        ]
    );
    assert!(ferry_tree::regions(&file, 0).unwrap().is_empty());
    // A stretch of the file (a range) gets its own regions, cut at its ends.
    let within = |start, end| ferry_tree::regions_within(&file, start, end).unwrap();
    let region = |offset, len, hole| Region { offset, len, hole };
    assert_eq!(within(0, 12 * mib), regions);
    assert_eq!(
        within(2 * mib, 4 * mib + 1024),
        [region(2 * mib, 2 * mib, true), region(4 * mib, 1024, false)]
    );
    assert_eq!(
        within(4 * mib + 100, 6 * mib),
        [
            region(4 * mib + 100, 3996, false),
            region(4 * mib + 4096, 2 * mib - 4096, true)
        ]
    );
    assert_eq!(within(8 * mib, 12 * mib), [region(8 * mib, 4 * mib, true)]);
    assert!(within(5 * mib, 5 * mib).is_empty());
    // Fewer bytes allocated than the size: it asks the filesystem, and finds the holes.
    let allocated = file.metadata().unwrap().blocks() * 512;
    assert!(allocated < 12 * mib);
    assert_eq!(
        ferry_tree::regions_allocated(&file, 12 * mib, allocated).unwrap(),
        regions
    );
    // A large file that claims to be fully allocated (preallocation can make a sparse
    // file look so) is asked all the same.
    assert_eq!(
        ferry_tree::regions_allocated(&file, 12 * mib, 12 * mib).unwrap(),
        regions
    );
    // A small one is trusted: one data region, without asking.
    assert_eq!(
        ferry_tree::regions_allocated(&file, 4096, 4096).unwrap(),
        vec![Region {
            offset: 0,
            len: 4096,
            hole: false
        }]
    );
    assert!(ferry_tree::regions_allocated(&file, 0, 0)
        .unwrap()
        .is_empty());
    let mut dense = std::fs::File::create(t.path().join("dense")).unwrap();
    dense.write_all(&[2u8; 10000]).unwrap();
    let file = ferry_tree::SourceRoot::open(t.path())
        .unwrap()
        .open_file(&rel("dense"))
        .unwrap()
        .file;
    let r = ferry_tree::regions(&file, 10000).unwrap();
    assert_eq!(
        r,
        vec![Region {
            offset: 0,
            len: 10000,
            hole: false
        }]
    );
}

#[test]
fn source_reads_refuse_links_and_fifos() {
    let t = tree();
    let root = ferry_tree::SourceRoot::open(t.path()).unwrap();
    assert!(root.open_file(&rel("abs")).is_err());
    assert!(root.open_file(&rel("fifo")).is_err());
    assert!(root.open_file(&rel("nope")).unwrap_err().is_not_found());
    let (size, mtime) = root.stat(&rel("a/y/deep")).unwrap();
    let md = std::fs::metadata(t.path().join("a/y/deep")).unwrap();
    assert_eq!((size, mtime.sec), (4, md.mtime()));
    let (_, link_mtime) = root.stat(&rel("abs")).unwrap();
    assert_eq!(
        link_mtime.sec,
        std::fs::symlink_metadata(t.path().join("abs"))
            .unwrap()
            .mtime()
    );
    let _ = RelPath::root();
}

/// A directory swapped for a symlink after the walk listed it (a live volume, or a
/// hostile writer racing a stage pass) must not let a read leave the tree.
#[test]
fn a_directory_swapped_for_a_symlink_after_the_walk_is_not_read_through() {
    let base = tempfile::tempdir().unwrap();
    let src = base.path().join("src");
    let outside = base.path().join("outside");
    std::fs::create_dir_all(src.join("d")).unwrap();
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(src.join("d/f"), b"inside").unwrap();
    std::fs::write(outside.join("f"), b"SECRET").unwrap();
    let mut w = Walker::new(&src, WalkOptions::default(), Limits::default()).unwrap();
    let root = w.source_root();
    let mut names = Vec::new();
    while let Some(listing) = w.next_listing() {
        names.extend(listing.entries.into_iter().map(|e| e.entry.name));
    }
    assert_eq!(names, vec![b"d".to_vec(), b"f".to_vec()]);
    std::fs::rename(src.join("d"), base.path().join("moved")).unwrap();
    std::os::unix::fs::symlink(&outside, src.join("d")).unwrap();
    assert!(
        root.open_file(&rel("d/f")).is_err(),
        "read a file through a symlinked directory"
    );
    assert!(root.stat(&rel("d/f")).is_err());
    // The same swap before the walk lists the directory: it is a symlink entry, not entered.
    let mut w = Walker::new(&src, WalkOptions::default(), Limits::default()).unwrap();
    let mut listed = Vec::new();
    while let Some(listing) = w.next_listing() {
        listed.extend(
            listing
                .entries
                .into_iter()
                .map(|e| (listing.dir.clone(), e.entry.name)),
        );
    }
    assert_eq!(listed, vec![(RelPath::root(), b"d".to_vec())]);
}

/// The engine's walker thread reads extended attributes by bare name from a working
/// directory of its own; the rest of the process keeps its own.
#[test]
fn a_walk_on_its_own_thread_reads_xattrs_and_leaves_the_process_cwd_alone() {
    let base = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(base.path().join("a/b")).unwrap();
    let file = base.path().join("a/b/f");
    std::fs::write(&file, b"x").unwrap();
    rustix::fs::setxattr(&file, "user.k", b"v", rustix::fs::XattrFlags::empty()).unwrap();
    let cwd = std::env::current_dir().unwrap();
    let root = base.path().to_path_buf();
    let xattrs = std::thread::spawn(move || {
        let mut w = Walker::new(&root, WalkOptions::default(), Limits::default())
            .unwrap()
            .on_this_thread();
        let mut found = None;
        while let Some(listing) = w.next_listing() {
            for e in listing.entries {
                if e.entry.name == b"f" {
                    found = Some(e.entry.meta.xattrs);
                }
            }
        }
        found.expect("f listed")
    })
    .join()
    .unwrap();
    assert_eq!(xattrs.len(), 1, "{xattrs:?}");
    assert_eq!(
        (&xattrs[0].name[..], &xattrs[0].value[..]),
        (&b"user.k"[..], &b"v"[..])
    );
    assert_eq!(std::env::current_dir().unwrap(), cwd);
}
