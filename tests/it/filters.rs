//! `--exclude`, `--include`, `--exclude-from`, `--delete-excluded` and the default rule
//! for `lost+found`, end to end.

use std::fs;

use crate::files::write;
use crate::util::Fixture;

fn names(dir: &std::path::Path) -> Vec<String> {
    let mut out: Vec<String> = walk(dir, dir);
    out.sort();
    out
}

fn walk(root: &std::path::Path, dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let rel = e
            .path()
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if e.file_type().unwrap().is_dir() {
            out.push(format!("{rel}/"));
            out.extend(walk(root, &e.path()));
        } else {
            out.push(rel);
        }
    }
    out
}

fn source_with_logs_and_cache(fx: &Fixture) {
    write(&fx.src.join("keep.txt"), b"k\n", 0o644);
    write(&fx.src.join("a.log"), b"a\n", 0o644);
    write(&fx.src.join("sub/b.log"), b"b\n", 0o644);
    write(&fx.src.join("keep.log"), b"kl\n", 0o644);
    write(&fx.src.join("cache/blob"), b"c\n", 0o644);
    // Only at the target: one plain extra, two the filters exclude.
    write(&fx.dst.join("extra.txt"), b"e\n", 0o644);
    write(&fx.dst.join("x.log"), b"x\n", 0o644);
    write(&fx.dst.join("cache/old"), b"o\n", 0o644);
}

#[test]
fn excluded_entries_are_not_sent_and_are_kept_from_delete() {
    let fx = Fixture::new();
    source_with_logs_and_cache(&fx);
    fx.push()
        .arg("--include")
        .arg("keep.log")
        .arg("--exclude")
        .arg("*.log")
        .arg("--exclude")
        .arg("cache/")
        .delete()
        .run()
        .assert_ok();
    assert_eq!(
        names(&fx.dst),
        ["cache/", "cache/old", "keep.log", "keep.txt", "sub/", "x.log"],
        "first match wins (keep.log included), excluded sources not sent, excluded target entries kept"
    );
}

#[test]
fn delete_excluded_removes_what_the_filters_exclude_at_the_target() {
    let fx = Fixture::new();
    source_with_logs_and_cache(&fx);
    fx.push()
        .arg("--exclude")
        .arg("*.log")
        .arg("--exclude")
        .arg("cache/")
        .delete()
        .arg("--delete-excluded")
        .run()
        .assert_ok();
    assert_eq!(names(&fx.dst), ["keep.txt", "sub/"]);
}

#[test]
fn exclude_from_reads_rules_in_order() {
    let fx = Fixture::new();
    source_with_logs_and_cache(&fx);
    let rules = fx.tmp.path().join("rules");
    fs::write(
        &rules,
        "# comment\n+ keep.log\n- *.log\n\n; another\n/cache/\n",
    )
    .unwrap();
    fx.push()
        .arg("--exclude-from")
        .arg(&rules)
        .run()
        .assert_ok();
    assert_eq!(
        names(&fx.dst),
        [
            "cache/",
            "cache/old",
            "extra.txt",
            "keep.log",
            "keep.txt",
            "sub/",
            "x.log"
        ]
    );
}

#[test]
fn lost_and_found_at_the_root_is_left_alone_by_default() {
    let fx = Fixture::new();
    write(&fx.src.join("data.txt"), b"d\n", 0o644);
    write(
        &fx.src.join("lost+found/#123"),
        b"source fsck debris\n",
        0o600,
    );
    write(
        &fx.src.join("deep/lost+found/kept"),
        b"not at the root\n",
        0o644,
    );
    write(
        &fx.dst.join("lost+found/#9"),
        b"target fsck debris\n",
        0o600,
    );
    fx.push().delete().run().assert_ok();
    assert_eq!(
        names(&fx.dst),
        [
            "data.txt",
            "deep/",
            "deep/lost+found/",
            "deep/lost+found/kept",
            "lost+found/",
            "lost+found/#9"
        ],
        "the source's root lost+found was copied, or the target's was touched"
    );
    fx.push().arg("--include-lost-found").run().assert_ok();
    assert_eq!(
        fs::read(fx.dst.join("lost+found/#123")).unwrap(),
        b"source fsck debris\n"
    );
}

#[test]
fn a_bad_pattern_is_a_usage_error() {
    let fx = Fixture::new();
    write(&fx.src.join("a"), b"a", 0o644);
    fx.push().arg("--exclude").arg("/").run().assert_code(1);
}

#[test]
fn a_filter_over_the_limits_is_a_usage_error_before_connecting() {
    let tmp = tempfile::TempDir::new().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir(&src).unwrap();
    let certs = crate::util::Certs::new();
    // Nothing listens there: a client that connected would fail with exit 10, not 1.
    let url = "ferry://127.0.0.1:1/vol";
    // Within the count, over the total: 100 rules of 700 bytes.
    let long = tmp.path().join("long-rules");
    let rule = format!("{}\n", "x".repeat(700));
    fs::write(&long, rule.repeat(100)).unwrap();
    let over_total = crate::util::push(&certs, &src, url)
        .arg("--exclude-from")
        .arg(&long)
        .run();
    over_total.assert_code(1);
    assert!(
        over_total.stderr().contains("over the limit of 65536"),
        "{}",
        over_total.stderr()
    );
    // Over the count.
    let many = tmp.path().join("many-rules");
    let rules: String = (0..2000).map(|i| format!("f{i}\n")).collect();
    fs::write(&many, rules).unwrap();
    let over_count = crate::util::push(&certs, &src, url)
        .arg("--exclude-from")
        .arg(&many)
        .run();
    over_count.assert_code(1);
    assert!(
        over_count.stderr().contains("over the limit of 1024"),
        "{}",
        over_count.stderr()
    );
}
