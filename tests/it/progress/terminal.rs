//! The live progress line, in a real pseudo-terminal (`script` from util-linux).

use std::process::Command;

use crate::files::{random_bytes, write};
use crate::util::{clear_proxy_env, run_guarded, Fixture};

/// Single-quotes `s` for `sh -c`.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The pieces of terminal output between carriage returns and newlines, with the
/// clear-line escape removed.
fn screen_lines(raw: &str) -> Vec<String> {
    raw.replace("\x1b[2K", "")
        .split(['\r', '\n'])
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn a_terminal_shows_the_phase_and_totals_and_ends_on_a_final_line() {
    let fx = Fixture::new();
    for dir in ["a", "b", "c", "d"] {
        write(&fx.src.join(dir).join("f.txt"), b"some content\n", 0o644);
    }
    write(
        &fx.src.join("big.bin"),
        &random_bytes("tty", 3 << 20),
        0o644,
    );
    let ferry = env!("CARGO_BIN_EXE_ferry");
    let command = [
        ferry,
        "push",
        fx.src.to_str().unwrap(),
        &fx.server.url("vol"),
        "--tls-dir",
        fx.certs.client_dir().to_str().unwrap(),
    ]
    .map(quote)
    .join(" ");
    let mut cmd = Command::new("script");
    cmd.args(["-qfec", &command, "/dev/null"])
        // Slow scan: the line is drawn while the listing still streams.
        .env("FERRY_TEST_SCAN_PAUSE_MS", "300")
        .env("TERM", "xterm");
    clear_proxy_env(&mut cmd);
    let out = run_guarded(&mut cmd, "ferry push in a pty");
    assert_eq!(out.code, Some(0), "{}", out.dump());
    let raw = &out.stdout;
    assert!(
        raw.contains('\r'),
        "the line was never redrawn in place: {raw:?}"
    );
    let lines = screen_lines(raw);
    let live = lines.iter().find(|l| {
        ["connecting", "scanning", "transferring", "finishing"]
            .iter()
            .any(|phase| l.starts_with(phase))
            && l.contains(" files ")
            && (l.ends_with("/s") || l.contains("/s  "))
    });
    assert!(live.is_some(), "no live progress line in {lines:#?}");
    assert!(
        lines.iter().any(|l| l.contains("+ files")),
        "the totals never said they were still growing: {lines:#?}"
    );
    let last = lines
        .iter()
        .position(|l| l.starts_with("done "))
        .unwrap_or_else(|| panic!("no final `done` line in {lines:#?}"));
    assert!(
        lines[last].contains("5/5 files") && lines[last].contains("3.0 MiB/3.0 MiB"),
        "final line {:?} does not show the totals",
        lines[last]
    );
    // After the final line only the report follows, never the live line again.
    assert!(
        lines[last + 1..]
            .iter()
            .all(|l| !l.starts_with("transferring")),
        "{lines:#?}"
    );
    assert!(lines[last + 1..]
        .iter()
        .any(|l| l.starts_with("files: 5 scanned, 5 transferred")));
}

#[test]
fn without_a_terminal_there_is_no_live_line_unless_asked() {
    let fx = Fixture::new();
    write(&fx.src.join("a.txt"), b"a\n", 0o644);
    let quiet = fx.push().run();
    quiet.assert_ok();
    assert!(!quiet.stderr().contains('\r'), "{}", quiet.stderr());
    assert!(
        quiet.stderr().contains("files: 1 scanned"),
        "{}",
        quiet.stderr()
    );

    write(&fx.src.join("b.txt"), b"b\n", 0o644);
    let forced = fx.push().arg("--progress").run();
    forced.assert_ok();
    let lines = screen_lines(forced.stderr());
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("done ") && l.contains("2/2 files")),
        "{}",
        forced.stderr()
    );
}
