//! No output of Ferry shows a proxy password: not `--help` (clap would show an option's
//! environment value), not the logs at `-vv`, not `--json`, not an error. `--proxy-file`
//! gives the URL without putting it on a command line, where `ps` shows it to every user.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::fidelity::build_fidelity_tree;
use crate::files::write;
use crate::snapshot::assert_trees_equal;
use crate::util::{ferry, push, run_guarded, Certs, Output};

use super::bulk::{write_bulk, BWLIMIT};
use super::tinyproxy::{PROXY_PASSWORD, PROXY_PASSWORD_IN_URL};
use super::topology::{Topology, ROUTE_A, ROUTE_B};

/// Passwords planted in the environment; none may appear in any output.
const ENV_PASSWORDS: [&str; 3] = ["envpw-ferry-9c1", "envpw-https-4d2", "envpw-all-7e3"];

/// The forms of the tinyproxy password a leak could take: raw, and as in the URL.
fn proxy_secrets() -> Vec<String> {
    vec![
        PROXY_PASSWORD.to_string(),
        PROXY_PASSWORD_IN_URL.to_string(),
    ]
}

#[track_caller]
fn assert_no_secret(out: &Output, secrets: &[String], what: &str) {
    for secret in secrets {
        assert!(
            !out.stdout.contains(secret.as_str()) && !out.stderr.contains(secret.as_str()),
            "{what} printed the secret {secret:?}\n{}",
            out.dump()
        );
    }
}

#[test]
fn help_never_shows_a_proxy_password_from_the_environment() {
    let env = [
        (
            "FERRY_PROXY",
            format!("http://alice:{}@proxy.example:3128", ENV_PASSWORDS[0]),
        ),
        (
            "HTTPS_PROXY",
            format!("http://bob:{}@proxy.example:3128", ENV_PASSWORDS[1]),
        ),
        (
            "ALL_PROXY",
            format!("http://carol:{}@proxy.example:3128", ENV_PASSWORDS[2]),
        ),
        ("FERRY_PROXY_FILE", "/run/secrets/proxy-url".to_string()),
    ];
    let secrets: Vec<String> = ENV_PASSWORDS.iter().map(|s| s.to_string()).collect();
    for args in [
        &["push", "--help"][..],
        &["pull", "--help"],
        &["probe", "--help"],
        &["push", "-h"],
        &["man"],
    ] {
        let mut cmd = ferry();
        cmd.args(args).envs(env.iter().map(|(k, v)| (k, v)));
        let out = run_guarded(&mut cmd, &format!("ferry {args:?}"));
        assert_eq!(out.code, Some(0), "{args:?}\n{}", out.dump());
        assert_no_secret(&out, &secrets, &format!("ferry {}", args.join(" ")));
        if args[0] != "man" {
            // Help still names where the proxy comes from.
            for name in [
                "FERRY_PROXY",
                "HTTPS_PROXY",
                "FERRY_PROXY_FILE",
                "--proxy-file",
            ] {
                assert!(
                    out.stdout.contains(name),
                    "ferry {args:?} no longer names {name}\n{}",
                    out.dump()
                );
            }
        }
    }
}

#[test]
fn a_usage_error_exits_1_and_shows_no_proxy_password() {
    // A clap error (here an unknown flag) used to exit 2, Ferry's "protocol version
    // mismatch"; it is a usage error like Ferry's own.
    let mut cmd = ferry();
    cmd.args(["push", "--no-such-flag", "src", "ferry://h:1/v"])
        .env("FERRY_PROXY", format!("http://a:{}@p:1", ENV_PASSWORDS[0]));
    let out = run_guarded(&mut cmd, "ferry push --no-such-flag");
    assert_eq!(out.code, Some(1), "{}", out.dump());
    assert_no_secret(&out, &[ENV_PASSWORDS[0].to_string()], "a usage error");
}

/// Writes `text` to `path` with `mode`.
fn proxy_file(path: &Path, text: &str, mode: u32) -> std::path::PathBuf {
    let path = path.to_path_buf();
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

#[test]
fn a_push_through_a_password_proxy_shows_the_password_nowhere_at_debug_level() {
    let t = Topology::new();
    build_fidelity_tree(&t.src);
    // Over three streams, each its own CONNECT with the proxy's credentials: the bulk
    // file keeps the session long enough for the joins to land ([`super::bulk`]).
    write_bulk(&t.src);
    let out = t
        .push_via_proxy(ROUTE_A)
        .arg("-vv")
        .arg("--streams")
        .arg("3")
        .arg("--bwlimit")
        .arg(BWLIMIT)
        .json()
        .run();
    out.assert_ok();
    assert_trees_equal(&t.src, &t.vol_a);
    assert_eq!(out.stat("streams"), 3, "{}", out.output.dump());
    assert_eq!(
        out.stderr().matches("CONNECT tunnel open").count(),
        3,
        "-vv did not log each stream's tunnel, so this test checks less than it says\n{}",
        out.output.dump()
    );
    assert_no_secret(&out.output, &proxy_secrets(), "push -vv --json");

    // The same push in text mode to the other route, its proxy from FERRY_PROXY.
    let out = t
        .push_via_router(ROUTE_B)
        .env("FERRY_PROXY", t.proxy.url())
        .arg("-vv")
        .arg("--itemize-changes")
        .arg("--streams")
        .arg("2")
        .arg("--bwlimit")
        .arg(BWLIMIT)
        .run();
    out.assert_ok();
    assert_trees_equal(&t.src, &t.vol_b);
    assert!(
        out.stderr().contains("streams: over 2 streams"),
        "{}",
        out.output.dump()
    );
    assert_no_secret(&out.output, &proxy_secrets(), "push -vv with FERRY_PROXY");
    assert_eq!(
        t.proxy.connect_requests().len(),
        3 + 2,
        "{}",
        t.proxy.dump()
    );
}

#[test]
fn a_proxy_file_carries_the_proxy_through_basic_auth() {
    let t = Topology::new();
    build_fidelity_tree(&t.src);
    let dir = tempfile::TempDir::new().unwrap();
    let file = proxy_file(
        &dir.path().join("proxy-url"),
        &format!("  {}\n\n", t.proxy.url()),
        0o600,
    );
    // One stream, so one CONNECT per push and no warning but the one this test wants:
    // under `auto` a tree this small may start joins that land after the session ended
    // (see the -vv test above for joins through this proxy).
    let out = t
        .push_via_router(ROUTE_A)
        .arg("--proxy-file")
        .arg(&file)
        .arg("--streams")
        .arg("1")
        .arg("-vv")
        .run();
    out.assert_ok();
    assert_trees_equal(&t.src, &t.vol_a);
    assert_eq!(t.proxy.connect_requests().len(), 1, "{}", t.proxy.dump());
    assert!(
        !out.stderr().contains("ferry: warning"),
        "{}",
        out.output.dump()
    );
    assert_no_secret(&out.output, &proxy_secrets(), "push --proxy-file");

    // Every user may read it: it still works, with a warning that names the file.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = t
        .push_via_router(ROUTE_A)
        .env("FERRY_PROXY_FILE", &file)
        .arg("--streams")
        .arg("1")
        .run();
    out.assert_ok();
    assert_eq!(t.proxy.connect_requests().len(), 2, "{}", t.proxy.dump());
    assert!(
        out.stderr().contains("ferry: warning: --proxy-file")
            && out.stderr().contains(&*file.to_string_lossy()),
        "{}",
        out.output.dump()
    );
    assert_no_secret(&out.output, &proxy_secrets(), "push --proxy-file");
}

#[test]
fn proxy_file_errors_are_usage_errors_that_quote_no_password() {
    let certs = Certs::new();
    let tmp = tempfile::TempDir::new().unwrap();
    let src = tmp.path().join("src");
    write(&src.join("f"), b"f\n", 0o644);
    let url = "ferry://127.0.0.1:9/vol";
    let secret = "filepw-5f0".to_string();
    let run = |args: &[&std::ffi::OsStr]| {
        let mut p = push(&certs, &src, url);
        for arg in args {
            p = p.arg(arg);
        }
        p.run()
    };
    let missing = tmp.path().join("missing");
    let empty = proxy_file(&tmp.path().join("empty"), " \n", 0o600);
    let bad = proxy_file(
        &tmp.path().join("bad"),
        &format!("https://u:{secret}@proxy:3128\n"),
        0o600,
    );
    let two = proxy_file(
        &tmp.path().join("two"),
        &format!("http://u:{secret}@proxy:3128\nhttp://proxy:3128\n"),
        0o600,
    );
    let flag = std::ffi::OsStr::new("--proxy-file");
    let cases: [(Vec<&std::ffi::OsStr>, &str); 5] = [
        (vec![flag, missing.as_os_str()], "cannot read --proxy-file"),
        (vec![flag, empty.as_os_str()], "is empty"),
        (vec![flag, bad.as_os_str()], "not supported"),
        (vec![flag, two.as_os_str()], "more than one line"),
        (
            vec![
                flag,
                two.as_os_str(),
                std::ffi::OsStr::new("--proxy"),
                std::ffi::OsStr::new("http://proxy:3128"),
            ],
            "both name the proxy",
        ),
    ];
    for (args, expected) in cases {
        let out = run(&args);
        out.assert_code(1);
        assert!(
            out.stderr().contains(expected),
            "{args:?}: expected {expected:?}\n{}",
            out.output.dump()
        );
        assert_no_secret(
            &out.output,
            std::slice::from_ref(&secret),
            &format!("{args:?}"),
        );
    }
}
