//! A hostile server's words and names reach the puller's terminal escaped: an `Error`
//! with control characters and forged final lines, and a listed file whose name holds
//! them (shown by `--itemize-changes`, in text and `--json` mode).

use ferry_proto::{ErrorClass, Message};

use crate::peer_text::{assert_peer_text_escaped, HOSTILE, HOSTILE_NAME};

use super::{file, hostile_server, listing};

#[test]
fn a_hostile_servers_error_reaches_the_puller_escaped() {
    let run = hostile_server(|_| {
        vec![super::Step::Send(Message::Error {
            class: ErrorClass::Protocol,
            message: HOSTILE.into(),
        })]
    })
    .refused();
    assert_peer_text_escaped(&run.out.output, 12);
    assert!(
        run.out.stderr().contains("it says: \\x1b[31mred"),
        "{}",
        run.dump()
    );
}

#[test]
fn a_hostile_name_is_itemized_escaped() {
    for json in [false, true] {
        let mut args = vec!["--itemize-changes"];
        if json {
            args.push("--json");
        }
        let run = hostile_server(|_| listing(vec![file(HOSTILE_NAME)]))
            .pulling_with(&args)
            .contained(0);
        assert_peer_text_escaped(&run.out.output, 0);
        // In JSON text each backslash of the escaped name is itself escaped.
        let shown = if json {
            "\\\\x1b[2K\\\\x0ddone in"
        } else {
            "\\x1b[2K\\x0ddone in"
        };
        let itemized = run.out.stdout().contains(shown);
        assert!(itemized, "the name was not itemized\n{}", run.dump());
    }
}

/// A server that stops after the puller's `Done` (interrupted by a signal, say) gives the
/// exit code of its `Error`'s class, not a protocol error: 20 for an interrupted one.
#[test]
fn a_servers_error_after_done_keeps_its_class() {
    use super::Step;
    for (class, code) in [(ErrorClass::Interrupted, 20), (ErrorClass::FileIo, 11)] {
        let run = hostile_server(|_| listing(vec![]))
            .answering_done(vec![Step::Send(Message::Error {
                class,
                message: "stopping".into(),
            })])
            .contained(code);
        assert!(
            run.out.stderr().contains("source says: stopping"),
            "{}",
            run.dump()
        );
    }
}
