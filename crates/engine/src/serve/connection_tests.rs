use std::path::Path;

use ferry_net::TlsDir;
use ferry_proto::{Filter, Message, SessionOptions, PROTOCOL_VERSION};
use tokio::net::TcpListener;

use super::*;
use crate::framed::{spawn_writer, FrameReader, FrameSender};

/// A connection to `addr` with the client certificate of `certs`: its reader and sender
/// (the writer task runs until the sender is dropped).
async fn client(
    addr: SocketAddr,
    certs: &Path,
) -> (
    FrameReader<tokio::io::ReadHalf<tokio_rustls::client::TlsStream<TcpStream>>>,
    FrameSender,
) {
    let config = ferry_net::client_config(&TlsDir::new(&certs.join("client"))).expect("client");
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let name = ferry_net::server_name("localhost").expect("name");
    let tls = ferry_net::tls_connect(config, name, tcp)
        .await
        .expect("TLS");
    let (read, write) = tokio::io::split(tls);
    let (tx, _writer) = spawn_writer(write, 8, Duration::from_secs(10));
    (FrameReader::new(read, Limits::default()), tx)
}

async fn answer<R: tokio::io::AsyncRead + Unpin>(reader: &mut FrameReader<R>) -> Message {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), reader.next()).await {
            Ok(Ok(Some(Message::Heartbeat))) => continue,
            Ok(Ok(Some(message))) => return message,
            other => panic!("expected an answer, got {other:?}"),
        }
    }
}

fn hello(streams: bool) -> Message {
    Message::Hello {
        version: PROTOCOL_VERSION,
        volume: b"vol".to_vec(),
        options: SessionOptions {
            streams,
            ..SessionOptions::default()
        },
        filter: Filter::default(),
    }
}

/// A session that is over gives its session slot back at once, not after the grace its
/// joined streams get to close: else a client could end sessions on one volume in a
/// loop, each holding a slot for the grace while the next one runs, and fill every
/// session slot of the server with a single volume.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_over_frees_its_slot_while_its_joined_streams_close() {
    let tmp = tempfile::TempDir::new().expect("tempdir");
    let certs = tmp.path().join("certs");
    ferry_net::generate(&certs, &["localhost".to_owned()]).expect("certs");
    let vol = tmp.path().join("vol");
    std::fs::create_dir(&vol).expect("mkdir");
    let server_tls = ferry_net::server_config(&TlsDir::new(&certs.join("server"))).expect("tls");
    let export = Export {
        name: "vol".into(),
        path: vol.clone(),
        read_only: false,
    };
    let mut shared = Shared::new(
        ServerTls::new(server_tls, None),
        HashMap::from([("vol".to_owned(), export)]),
        Privileges::current(),
    );
    // One session at a time, so that a slot still held shows.
    shared.sessions = Arc::new(Semaphore::new(1));
    let shared = Arc::new(shared);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = {
        let shared = shared.clone();
        tokio::spawn(async move {
            loop {
                let (stream, peer) = listener.accept().await.expect("accept");
                let (ticket, _) = shared.preauth.admit(peer.ip());
                let shared = shared.clone();
                tokio::spawn(async move {
                    connection(&shared, stream, peer, Duration::from_secs(10), ticket).await
                });
            }
        })
    };

    let (mut reader, tx) = client(addr, &certs).await;
    tx.send(hello(true)).await.expect("Hello");
    let key = match answer(&mut reader).await {
        Message::Welcome { key: Some(key), .. } => key,
        other => panic!("expected a Welcome with a key, got {other:?}"),
    };
    let (mut joined_reader, joined_tx) = client(addr, &certs).await;
    joined_tx
        .send(Message::Join {
            version: PROTOCOL_VERSION,
            key,
            stream: 1,
        })
        .await
        .expect("Join");
    assert_eq!(
        answer(&mut joined_reader).await,
        Message::Joined { stream: 1 }
    );
    // The session ends (its client goes away); the joined stream stays open.
    drop((reader, tx));
    tokio::time::timeout(Duration::from_secs(10), async {
        while shared.metrics.sessions_active.load(Relaxed) != 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the session sees its client gone");

    let (mut reader, tx) = client(addr, &certs).await;
    tx.send(hello(false)).await.expect("Hello");
    let next = answer(&mut reader).await;
    assert!(
        matches!(next, Message::Welcome { .. }),
        "the next session on the volume must find a session slot, got {next:?}"
    );
    drop((joined_reader, joined_tx));
    server.abort();
}
