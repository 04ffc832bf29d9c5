//! The client's half of the handshake against a server that answers Hello in ways an
//! honest but slow server, or one that cannot take the Hello, does.

use ferry_proto::{ErrorClass, Message};
use tempfile::TempDir;

use crate::files::own_meta;
use crate::raw_server::{RawServer, Step};
use crate::util::{pull, Certs};

fn welcome() -> Step {
    Step::Send(crate::raw_server::welcome(1))
}

/// A server whose admission takes longer than its heartbeat interval sends a Heartbeat
/// before Welcome: the client waits on for the answer.
#[test]
fn a_heartbeat_before_welcome_is_waited_through() {
    let tmp = TempDir::new().unwrap();
    let dest = tmp.path().join("dest");
    std::fs::create_dir(&dest).unwrap();
    let certs = Certs::new();
    let script = vec![
        Step::Send(Message::Root {
            meta: own_meta(&dest),
        }),
        Step::Send(Message::List {
            dir: Vec::new(),
            first: 0,
            entries: Vec::new(),
            dir_done: true,
            dir_complete: true,
        }),
        Step::Send(Message::ListEnd {
            entries: 0,
            read_errors: 0,
        }),
    ];
    let greeting = vec![Step::Send(Message::Heartbeat), welcome()];
    let server = RawServer::greeting(&certs.server_dir(), greeting, script);
    let out = pull(&certs, &server.url(), &dest).run();
    let _ = server.finish();
    assert_eq!(out.output.code, Some(0), "{}", out.output.dump());
}

/// A server that cannot take the Hello says why in an `Error`: the client shows it, with
/// the exit code of its class.
#[test]
fn an_error_in_answer_to_hello_is_shown() {
    let tmp = TempDir::new().unwrap();
    let dest = tmp.path().join("dest");
    let certs = Certs::new();
    let greeting = vec![Step::Send(Message::Error {
        class: ErrorClass::Protocol,
        message: "cannot read your Hello: unknown option bits".into(),
    })];
    let server = RawServer::greeting(&certs.server_dir(), greeting, Vec::new());
    let out = pull(&certs, &server.url(), &dest).run();
    let _ = server.finish();
    assert_eq!(out.output.code, Some(12), "{}", out.output.dump());
    assert!(
        out.stderr()
            .contains("it says: cannot read your Hello: unknown option bits"),
        "{}",
        out.output.dump()
    );
}

/// A session has 1 to 16 streams: a Welcome offering none, or more than the limit, is the
/// server breaking the protocol (exit 12), said in words, whether it is a pull or a push.
#[test]
fn a_welcome_offering_no_streams_or_too_many_is_refused() {
    let certs = Certs::new();
    for streams_max in [0, 17] {
        let tmp = TempDir::new().unwrap();
        let dest = tmp.path().join("dest");
        let greeting = vec![Step::Send(crate::raw_server::welcome(streams_max))];
        let server = RawServer::greeting(&certs.server_dir(), greeting, Vec::new());
        let out = pull(&certs, &server.url(), &dest).run();
        let _ = server.finish();
        assert_eq!(out.output.code, Some(12), "{}", out.output.dump());
        assert!(
            out.stderr().contains(&format!(
                "offers {streams_max} streams for this session; a session has 1 to 16"
            )),
            "{}",
            out.output.dump()
        );
        // A probe reads the same Welcome.
        let greeting = vec![Step::Send(crate::raw_server::welcome(streams_max))];
        let server = RawServer::greeting(&certs.server_dir(), greeting, Vec::new());
        let mut probe = crate::util::ferry();
        probe
            .arg("probe")
            .arg(server.url())
            .arg("--tls-dir")
            .arg(certs.client_dir());
        crate::util::clear_proxy_env(&mut probe);
        let out = crate::util::run_guarded(&mut probe, "ferry probe");
        let _ = server.finish();
        assert_eq!(out.code, Some(12), "{}", out.dump());
        assert!(
            out.stdout
                .contains(&format!("offers {streams_max} streams")),
            "{}",
            out.dump()
        );
    }
}
