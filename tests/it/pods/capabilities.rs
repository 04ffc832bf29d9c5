//! Capabilities instead of root: a uid-1001 ferry holding exactly the capabilities a side
//! needs does what root would, and without them says so up front and reports each thing
//! it could not do. The source is started the way a pod with ambient capabilities starts
//! (`setpriv --ambient-caps`), the target by `serve --run-as --keep-caps`.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use tempfile::TempDir;

use super::{open_up, readable_client_tls, SOURCE_CAPS, TARGET_CAPS, USER};
use crate::files::{chown, mkdir, read, write};
use crate::util::{clear_proxy_env, ferry, push, run_guarded, Certs, Fixture, Output, Server};

/// Two other users' private trees (0700 directories, 0600 files) and set-id files.
fn several_owners(dir: &Path) {
    for (owner, name) in [(2001, "alice"), (2002, "bob")] {
        let home = dir.join(name);
        mkdir(&home, 0o700);
        mkdir(&home.join("private"), 0o700);
        write(&home.join("notes.txt"), name.as_bytes(), 0o600);
        write(&home.join("private/key"), b"secret\n", 0o600);
        for p in ["", "notes.txt", "private", "private/key"] {
            chown(&home.join(p), owner, owner);
        }
    }
    write(&dir.join("setuid"), b"#!\n", 0o4755);
    chown(&dir.join("setuid"), 2001, 2001);
    crate::files::chmod(&dir.join("setuid"), 0o4755);
    write(&dir.join("setgid"), b"#!\n", 0o2755);
    chown(&dir.join("setgid"), 2001, 2002);
    crate::files::chmod(&dir.join("setgid"), 0o2755);
    mkdir(&dir.join("shared"), 0o2775);
    chown(&dir.join("shared"), 2002, 2002);
    crate::files::chmod(&dir.join("shared"), 0o2775);
    write(&dir.join("shared/doc"), b"doc\n", 0o664);
    chown(&dir.join("shared/doc"), 2001, 2002);
}

/// Every entry below `root` (root included, as `.`) with its owner, group and mode.
fn attributes(root: &Path) -> Vec<(String, u32, u32, u32)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(path) = stack.pop() {
        let md = std::fs::symlink_metadata(&path).unwrap();
        let rel = path.strip_prefix(root).unwrap().display().to_string();
        let rel = if rel.is_empty() { ".".into() } else { rel };
        out.push((rel, md.uid(), md.gid(), md.mode() & 0o7777));
        if md.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                stack.push(entry.unwrap().path());
            }
        }
    }
    out.sort();
    out
}

/// `ferry push --json` started as uid USER with exactly `caps` (ambient, as a pod whose
/// container is granted them starts its process), no supplemental groups.
fn push_as_user_with(fx: &Fixture, tls: &Path, caps: &[&str]) -> Output {
    let mut cmd = Command::new("setpriv");
    cmd.arg(format!("--reuid={USER}"))
        .arg(format!("--regid={USER}"))
        .arg("--clear-groups");
    if !caps.is_empty() {
        let list: Vec<String> = caps.iter().map(|c| format!("+{c}")).collect();
        cmd.arg(format!("--inh-caps={}", list.join(",")))
            .arg(format!("--ambient-caps={}", list.join(",")));
    }
    cmd.arg("--")
        .arg(env!("CARGO_BIN_EXE_ferry"))
        .arg("push")
        .arg(&fx.src)
        .arg(fx.server.url("vol"))
        .arg("--tls-dir")
        .arg(tls)
        .arg("--json")
        .env_remove("FERRY_SUPPLEMENTAL_GROUPS");
    clear_proxy_env(&mut cmd);
    run_guarded(&mut cmd, "setpriv ferry push")
}

fn events<'a>(out: &'a Output, kind: &'a str) -> impl Iterator<Item = serde_json::Value> + 'a {
    out.stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(move |e| e["event"] == kind)
}

const NO_READ: &str = "ferry: warning: source running as uid 1001 without CAP_DAC_READ_SEARCH: \
    files and directories this uid may not read will be skipped and reported (exit 23); \
    add it or run as root";

#[test]
fn a_non_root_source_with_only_dac_read_search_reads_every_owners_private_tree() {
    let fx = Fixture::new();
    open_up(fx.tmp.path());
    several_owners(&fx.src);
    let tls = readable_client_tls(&fx.certs, fx.tmp.path());

    let out = push_as_user_with(&fx, &tls, &[SOURCE_CAPS]);
    assert_eq!(out.code, Some(0), "{}", out.dump());
    assert!(
        !out.stderr.contains("CAP_DAC_READ_SEARCH"),
        "{}",
        out.dump()
    );
    let said: Vec<_> = events(&out, "privileges").collect();
    assert_eq!(said.len(), 1, "{}", out.dump());
    assert_eq!(said[0]["side"], "source");
    assert_eq!(said[0]["uid"], USER);
    assert_eq!(said[0]["held"], serde_json::json!(["dac_read_search"]));
    for name in ["alice", "bob"] {
        assert_eq!(read(&fx.dst.join(name).join("notes.txt")), name.as_bytes());
        assert_eq!(read(&fx.dst.join(name).join("private/key")), b"secret\n");
    }
    // The target (root) applied what the source read: the trees are the same.
    assert_eq!(attributes(&fx.dst), attributes(&fx.src));
}

#[test]
fn without_dac_read_search_a_non_root_source_says_so_first_and_names_what_it_skipped() {
    let fx = Fixture::new();
    open_up(fx.tmp.path());
    several_owners(&fx.src);
    let tls = readable_client_tls(&fx.certs, fx.tmp.path());

    let out = push_as_user_with(&fx, &tls, &[]);
    assert_eq!(out.code, Some(23), "{}", out.dump());
    assert_eq!(out.stderr.lines().next(), Some(NO_READ), "{}", out.dump());
    let said: Vec<_> = events(&out, "privileges").collect();
    assert_eq!(said[0]["held"], serde_json::json!([]), "{}", out.dump());
    assert_eq!(
        said[0]["missing"][0]["capability"],
        "CAP_DAC_READ_SEARCH",
        "{}",
        out.dump()
    );
    let skipped: Vec<String> = events(&out, "warning")
        .map(|w| w["path"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(skipped, ["alice", "bob"], "{}", out.dump());
    assert!(!fx.dst.join("alice/notes.txt").exists());
}

/// `ferry serve --once --run-as USER [--keep-caps CAPS]` into a volume USER owns.
fn target_as_user(certs: &Certs, dst: &Path, keep: Option<&str>) -> Server {
    chown(dst, USER, USER);
    let mut server = Server::builder(certs)
        .volume("vol", dst)
        .once()
        .arg("--run-as")
        .arg(format!("{USER}:{USER}"));
    if let Some(keep) = keep {
        server = server.arg("--keep-caps").arg(keep);
    }
    server.start()
}

/// `CapPrm`, `CapEff`, `CapInh`, `CapAmb` and `CapBnd` of a process, as masks.
fn cap_masks(pid: u32) -> [u64; 5] {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    ["CapPrm:", "CapEff:", "CapInh:", "CapAmb:", "CapBnd:"].map(|field| {
        let hex = status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .unwrap_or_else(|| panic!("no {field} in {status}"));
        u64::from_str_radix(hex.trim(), 16).unwrap()
    })
}

/// `NoNewPrivs` of a process: whether no `execve` can grant it privileges again.
fn no_new_privs(pid: u32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let value = status
        .lines()
        .find_map(|l| l.strip_prefix("NoNewPrivs:"))
        .unwrap_or_else(|| panic!("no NoNewPrivs in {status}"));
    value.trim() == "1"
}

/// After `--run-as`, a server keeps no way back to a capability it did not keep: not in
/// its bounding or inheritable set, and no set-id or file-capability program it might run
/// grants one (`PR_SET_NO_NEW_PRIVS`).
#[test]
fn run_as_leaves_no_capability_to_regain_with_or_without_keep_caps() {
    let tmp = TempDir::new().unwrap();
    open_up(tmp.path());
    let dst = tmp.path().join("dst");
    mkdir(&dst, 0o755);
    let certs = Certs::new();

    let server = target_as_user(&certs, &dst, None);
    // Permitted, effective, inheritable, ambient, bounding: all empty.
    assert_eq!(cap_masks(server.pid()), [0; 5]);
    assert!(no_new_privs(server.pid()), "NoNewPrivs is not set");
    drop(server);

    let server = target_as_user(&certs, &dst, Some(TARGET_CAPS));
    let kept = 1 << 0 | 1 << 1 | 1 << 3 | 1 << 4;
    assert_eq!(cap_masks(server.pid()), [kept, kept, 0, 0, kept]);
    assert!(no_new_privs(server.pid()), "NoNewPrivs is not set");
    drop(server);
}

#[test]
fn a_non_root_target_with_the_ownership_caps_applies_every_owner_and_set_id_bit() {
    let tmp = TempDir::new().unwrap();
    open_up(tmp.path());
    let (src, dst) = (tmp.path().join("src"), tmp.path().join("dst"));
    mkdir(&src, 0o755);
    mkdir(&dst, 0o755);
    several_owners(&src);
    let certs = Certs::new();
    let server = target_as_user(&certs, &dst, Some(TARGET_CAPS));

    // Exactly those four, everywhere: CAP_CHOWN 0, DAC_OVERRIDE 1, FOWNER 3, FSETID 4.
    let kept = 1 << 0 | 1 << 1 | 1 << 3 | 1 << 4;
    assert_eq!(cap_masks(server.pid()), [kept, kept, 0, 0, kept]);

    let out = push(&certs, &src, &server.url("vol")).json().run();
    out.assert_ok();
    assert_eq!(out.stat("not_applied_owner"), 0, "{:?}", out.summary());
    assert_eq!(attributes(&dst), attributes(&src));
    let serve = server.finish();
    assert!(!serve.stderr.contains("CAP_CHOWN"), "{}", serve.dump());
    assert!(
        serve.stderr.contains(
            "ferry: warning: target running as uid 1001 without CAP_MKNOD: \
             device nodes will not be created; add it or run as root"
        ),
        "{}",
        serve.dump()
    );

    // A later pass writes into a private directory it gave to another user
    // (CAP_DAC_OVERRIDE) and brings a changed owner and mode back.
    write(&src.join("alice/private/key"), b"rotated\n", 0o600);
    chown(&src.join("alice/private/key"), 2001, 2001);
    chown(&dst.join("setgid"), 2002, 2002);
    let server = target_as_user(&certs, &dst, Some(TARGET_CAPS));
    let out = push(&certs, &src, &server.url("vol")).json().run();
    out.assert_ok();
    assert_eq!(read(&dst.join("alice/private/key")), b"rotated\n");
    assert_eq!(attributes(&dst), attributes(&src));
    drop(server);
}

#[test]
fn a_non_root_target_without_them_reports_each_owner_and_set_id_bit_not_applied() {
    let tmp = TempDir::new().unwrap();
    open_up(tmp.path());
    let (src, dst) = (tmp.path().join("src"), tmp.path().join("dst"));
    mkdir(&src, 0o755);
    chown(&src, USER, USER);
    mkdir(&dst, 0o755);
    several_owners(&src);
    let certs = Certs::new();

    // CAP_CHOWN and CAP_FOWNER but not CAP_FSETID: the kernel drops the setgid bit of
    // a file whose group the target is not in, silently; Ferry looks and counts it.
    let server = target_as_user(&certs, &dst, Some("chown,fowner"));
    let out = push(&certs, &src, &server.url("vol")).json().run();
    out.assert_ok();
    assert_eq!(out.stat("not_applied_owner"), 2, "{:?}", out.summary());
    let named: Vec<&str> = out.summary()["not_applied_examples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert!(
        named.contains(&"setgid") && named.contains(&"shared"),
        "{named:?}"
    );
    assert_eq!(
        std::fs::metadata(dst.join("setgid")).unwrap().mode() & 0o7777,
        0o755
    );
    assert_eq!(
        std::fs::metadata(dst.join("setuid")).unwrap().mode() & 0o7777,
        0o4755
    );
    let serve = server.finish();
    assert!(
        serve.stderr.contains(
            "ferry: warning: target running as uid 1001 without CAP_FSETID: setgid on files \
             whose group this process is not in will not be applied; add it or run as root"
        ),
        "{}",
        serve.dump()
    );

    // No capabilities at all: every entry owned by someone else is counted.
    let dst2 = tmp.path().join("dst2");
    mkdir(&dst2, 0o755);
    let server = target_as_user(&certs, &dst2, None);
    assert_eq!(cap_masks(server.pid())[..2], [0, 0]);
    let out = push(&certs, &src, &server.url("vol")).json().run();
    out.assert_ok();
    let foreign = attributes(&src)
        .iter()
        .filter(|(_, uid, gid, _)| (*uid, *gid) != (USER, USER))
        .count() as u64;
    assert_eq!(foreign, 12);
    assert_eq!(
        out.stat("not_applied_owner"),
        foreign,
        "{:?}",
        out.summary()
    );
    let serve = server.finish();
    assert!(
        serve.stderr.contains(
            "ferry: warning: target running as uid 1001 without CAP_CHOWN: \
             owners will not be applied; add it or run as root"
        ),
        "{}",
        serve.dump()
    );
}

#[test]
fn keep_caps_is_refused_without_run_as_and_with_an_unknown_name() {
    let tmp = TempDir::new().unwrap();
    for (args, needle) in [
        (&["--keep-caps", "chown"][..], "--run-as"),
        (
            &["--run-as", "1001", "--keep-caps", "chown,setuid"][..],
            "unknown capability \"setuid\"; known: dac_read_search, dac_override, chown, \
             fowner, fsetid, mknod, setfcap, sys_admin",
        ),
    ] {
        let mut cmd = ferry();
        cmd.arg("push")
            .arg(tmp.path())
            .arg("ferry://127.0.0.1:1/vol")
            .args(["--tls-dir", "/nonexistent"])
            .args(args);
        let out = run_guarded(&mut cmd, "ferry push --keep-caps");
        assert_eq!(out.code, Some(1), "{}", out.dump());
        assert!(out.stderr.contains(needle), "{needle:?}: {}", out.dump());
    }
}

/// Root is not the question: a root target without `CAP_CHOWN` cannot chown, says so,
/// counts the owners it could not apply, and does not take them for changes on the next
/// pass (a target that asked "is root" compared owners it can never apply, and rewrote
/// the attributes of every file on every pass).
#[test]
fn a_root_target_without_cap_chown_applies_no_owners_and_says_so() {
    let tmp = TempDir::new().unwrap();
    let (src, dst) = (tmp.path().join("src"), tmp.path().join("dst"));
    mkdir(&src, 0o755);
    mkdir(&dst, 0o755);
    write(&src.join("theirs"), b"theirs\n", 0o644);
    chown(&src.join("theirs"), 2001, 2001);
    let certs = Certs::new();
    let start = || {
        Server::builder(&certs)
            .volume("vol", &dst)
            .once()
            .under("setpriv", &["--bounding-set=-chown"])
            .start()
    };

    let server = start();
    assert_eq!(
        cap_masks(server.pid())[1] & 1,
        0,
        "CAP_CHOWN still effective"
    );
    let out = push(&certs, &src, &server.url("vol")).json().run();
    out.assert_ok();
    assert_eq!(out.stat("not_applied_owner"), 1, "{:?}", out.summary());
    assert_eq!(std::fs::metadata(dst.join("theirs")).unwrap().uid(), 0);
    let serve = server.finish();
    assert!(
        serve.stderr.contains(
            "ferry: warning: target running as uid 0 without CAP_CHOWN: owners will not \
             be applied; add it to the container's capabilities"
        ),
        "{}",
        serve.dump()
    );

    let server = start();
    let out = push(&certs, &src, &server.url("vol")).json().run();
    out.assert_ok();
    assert_eq!(out.stat("meta_updated"), 0, "{:?}", out.summary());
    assert_eq!(out.stat("files_unchanged"), 1, "{:?}", out.summary());
    drop(server);
}

/// A non-root Ferry keeps only what its side uses of the capabilities it is given (as
/// the image's file capabilities give every one of them to whoever runs the binary): a
/// server of read-only volumes is a source only, and keeps DAC_READ_SEARCH, not the
/// capabilities that write or chown.
#[test]
fn a_non_root_source_gives_up_the_capabilities_that_write() {
    let tmp = TempDir::new().unwrap();
    open_up(tmp.path());
    let vol = tmp.path().join("vol");
    mkdir(&vol, 0o755);
    let certs = Certs::new();
    let caps = "+dac_read_search,+chown,+fowner,+dac_override";
    let (uid, gid) = (format!("--reuid={USER}"), format!("--regid={USER}"));
    let (inh, amb) = (
        format!("--inh-caps={caps}"),
        format!("--ambient-caps={caps}"),
    );
    let server = Server::builder(&certs)
        .read_only_volume("vol", &vol)
        .under("setpriv", &[&uid, &gid, "--clear-groups", &inh, &amb])
        .start();
    // CAP_DAC_READ_SEARCH is bit 2.
    let [permitted, effective, inheritable, ambient, _] = cap_masks(server.pid());
    assert_eq!(
        (permitted, effective, inheritable, ambient),
        (1 << 2, 1 << 2, 0, 0),
        "a source keeps only dac_read_search"
    );
}
