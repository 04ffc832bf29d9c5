//! A target without privileges (a restricted pod, or `--run-as`) cannot chown, create
//! device nodes or set `trusted.*` attributes. It says how many it could not apply and
//! carries on; the rest, directory times included, is applied.

use std::os::unix::fs::MetadataExt;

use rustix::fs::{makedev, mknodat, FileType, Mode, CWD};
use tempfile::TempDir;

use super::{open_up, USER};
use crate::files::{chown, mkdir, mtime, read, set_mtime, set_xattr, write};
use crate::util::{push, Certs, Server};

#[test]
fn a_non_root_target_reports_the_attributes_it_could_not_apply() {
    let tmp = TempDir::new().unwrap();
    open_up(tmp.path());
    let (src, dst) = (tmp.path().join("src"), tmp.path().join("dst"));
    mkdir(&src, 0o755);
    mkdir(&dst, 0o755);
    chown(&dst, USER, USER);

    write(&src.join("owned.txt"), b"owned by someone else\n", 0o644);
    chown(&src.join("owned.txt"), 1234, 5678);
    write(&src.join("mine.txt"), b"plain\n", 0o600);
    chown(&src.join("mine.txt"), USER, USER);
    set_xattr(&src.join("mine.txt"), "user.kept", b"yes");
    set_xattr(&src.join("mine.txt"), "trusted.root-only", b"no");
    mknodat(
        CWD,
        src.join("null"),
        FileType::CharacterDevice,
        Mode::from_raw_mode(0o600),
        makedev(1, 3),
    )
    .expect("mknod");
    mkdir(&src.join("dir"), 0o750);
    chown(&src.join("dir"), USER, USER);
    write(&src.join("dir/inner.txt"), b"inner\n", 0o644);
    chown(&src.join("dir/inner.txt"), USER, USER);
    set_mtime(&src.join("dir"), 1_500_000_000, 123_456_789);

    let certs = Certs::new();
    let server = Server::builder(&certs)
        .volume("vol", &dst)
        .arg("--run-as")
        .arg(format!("{USER}:{USER}"))
        .start();
    let out = push(&certs, &src, &server.url("vol")).json().run();
    out.assert_ok();
    assert!(out.stat("not_applied_owner") >= 1, "{:?}", out.summary());
    assert_eq!(out.stat("not_applied_special"), 1, "{:?}", out.summary());
    assert!(out.stat("not_applied_xattrs") >= 1, "{:?}", out.summary());
    // And it names them: each example says which entry and what was not applied.
    let examples = out.summary()["not_applied_examples"]
        .as_array()
        .expect("not_applied_examples is a list")
        .iter()
        .map(|e| {
            let what: Vec<&str> = e["what"]
                .as_array()
                .unwrap()
                .iter()
                .map(|w| w.as_str().unwrap())
                .collect();
            (e["path"].as_str().unwrap().to_string(), what)
        })
        .collect::<Vec<_>>();
    assert!(
        examples.contains(&("null".to_string(), vec!["special"])),
        "{examples:?}"
    );
    assert!(
        examples
            .iter()
            .any(|(p, w)| p == "owned.txt" && w.contains(&"owner")),
        "{examples:?}"
    );
    assert!(
        examples
            .iter()
            .any(|(p, w)| p == "mine.txt" && w.contains(&"xattrs")),
        "{examples:?}"
    );

    // What could be applied was: content, the file's own-user ownership, user.* xattrs,
    // modes, and directory times after their contents were written.
    assert_eq!(read(&dst.join("owned.txt")), b"owned by someone else\n");
    assert_eq!(
        std::fs::metadata(dst.join("owned.txt")).unwrap().uid(),
        USER
    );
    let kept = rustix::fs::getxattr(dst.join("mine.txt"), "user.kept", &mut [0u8; 16][..]);
    assert_eq!(kept.ok(), Some(3));
    assert!(!dst.join("null").exists(), "a device node appeared");
    assert_eq!(mtime(&dst.join("dir")), (1_500_000_000, 123_456_789));
    assert_eq!(
        std::fs::metadata(dst.join("dir")).unwrap().mode() & 0o7777,
        0o750
    );

    // The text report says the same to a person.
    let out = push(&certs, &src, &server.url("vol")).run();
    out.assert_ok();
    assert!(
        out.stderr()
            .contains("not applied (target lacks privileges)")
            || out
                .stdout()
                .contains("not applied (target lacks privileges)"),
        "{:?}",
        out.output
    );
}
