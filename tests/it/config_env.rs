//! Options from the environment (pods need no shell wrappers), and the generated
//! completions and manual page.

use crate::files::write;
use crate::util::{ferry, run_guarded, Fixture};

#[test]
fn an_option_set_purely_from_the_environment_takes_effect() {
    let fx = Fixture::new();
    write(&fx.src.join("keep.txt"), b"k\n", 0o644);
    write(&fx.dst.join("extra.txt"), b"e\n", 0o644);
    // No --tls-dir and no --delete on the command line: both come from FERRY_*.
    let out = run_guarded(
        ferry()
            .arg("push")
            .arg(&fx.src)
            .arg(fx.server.url("vol"))
            .env("FERRY_TLS_DIR", fx.certs.client_dir())
            .env("FERRY_DELETE", "true"),
        "ferry push from the environment",
    );
    assert_eq!(out.code, Some(0), "{}", out.dump());
    assert!(fx.dst.join("keep.txt").exists());
    assert!(
        !fx.dst.join("extra.txt").exists(),
        "FERRY_DELETE was ignored"
    );
}

#[test]
fn a_flag_wins_over_the_environment() {
    let fx = Fixture::new();
    write(&fx.src.join("a.txt"), b"a\n", 0o644);
    let out = run_guarded(
        ferry()
            .arg("push")
            .arg(&fx.src)
            .arg(fx.server.url("vol"))
            .arg("--tls-dir")
            .arg(fx.certs.client_dir())
            .env("FERRY_TLS_DIR", "/nonexistent"),
        "ferry push with a flag over the environment",
    );
    assert_eq!(out.code, Some(0), "{}", out.dump());
}

/// A heartbeat interval the peer's 120 s data timeout would outlast is refused up front
/// (exit 1, naming the range), from a flag or the environment.
#[test]
fn a_heartbeat_too_long_for_the_peer_is_refused() {
    for from_env in [false, true] {
        let mut command = ferry();
        command.args([
            "serve",
            "--volume",
            "v=/nonexistent",
            "--tls-dir",
            "/nonexistent",
        ]);
        match from_env {
            true => command.env("FERRY_HEARTBEAT", "300"),
            false => command.args(["--heartbeat", "300"]),
        };
        let out = run_guarded(&mut command, "ferry serve --heartbeat 300");
        assert_eq!(out.code, Some(1), "{}", out.dump());
        assert!(out.stderr.contains("1..=60"), "{}", out.dump());
    }
}

#[test]
fn completions_and_the_manual_page_are_generated() {
    let man = run_guarded(ferry().arg("man"), "ferry man");
    assert_eq!(man.code, Some(0));
    assert!(man.stdout.contains(".TH ferry 1"), "{}", man.stdout);
    let bash = run_guarded(ferry().args(["completions", "bash"]), "ferry completions");
    assert_eq!(bash.code, Some(0));
    assert!(bash.stdout.contains("_ferry()"));
    let version = run_guarded(ferry().arg("--version"), "ferry --version");
    assert!(
        version
            .stdout
            .contains(&format!("(protocol {})", ferry_proto::PROTOCOL_VERSION)),
        "{}",
        version.stdout
    );
}
