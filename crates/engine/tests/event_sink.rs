//! The reporting seam: a push run in-process (a real `serve` on loopback, real mutual
//! TLS) with a sink of the test's own gets every event, in order, as values, and nothing
//! is decided about how to show them.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry_engine::{
    Event, EventSink, Export, Output, PushConfig, Route, ServeConfig, ServerIdentity,
};
use ferry_proto::{ChangeKind, EntryKind, Filter, SessionOptions};

/// Keeps each event as a line of text.
#[derive(Default)]
struct Collect(Mutex<Vec<String>>);

impl EventSink for Collect {
    fn event(&self, event: &Event<'_>) {
        let line = match event {
            Event::Start { volume, .. } => format!("start {volume}"),
            Event::Change {
                path,
                change,
                entry,
            } => format!("change {path} {change:?} {entry:?}"),
            Event::Progress { .. } => "progress".into(),
            Event::Summary(summary) => format!(
                "summary exit {} files {}",
                summary.exit_code, summary.files_transferred
            ),
            other => format!("{other:?}"),
        };
        self.0.lock().unwrap().push(line);
    }

    fn wants_progress(&self) -> bool {
        true
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_tells_its_own_sink_every_event_in_order() {
    let tmp = tempfile::TempDir::new().unwrap();
    let (src, vol, certs) = (
        tmp.path().join("src"),
        tmp.path().join("vol"),
        tmp.path().join("certs"),
    );
    std::fs::create_dir_all(src.join("d")).unwrap();
    std::fs::create_dir(&vol).unwrap();
    std::fs::write(src.join("a.txt"), b"a\n").unwrap();
    std::fs::write(src.join("d/b.txt"), b"b\n").unwrap();
    ferry_net::certs::generate(&certs, &["localhost".into()]).unwrap();

    let serve = ServeConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        identity: ServerIdentity::Dir(certs.join("server")),
        pair_ttl: None,
        revoke: Vec::new(),
        revoked_file: None,
        volumes: vec![Export {
            name: "v".into(),
            path: vol.clone(),
            read_only: false,
        }],
        once: true,
        heartbeat: Duration::from_secs(10),
        fsync: false,
        metrics_listen: None,
        bwlimit: None,
        max_streams: ferry_engine::DEFAULT_MAX_STREAMS,
    };
    let (ready_tx, ready) = tokio::sync::oneshot::channel::<SocketAddr>();
    let server = tokio::spawn(ferry_engine::serve(
        serve,
        std::future::pending(),
        move |a| {
            let _ = ready_tx.send(a);
        },
    ));
    let addr = ready.await.expect("the server is listening");

    let sink = Arc::new(Collect::default());
    let push = PushConfig {
        src,
        route: Route {
            host: "127.0.0.1".into(),
            port: addr.port(),
            volume: "v".into(),
            server_name: "localhost".into(),
            proxy: None,
            tls_dir: certs.join("client"),
            join: None,
            connect_timeout: Duration::from_secs(20),
        },
        options: SessionOptions {
            itemize: true,
            ..SessionOptions::default()
        },
        output: Output::Sink(sink.clone()),
        heartbeat: Duration::from_secs(10),
        retries: 0,
        progress: true,
        bwlimit: None,
        filter: Filter::default(),
        privileges: None,
        streams: ferry_engine::Streams::Auto,
    };
    let summary = ferry_engine::push(push, std::future::pending()).await;
    assert_eq!(summary.exit_code, 0, "{:?}", summary.error);
    let _ = tokio::time::timeout(Duration::from_secs(10), server).await;

    assert_eq!(std::fs::read(vol.join("d/b.txt")).unwrap(), b"b\n");
    let events = sink.0.lock().unwrap().clone();
    assert_eq!(
        events.first().map(String::as_str),
        Some("start v"),
        "{events:#?}"
    );
    assert_eq!(
        events.last().map(String::as_str),
        Some("summary exit 0 files 2"),
        "{events:#?}"
    );
    for change in [
        format!(
            "change a.txt {:?} {:?}",
            ChangeKind::Created,
            EntryKind::File
        ),
        format!("change d {:?} {:?}", ChangeKind::Created, EntryKind::Dir),
        format!(
            "change d/b.txt {:?} {:?}",
            ChangeKind::Created,
            EntryKind::File
        ),
    ] {
        assert!(events.contains(&change), "{change} missing: {events:#?}");
    }
    assert_eq!(
        events.iter().rev().nth(1).map(String::as_str),
        Some("progress"),
        "a last progress event comes before the summary: {events:#?}"
    );
}
