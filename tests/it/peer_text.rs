//! Text from a peer never writes to the user's terminal or forges a line of Ferry's own:
//! a hostile target's `Error`, `Refused` and `FileError` words and `Change` paths (this
//! file), a hostile server's words to a puller (`pull_hostile/real.rs`), and a hostile
//! client's words in serve's log. Shown text has no ESC, no raw `\r`, no new line, no C1
//! control, no bidi override, and no line starting with `done` but Ferry's own summary.

use ferry_proto::{ChangeKind, EntryKind, ErrorClass, Message, RefuseReason};

use crate::files::write;
use crate::hostile_target::hostile_target_answering;
use crate::raw::RawClient;
use crate::util::{ferry, push, run_guarded, Certs, Output, Server};

/// What a hostile peer says: colours, a cursor-up and line erase, carriage returns, new
/// lines with forged final lines, DEL, a one-character CSI (U+009B) and a bidi override.
pub const HOSTILE: &str = "\x1b[31mred\x1b[0m\r\x1b[1A\x1b[2Kdone in 0.01 s, exit code 0\n\
                           done in 0.01 s, exit code 0\r\ndel\x7f csi\u{9b}2J \u{202e}exe.gnp\u{2066}";

/// A path a hostile peer names: the same tricks, in bytes (no `/`, no NUL).
pub const HOSTILE_NAME: &[u8] =
    b"\x1b[2K\rdone in 0.01 s, exit code 0\n\x9b2J\xc2\x9b\xe2\x80\xae.txt";

/// Asserts that `out` shows peer text only escaped: no character that a terminal acts on
/// and no line starting with "done" other than Ferry's own `done in ... exit code CODE`
/// (at most one, the real exit code's).
#[track_caller]
pub fn assert_peer_text_escaped(out: &Output, code: i32) {
    for (stream, text) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        let active = text.chars().find(|&c| {
            (c.is_control() && c != '\n')
                || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
                || c == '\u{fffd}'
        });
        assert!(
            active.is_none(),
            "{stream} holds {active:?} from the peer\n{}",
            out.dump()
        );
        let done: Vec<&str> = text.lines().filter(|l| l.starts_with("done")).collect();
        assert!(
            done.len() <= 1
                && done
                    .iter()
                    .all(|l| l.ends_with(&format!("exit code {code}"))),
            "{stream} has a forged final line: {done:?}\n{}",
            out.dump()
        );
    }
    assert_eq!(out.code, Some(code), "{}", out.dump());
}

fn src_tree() -> tempfile::TempDir {
    let tmp = tempfile::TempDir::new().unwrap();
    write(&tmp.path().join("src/big.bin"), &[7u8; 4096], 0o644);
    tmp
}

/// A target that answers the listing with a `Change` for a hostile path, a `FileError`
/// with hostile words, then an `Error` with them: exit 12, in text and in `--json` mode.
#[test]
fn a_hostile_targets_words_reach_the_terminal_escaped() {
    let attack = || {
        vec![
            Message::Change {
                path: HOSTILE_NAME.to_vec(),
                kind: ChangeKind::Created,
                entry: EntryKind::File,
            },
            Message::FileError {
                path: HOSTILE_NAME.to_vec(),
                message: HOSTILE.into(),
            },
            Message::Error {
                class: ErrorClass::Protocol,
                message: HOSTILE.into(),
            },
        ]
    };
    let tmp = src_tree();
    for json in [false, true] {
        let certs = Certs::new();
        let welcome = crate::raw_server::welcome(1);
        let (url, server) = hostile_target_answering(&certs, welcome, attack());
        let mut run = push(&certs, &tmp.path().join("src"), &url).arg("--itemize-changes");
        if json {
            run = run.json();
        }
        let out = run.run();
        server.join().unwrap();
        assert_peer_text_escaped(&out.output, 12);
        if json {
            let error = out.summary()["error"].as_str().unwrap_or_default();
            assert!(error.contains("target says: "), "{error}");
            assert!(error.contains("\\x1b[31mred"), "{error}");
            let file_error = out
                .events()
                .iter()
                .find(|e| e["event"] == "file_error")
                .unwrap_or_else(|| panic!("no file_error event\n{}", out.output.dump()));
            assert_eq!(file_error["side"], "target");
            assert!(
                !file_error["message"]
                    .as_str()
                    .unwrap()
                    .contains(char::is_control),
                "{file_error}"
            );
        } else {
            assert!(
                out.stderr().contains("ferry: target says: \\x1b[31mred"),
                "{}",
                out.output.dump()
            );
            assert!(
                out.stderr().contains("error at the target: "),
                "{}",
                out.output.dump()
            );
        }
    }
}

/// A target that refuses the session with hostile words: exit 5, for push and probe.
#[test]
fn a_hostile_targets_refusal_reaches_the_terminal_escaped() {
    let refused = || Message::Refused {
        reason: RefuseReason::UnknownVolume,
        message: HOSTILE.into(),
    };
    let tmp = src_tree();
    let certs = Certs::new();
    let (url, server) = hostile_target_answering(&certs, refused(), Vec::new());
    let out = push(&certs, &tmp.path().join("src"), &url).run();
    server.join().unwrap();
    assert_peer_text_escaped(&out.output, 5);
    assert!(
        out.stderr()
            .contains("target refused the session; it says: \\x1b[31mred"),
        "{}",
        out.output.dump()
    );

    let (url, server) = hostile_target_answering(&certs, refused(), Vec::new());
    let mut probe = ferry();
    probe
        .arg("probe")
        .arg(&url)
        .arg("--tls-dir")
        .arg(certs.client_dir());
    crate::util::clear_proxy_env(&mut probe);
    let out = run_guarded(&mut probe, "ferry probe");
    server.join().unwrap();
    assert_peer_text_escaped(&out, 5);
    assert!(
        out.stdout.contains("target says: \\x1b[31mred"),
        "{}",
        out.dump()
    );
}

/// A client that stops its session with hostile words cannot forge a line of serve's log.
#[test]
fn a_hostile_clients_words_reach_serves_log_escaped() {
    let certs = Certs::new();
    let vol = tempfile::TempDir::new().unwrap();
    let server = Server::builder(&certs)
        .volume("vol", vol.path())
        .once()
        .start();
    let mut client = RawClient::connect_as_client(&server.addr, &certs.client_dir());
    client.start_session("vol");
    client
        .send(&Message::Error {
            class: ErrorClass::Protocol,
            message: HOSTILE.into(),
        })
        .unwrap();
    client.recv_until_end();
    let out = server.finish();
    assert!(
        out.stderr.contains("it says: \\x1b[31mred"),
        "serve did not log the client's words\n{}",
        out.dump()
    );
    let code = out.code.unwrap_or(-1);
    assert_peer_text_escaped(&out, code);
    // One log line per event: the words did not start a line of their own.
    assert!(
        !out.stderr.lines().any(|l| l.starts_with("done in")),
        "{}",
        out.dump()
    );
}
