//! Storage that grants access only by group (`root:2000`, mode 2770): read by the source
//! and written by the target when they hold the group, refused plainly when they do not.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use tempfile::TempDir;

use super::{open_up, readable_client_tls, GROUP, USER};
use crate::files::{chmod, chown, mkdir, read, write};
use crate::util::{clear_proxy_env, ferry, push, run_guarded, Certs, Fixture, Output, Server};

/// A directory only root and members of GROUP may enter, with a small tree inside.
fn group_only_tree(dir: &Path) {
    chown(dir, 0, GROUP);
    chmod(dir, 0o2770);
    write(&dir.join("a.txt"), b"shared by group\n", 0o640);
    mkdir(&dir.join("sub"), 0o2770);
    write(&dir.join("sub/b.txt"), b"deeper\n", 0o660);
}

/// `ferry push` as root with extra flags, run to completion.
fn push_as_root(fx: &Fixture, tls: &Path, extra: &[&str]) -> Output {
    let mut cmd = ferry();
    cmd.arg("push")
        .arg(&fx.src)
        .arg(fx.server.url("vol"))
        .arg("--tls-dir")
        .arg(tls)
        .args(extra)
        .env_remove("FERRY_SUPPLEMENTAL_GROUPS");
    clear_proxy_env(&mut cmd);
    run_guarded(&mut cmd, "ferry push")
}

/// `ferry push` started as USER holding `groups` (as kubelet starts a pod).
fn push_as_user(fx: &Fixture, tls: &Path, groups: &str, env_groups: &str) -> Output {
    let mut cmd = Command::new("setpriv");
    cmd.arg(format!("--reuid={USER}"))
        .arg(format!("--regid={USER}"));
    if groups.is_empty() {
        cmd.arg("--clear-groups");
    } else {
        cmd.arg(format!("--groups={groups}"));
    }
    cmd.arg("--")
        .arg(env!("CARGO_BIN_EXE_ferry"))
        .arg("push")
        .arg(&fx.src)
        .arg(fx.server.url("vol"))
        .arg("--tls-dir")
        .arg(tls)
        .env("FERRY_SUPPLEMENTAL_GROUPS", env_groups);
    clear_proxy_env(&mut cmd);
    run_guarded(&mut cmd, "setpriv ferry push")
}

#[test]
fn a_source_readable_only_by_group_is_pushed_after_dropping_to_run_as() {
    let fx = Fixture::new();
    open_up(fx.tmp.path());
    group_only_tree(&fx.src);
    let tls = readable_client_tls(&fx.certs, fx.tmp.path());

    let out = push_as_root(
        &fx,
        &tls,
        &[
            "--run-as",
            &format!("{USER}:{USER}"),
            "--supplemental-groups",
            &GROUP.to_string(),
        ],
    );
    assert_eq!(out.code, Some(0), "{}", out.dump());
    assert_eq!(read(&fx.dst.join("a.txt")), b"shared by group\n");
    assert_eq!(read(&fx.dst.join("sub/b.txt")), b"deeper\n");
}

#[test]
fn a_source_readable_only_by_group_is_refused_plainly_without_the_group() {
    let fx = Fixture::new();
    open_up(fx.tmp.path());
    group_only_tree(&fx.src);
    let tls = readable_client_tls(&fx.certs, fx.tmp.path());

    let out = push_as_root(&fx, &tls, &["--run-as", &format!("{USER}:{USER}")]);
    assert_eq!(out.code, Some(1), "{}", out.dump());
    for needle in [
        "source",
        "is not readable as uid 1001 gid 1001 groups 1001",
        "--supplemental-groups",
        "supplementalGroups",
    ] {
        assert!(
            out.stderr.contains(needle),
            "no {needle:?} in:\n{}",
            out.dump()
        );
    }
    assert!(!fx.dst.join("a.txt").exists());
}

#[test]
fn a_non_root_push_checks_it_holds_the_groups_the_pod_was_given() {
    let fx = Fixture::new();
    open_up(fx.tmp.path());
    group_only_tree(&fx.src);
    let tls = readable_client_tls(&fx.certs, fx.tmp.path());

    // Like a pod without `securityContext.supplementalGroups`: fails fast, says what to do.
    let out = push_as_user(&fx, &tls, "", "1000,2000");
    assert_eq!(out.code, Some(1), "{}", out.dump());
    for needle in [
        "supplemental group 1000 is not held",
        "also missing: 2000",
        "supplementalGroups: [1000, 2000]",
    ] {
        assert!(
            out.stderr.contains(needle),
            "no {needle:?} in:\n{}",
            out.dump()
        );
    }

    // Like a pod that has them (FERRY_SUPPLEMENTAL_GROUPS from the manifest): pushes.
    let out = push_as_user(&fx, &tls, "1000,2000", "1000,2000");
    assert_eq!(out.code, Some(0), "{}", out.dump());
    assert_eq!(read(&fx.dst.join("sub/b.txt")), b"deeper\n");

    // --run-as means nothing without root.
    let mut cmd = Command::new("setpriv");
    cmd.args([
        &format!("--reuid={USER}"),
        &format!("--regid={USER}"),
        "--clear-groups",
        "--",
    ])
    .arg(env!("CARGO_BIN_EXE_ferry"))
    .arg("push")
    .arg(&fx.src)
    .arg(fx.server.url("vol"))
    .arg("--tls-dir")
    .arg(&tls)
    .args(["--run-as", "1002:1002"])
    .env_remove("FERRY_SUPPLEMENTAL_GROUPS");
    let out = run_guarded(&mut cmd, "setpriv ferry push --run-as");
    assert_eq!(out.code, Some(1), "{}", out.dump());
    assert!(
        out.stderr.contains("--run-as 1002:1002 needs root"),
        "{}",
        out.dump()
    );
}

#[test]
fn a_target_writable_only_by_group_is_written_after_dropping_to_run_as() {
    let tmp = TempDir::new().unwrap();
    open_up(tmp.path());
    let (src, dst) = (tmp.path().join("src"), tmp.path().join("dst"));
    mkdir(&src, 0o755);
    write(&src.join("a.txt"), b"to a group volume\n", 0o644);
    mkdir(&src.join("sub"), 0o755);
    write(&src.join("sub/b.txt"), b"deeper\n", 0o644);
    mkdir(&dst, 0o755);
    chown(&dst, 0, GROUP);
    chmod(&dst, 0o2770);
    let certs = Certs::new();

    // The server TLS files stay root-only: serve reads them before it drops.
    let server = Server::builder(&certs)
        .volume("vol", &dst)
        .arg("--run-as")
        .arg(format!("{USER}:{USER}"))
        .arg("--supplemental-groups")
        .arg(GROUP.to_string())
        .start();
    let out = push(&certs, &src, &server.url("vol")).json().run();
    out.assert_ok();
    assert_eq!(read(&dst.join("a.txt")), b"to a group volume\n");
    assert_eq!(read(&dst.join("sub/b.txt")), b"deeper\n");
    // Written by the dropped identity, not by root.
    let meta = std::fs::metadata(dst.join("sub/b.txt")).unwrap();
    assert_eq!(meta.uid(), USER);
    drop(server);

    // Without the group the target refuses to start, and says why.
    let dst2 = tmp.path().join("dst2");
    mkdir(&dst2, 0o755);
    chown(&dst2, 0, GROUP);
    chmod(&dst2, 0o2770);
    let mut cmd = ferry();
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--tls-dir"])
        .arg(certs.server_dir())
        .arg("--volume")
        .arg(format!("vol={}", dst2.display()))
        .args(["--run-as", &format!("{USER}:{USER}")])
        .env_remove("FERRY_SUPPLEMENTAL_GROUPS");
    let out = run_guarded(&mut cmd, "ferry serve --run-as without the group");
    assert_eq!(out.code, Some(1), "{}", out.dump());
    for needle in [
        "volume vol:",
        "is not writable as uid 1001 gid 1001 groups 1001",
        "--supplemental-groups",
    ] {
        assert!(
            out.stderr.contains(needle),
            "no {needle:?} in:\n{}",
            out.dump()
        );
    }
}

#[test]
fn bad_identities_are_usage_errors() {
    let fx = Fixture::new();
    for (flag, value, needle) in [
        ("--supplemental-groups", "staff", "not a numeric group id"),
        ("--run-as", "0:0", "uid 0 is root"),
        ("--run-as", "nobody", "is not UID[:GID]"),
    ] {
        let out = push_as_root(&fx, &fx.certs.client_dir(), &[flag, value]);
        assert_eq!(out.code, Some(1), "{flag} {value}: {}", out.dump());
        assert!(
            out.stderr.contains(needle),
            "{flag} {value}: {}",
            out.dump()
        );
    }
}
