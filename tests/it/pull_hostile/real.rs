//! Hostile-server cases against the real `ferry pull`, over TLS from a fake server
//! ([`crate::raw_server`]), for what the in-process cases cannot show: the binary's exit
//! status and what it prints. A hostile server's words and names reach the puller's
//! terminal escaped (an `Error` with control characters and forged final lines, and a
//! listed file whose name holds them, shown by `--itemize-changes` in text and `--json`
//! mode), and a frame cut short by a TLS close is refused with exit 12.

use ferry_proto::ErrorClass;

use super::*;
use crate::peer_text::{assert_peer_text_escaped, HOSTILE, HOSTILE_NAME};
use crate::raw_server::{RawServer, Transcript, VOLUME};
use crate::util::{pull, Certs, PushOutcome};

/// What one hostile session against `ferry pull` left behind.
struct RealRun {
    place: Place,
    before: Snapshot,
    out: PushOutcome,
    transcript: Transcript,
    _tmp: TempDir,
}

impl RealRun {
    fn dump(&self) -> String {
        format!(
            "{}\n--- the fake server got ---\n{:?}",
            self.out.output.dump(),
            self.transcript
        )
    }
}

impl Hostile {
    /// Runs the real pull with these extra flags.
    fn pulling_with(mut self, args: &[&'static str]) -> Self {
        self.args.extend_from_slice(args);
        self
    }

    /// As [`Hostile::refused`], with the real `ferry pull`.
    fn refused_by_ferry_pull(self) -> RealRun {
        let run = self.contained_by_ferry_pull(12);
        assert_own_entries_untouched(&run.place, &run.before);
        run
    }

    /// As [`Hostile::contained`], with the real `ferry pull`.
    fn contained_by_ferry_pull(self, code: i32) -> RealRun {
        let absent = self.absent.clone();
        let run = self.run_ferry_pull();
        assert_eq!(
            run.out.output.code,
            Some(code),
            "ferry pull: unexpected exit code\n{}",
            run.dump()
        );
        assert_contained(&run.place, &run.before, &absent, &run.dump());
        run
    }

    fn run_ferry_pull(self) -> RealRun {
        let (tmp, place, before) = scene();
        let dest = place.tmp.join("dest");
        let root = own_meta(&dest);
        let mut script = vec![Step::Send(Message::Root { meta: root })];
        script.extend((self.script)(&place));
        let certs = Certs::new();
        let server =
            RawServer::answering_done(&certs.server_dir(), script, self.answer, self.on_done);
        let mut command = pull(&certs, &server.url(), &dest);
        for pattern in &self.excludes {
            command = command.arg("--exclude").arg(pattern);
        }
        for arg in &self.args {
            command = command.arg(arg);
        }
        let out = command.run();
        let transcript = server.finish();
        let run = RealRun {
            place,
            before,
            out,
            transcript,
            _tmp: tmp,
        };
        match &run.transcript.hello {
            Some(Message::Hello {
                version: PROTOCOL_VERSION,
                volume,
                options,
                ..
            }) if volume == VOLUME.as_bytes() && options.pull => {}
            _ => panic!(
                "the fake server did not get a pull's Hello for {VOLUME:?}\n{}",
                run.dump()
            ),
        }
        run
    }
}

#[test]
fn truncated_frame_then_a_tls_close_is_refused() {
    let mut frame = bytes::BytesMut::new();
    encode(&list(b"", 0, vec![file(b"t")], true), &mut frame);
    let cut = frame[..frame.len() - 3].to_vec();
    hostile_server(move |_| vec![Step::Raw(cut), Step::CloseWrite])
        .absent(&["TMP/dest/t"])
        .refused_by_ferry_pull();
}

#[test]
fn a_hostile_servers_error_reaches_the_puller_escaped() {
    let run = hostile_server(|_| {
        vec![Step::Send(Message::Error {
            class: ErrorClass::Protocol,
            message: HOSTILE.into(),
        })]
    })
    .refused_by_ferry_pull();
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
            .contained_by_ferry_pull(0);
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
