//! The pairing ceremony as a user meets it: one code, then plain pushes.

use std::os::unix::fs::PermissionsExt;

use crate::files::write;
use crate::snapshot::{assert_trees_equal, assert_untouched, Snapshot};

use super::{join_code, printed_fingerprint, Hosts};

#[test]
fn a_pairing_then_a_push_with_no_certificate_files() {
    let hosts = Hosts::new();
    let server = hosts.serve_pairing(&[]);
    let command = server.wait_for_stdout("ferry push SRC ferry://");
    assert!(
        command.contains(&format!("ferry://{}/vol --join ", server.addr)),
        "{command}"
    );
    let code = join_code(&server);

    let joined = hosts
        .push(&server, &hosts.client)
        .arg("--join")
        .arg(&code)
        .run();
    joined.assert_ok();
    assert_trees_equal(&hosts.src, &hosts.dst);
    // The server logged the enrollment with the fingerprint the joiner was told.
    let fingerprint = printed_fingerprint(joined.stderr());
    let logged = server.wait_for_log("enrolled a new peer");
    assert!(logged.contains(&fingerprint), "{logged}\nvs {fingerprint}");
    let enrolled = std::fs::read_to_string(hosts.state.join("enrolled")).unwrap();
    assert!(enrolled.contains(&fingerprint), "{enrolled}");
    // No secret in the server's log.
    assert!(
        !server.log().contains(&code),
        "the join code reached the log"
    );

    let peer = hosts
        .client
        .join("ferry/peers")
        .join(server.addr.replace(':', "_"));
    for file in ["tls.crt", "tls.key", "ca.crt"] {
        assert!(
            peer.join(file).is_file(),
            "{} missing",
            peer.join(file).display()
        );
    }
    let mode = std::fs::metadata(peer.join("tls.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "tls.key is {mode:o}");

    // Later runs: no --join, no --tls-dir.
    write(&hosts.src.join("later.txt"), b"second run\n", 0o644);
    hosts.push(&server, &hosts.client).run().assert_ok();
    assert_trees_equal(&hosts.src, &hosts.dst);
}

#[test]
fn the_second_use_of_a_code_is_refused() {
    let hosts = Hosts::new();
    let server = hosts.serve_pairing(&[]);
    let code = join_code(&server);
    hosts
        .push(&server, &hosts.client)
        .arg("--join")
        .arg(&code)
        .run()
        .assert_ok();
    let before = Snapshot::take(&hosts.dst);
    write(&hosts.src.join("new.txt"), b"must not arrive\n", 0o644);

    let other = hosts.tmp.path().join("other-client");
    std::fs::create_dir(&other).unwrap();
    let again = hosts.push(&server, &other).arg("--join").arg(&code).run();
    again.assert_code(5);
    assert!(
        again.stderr().contains("is not pairing now"),
        "{}",
        again.stderr()
    );
    assert!(
        !other.join("ferry/peers").exists(),
        "a refused joiner stored certificates"
    );
    assert_untouched(&before, &Snapshot::take(&hosts.dst));
}

#[test]
fn an_expired_code_is_refused() {
    let hosts = Hosts::new();
    let server = hosts.serve_pairing(&["--pair-ttl", "1s"]);
    let code = join_code(&server);
    server.wait_for_log("the join code expired");
    let late = hosts
        .push(&server, &hosts.client)
        .arg("--join")
        .arg(&code)
        .run();
    late.assert_code(5);
    assert!(
        late.stderr().contains("is not pairing now"),
        "{}",
        late.stderr()
    );
    assert!(
        std::fs::read_dir(&hosts.dst).unwrap().next().is_none(),
        "the volume changed"
    );
}

#[test]
fn a_mistyped_code_is_refused_before_connecting() {
    let hosts = Hosts::new();
    let server = hosts.serve_pairing(&[]);
    let code = join_code(&server);
    let first = if code.starts_with('a') { "b" } else { "a" };
    let typo = format!("{first}{}", &code[1..]);
    let out = hosts
        .push(&server, &hosts.client)
        .arg("--join")
        .arg(&typo)
        .run();
    out.assert_code(1);
    assert!(out.stderr().contains("check digits"), "{}", out.stderr());
    assert!(
        !out.stderr().contains(&typo),
        "the code was echoed:\n{}",
        out.stderr()
    );
    // Nothing reached the server, so the real code still works.
    hosts
        .push(&server, &hosts.client)
        .arg("--join")
        .arg(&code)
        .run()
        .assert_ok();
}
