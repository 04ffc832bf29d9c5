//! A hostile or broken *target*: a raw TLS server that speaks Ferry's protocol and sends
//! the source what a real target never would. The source must refuse with a protocol
//! error (exit 12), never panic or hang, and leave its own files alone.

use std::time::Duration;

use bytes::BytesMut;
use ferry_net::TlsDir;
use ferry_proto::{decode, encode, Limits, Message};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::files::{random_bytes, write};
use crate::util::{push, Certs};

/// Serves one session: Welcome, reads until the first `List`, then sends `attack` and
/// collects what the source sends next, until a `FileEnd` or an `Error`, or the source
/// hangs up; then it closes the connection and returns what it collected.
fn hostile_target(
    certs: &Certs,
    attack: Vec<Message>,
) -> (String, std::thread::JoinHandle<Vec<Message>>) {
    let welcome = crate::raw_server::welcome(1);
    hostile_target_answering(certs, welcome, attack)
}

/// As [`hostile_target`], answering Hello with `answer` (a `Refused`, say) instead of
/// Welcome.
pub fn hostile_target_answering(
    certs: &Certs,
    answer: Message,
    attack: Vec<Message>,
) -> (String, std::thread::JoinHandle<Vec<Message>>) {
    let config = ferry_net::server_config(&TlsDir::new(&certs.server_dir())).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let mut after = Vec::new();
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let (tcp, _) = listener.accept().await.unwrap();
            let acceptor = tokio_rustls::TlsAcceptor::from(config);
            let Ok(mut tls) = ferry_net::tls_accept(&acceptor, tcp).await else {
                return after;
            };
            let limits = Limits::default();
            let mut buf = BytesMut::new();
            let mut sent = false;
            loop {
                while let Ok(Some(message)) = decode(&mut buf, &limits) {
                    let mut out = BytesMut::new();
                    if sent && !matches!(message, Message::Heartbeat) {
                        let end =
                            matches!(message, Message::FileEnd { .. } | Message::Error { .. });
                        after.push(message);
                        if end {
                            return after;
                        }
                        continue;
                    }
                    match message {
                        Message::Hello { .. } => encode(&answer, &mut out),
                        Message::List { .. } if !sent => {
                            sent = true;
                            for m in &attack {
                                encode(m, &mut out);
                            }
                        }
                        _ => {}
                    }
                    if !out.is_empty() && tls.write_all(&out).await.is_err() {
                        return after;
                    }
                }
                match tokio::time::timeout(Duration::from_secs(60), tls.read_buf(&mut buf)).await {
                    Ok(Ok(n)) if n > 0 => {}
                    _ => return after,
                }
            }
        })
    });
    (format!("ferry://127.0.0.1:{}/vol", addr.port()), thread)
}

fn attacked(attack: Vec<Message>) -> (crate::util::PushOutcome, Vec<Message>) {
    let tmp = tempfile::TempDir::new().unwrap();
    let src = tmp.path().join("src");
    write(
        &src.join("big.bin"),
        &random_bytes("hostile-target", 1 << 20),
        0o644,
    );
    let before = std::fs::read(src.join("big.bin")).unwrap();
    let certs = Certs::new();
    let (url, server) = hostile_target(&certs, attack);
    let out = push(&certs, &src, &url).json().run();
    let after = server.join().unwrap();
    assert_eq!(
        std::fs::read(src.join("big.bin")).unwrap(),
        before,
        "the source file changed"
    );
    (out, after)
}

fn signature_header(block_size: u32, strong_len: u32) -> Vec<u8> {
    // Ferry's signature magic, block size, strong-hash length, basis length (0: no
    // entries follow).
    let mut sig = 0x4652_5958u32.to_be_bytes().to_vec();
    sig.extend_from_slice(&block_size.to_be_bytes());
    sig.extend_from_slice(&strong_len.to_be_bytes());
    sig.extend_from_slice(&0u64.to_be_bytes());
    sig
}

#[test]
fn a_signature_with_block_size_zero_is_a_protocol_error() {
    let (out, after) = attacked(vec![
        Message::Want {
            index: 0,
            delta: true,
        },
        Message::Signature {
            index: 0,
            bytes: signature_header(0, 8).into(),
            last: true,
        },
    ]);
    out.assert_code(12);
    assert!(out.stdout().contains("block size 0"), "{}", out.stdout());
    assert!(
        matches!(after.last(), Some(Message::Error { .. })),
        "the source did not say why it stopped: {after:?}"
    );
}

#[test]
fn a_signature_over_the_size_limit_is_refused_before_it_is_buffered() {
    let piece = bytes::Bytes::from(vec![0u8; 256 * 1024]);
    let mut attack = vec![Message::Want {
        index: 0,
        delta: true,
    }];
    // 33 MiB of pieces, over the 32 MiB limit.
    for _ in 0..132 {
        attack.push(Message::Signature {
            index: 0,
            bytes: piece.clone(),
            last: false,
        });
    }
    let (out, _) = attacked(attack);
    out.assert_code(12);
}

#[test]
fn a_want_for_an_entry_never_listed_is_a_protocol_error() {
    let (out, _) = attacked(vec![Message::Want {
        index: 9999,
        delta: false,
    }]);
    out.assert_code(12);
}

#[test]
fn an_ack_beyond_the_listing_is_a_protocol_error() {
    let (out, _) = attacked(vec![Message::Ack { through: 1_000_000 }]);
    out.assert_code(12);
}

#[test]
fn a_resume_claiming_more_than_the_file_is_answered_from_zero() {
    // The claimed prefix cannot match the source's (it is longer than the file), so the
    // source sends the file from offset 0 instead of trusting the target.
    let (out, after) = attacked(vec![Message::Resume {
        index: 0,
        offset: u64::MAX,
        hash: [7; 32],
    }]);
    let first = after.iter().find_map(|m| match m {
        Message::Data { offset, .. } | Message::Hole { offset, .. } => Some(*offset),
        _ => None,
    });
    assert_eq!(first, Some(0), "{after:?}");
    assert!(matches!(after.last(), Some(Message::FileEnd { size, .. }) if *size == 1 << 20));
    // The target then hung up without Done: a socket error, not a success.
    out.assert_code(10);
}

/// A target asks for a file once, and once more after a content mismatch; a peer that
/// keeps asking would queue reads without bound (any certificate holder can pull).
#[test]
fn a_third_want_for_one_file_is_a_protocol_error() {
    let want = Message::Want {
        index: 0,
        delta: false,
    };
    let (out, _) = attacked(vec![want.clone(), want.clone(), want]);
    out.assert_code(12);
    let error = out.summary()["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(error.contains("asked for twice already"), "{error}");
}
