//! What a joiner or a paired client is refused: a server with another CA, and a revoked
//! certificate.

use crate::snapshot::{assert_trees_equal, assert_untouched, Snapshot};

use super::{join_code, printed_fingerprint, Hosts};

/// A man in the middle: another pairing server, with its own CA and a certificate valid
/// for the same name, answers the joiner. The joiner refuses it at the handshake, before
/// the proof: the impostor never sees an enrollment request.
#[test]
fn a_server_with_another_ca_is_refused_by_the_joiner_before_the_proof() {
    let hosts = Hosts::new();
    let real = hosts.serve_pairing(&[]);
    let code = join_code(&real);
    let impostor_state = hosts.tmp.path().join("impostor-state");
    let impostor_vol = hosts.tmp.path().join("impostor-vol");
    std::fs::create_dir(&impostor_vol).unwrap();
    let impostor = crate::util::Server::builder_with_state(&impostor_state)
        .volume("vol", &impostor_vol)
        .arg("--pair")
        .arg("--server-name")
        .arg("127.0.0.1")
        .start();
    let impostor_code = join_code(&impostor);

    let out = hosts
        .push(&impostor, &hosts.client)
        .arg("--join")
        .arg(&code)
        .run();
    out.assert_code(5);
    assert!(
        out.stderr()
            .contains("does not end at the CA the join code pins")
            && out.stderr().contains("Nothing was sent"),
        "{}",
        out.stderr()
    );
    assert!(
        !hosts.client.join("ferry/peers").exists(),
        "certificates stored"
    );
    // The impostor's own joiner gets through afterwards; by then it has logged nothing
    // about an enrollment request from the refused joiner (it never got one).
    let own = hosts.tmp.path().join("impostor-client");
    std::fs::create_dir(&own).unwrap();
    hosts
        .push(&impostor, &own)
        .arg("--join")
        .arg(&impostor_code)
        .run()
        .assert_ok();
    impostor.wait_for_log("enrolled a new peer");
    let log = impostor.log();
    assert!(
        !log.contains("enrollment from"),
        "the impostor received an enrollment request:\n{log}"
    );
    // The real server's code is untouched by all this.
    hosts
        .push(&real, &hosts.client)
        .arg("--join")
        .arg(&code)
        .run()
        .assert_ok();
}

#[test]
fn a_revoked_client_is_refused_at_the_handshake() {
    let hosts = Hosts::new();
    let revoked = hosts.tmp.path().join("revoked");
    std::fs::write(&revoked, "# forgotten peers\n").unwrap();
    let server = hosts.serve_pairing(&["--revoked-file", revoked.to_str().unwrap()]);
    let code = join_code(&server);
    let joined = hosts
        .push(&server, &hosts.client)
        .arg("--join")
        .arg(&code)
        .run();
    joined.assert_ok();
    let fingerprint = printed_fingerprint(joined.stderr());
    let before = Snapshot::take(&hosts.dst);
    crate::files::write(&hosts.src.join("new.txt"), b"must not arrive\n", 0o644);

    // Forgotten while the server runs: the file is read again.
    std::fs::write(&revoked, format!("# forgotten peers\n{fingerprint}\n")).unwrap();
    let out = hosts.push(&server, &hosts.client).run();
    out.assert_code(5);
    assert!(out.stderr().contains("revoked"), "{}", out.stderr());
    assert_untouched(&before, &Snapshot::take(&hosts.dst));
    let peer_dir = hosts
        .client
        .join("ferry/peers")
        .join(server.addr.replace(':', "_"));
    drop(server);

    // The same with --revoke on a restart (on another port: the paired directory is
    // named with --tls-dir); another peer paired then still gets in.
    let server = hosts.serve_pairing(&["--revoke", &fingerprint]);
    let out = hosts
        .push(&server, &hosts.client)
        .arg("--tls-dir")
        .arg(&peer_dir)
        .run();
    out.assert_code(5);
    assert!(out.stderr().contains("revoked"), "{}", out.stderr());
    let other = hosts.tmp.path().join("other-client");
    std::fs::create_dir(&other).unwrap();
    hosts
        .push(&server, &other)
        .arg("--join")
        .arg(join_code(&server))
        .run()
        .assert_ok();
    assert_trees_equal(&hosts.src, &hosts.dst);
}

/// A root server that drops to another user cannot read its own 0700 state directory
/// any more, so a peer revoked while it serves would still get in: it refuses to start,
/// saying so (exit 1).
#[test]
fn a_server_that_could_not_read_its_revocations_after_run_as_refuses_to_start() {
    let tmp = tempfile::TempDir::new().unwrap();
    let (state, vol) = (tmp.path().join("state"), tmp.path().join("vol"));
    std::fs::create_dir(&vol).unwrap();
    let mut cmd = crate::util::ferry();
    cmd.args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--run-as",
        "65534:65534",
    ])
    .arg("--state-dir")
    .arg(&state)
    .arg("--volume")
    .arg(format!("v={}", vol.display()));
    let out = crate::util::run_guarded(&mut cmd, "ferry serve --state-dir --run-as");
    assert_eq!(out.code, Some(1), "{}", out.dump());
    assert!(
        out.stderr.contains("revoked-fingerprints file") && out.stderr.contains("cannot be read"),
        "{}",
        out.dump()
    );
}
