//! `connect_proxy` and `connect_tunnel` against a fake proxy on loopback, for the answers a
//! real proxy rarely gives: slow, endless, truncated, or not HTTP at all.

use std::future::Future;
use std::time::Duration;

use ferry_net::{connect_proxy, connect_tunnel, NetError, NetErrorClass, ProxyUrl};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

/// Only a guard against a hang: no test relies on timing.
const PATIENCE: Duration = Duration::from_secs(30);
const ROUTE: &str = "dvm-ns.apps.example.com";
const USER: &str = "alice";
/// In the URL as `s3cr%40t-Pa55`.
const PASSWORD: &str = "s3cr@t-Pa55";
/// base64("alice:s3cr@t-Pa55")
const TOKEN: &str = "YWxpY2U6czNjckB0LVBhNTU=";

/// A proxy that takes one connection, reads the CONNECT request head, then lets `answer`
/// have the stream. The handle gives back the request bytes.
async fn fake_proxy<F, Fut>(answer: F) -> (u16, JoinHandle<Vec<u8>>)
where
    F: FnOnce(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let listener = ferry_net::listen("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        stream.set_nodelay(true).unwrap();
        let mut request = Vec::new();
        while !request.ends_with(b"\r\n\r\n") {
            let mut byte = [0];
            if stream.read(&mut byte).await.unwrap() == 0 {
                break;
            }
            request.push(byte[0]);
        }
        answer(stream).await;
        request
    });
    (port, handle)
}

/// A fake proxy that sends `reply` in one write, then keeps the connection open until the
/// client is done.
async fn replying(reply: &'static [u8]) -> (u16, JoinHandle<Vec<u8>>) {
    fake_proxy(move |mut stream| async move {
        let _ = stream.write_all(reply).await;
        let _ = stream.read(&mut [0; 1]).await;
    })
    .await
}

fn with_credentials(port: u16) -> ProxyUrl {
    ProxyUrl::parse(&format!("http://{USER}:s3cr%40t-Pa55@127.0.0.1:{port}")).unwrap()
}

fn anonymous(port: u16) -> ProxyUrl {
    ProxyUrl::parse(&format!("127.0.0.1:{port}")).unwrap()
}

async fn tunnel(proxy: &ProxyUrl, host: &str) -> Result<TcpStream, NetError> {
    let stream = connect_proxy(proxy, PATIENCE).await?;
    tokio::time::timeout(PATIENCE, connect_tunnel(stream, proxy, host, 443))
        .await
        .expect("connect_tunnel hung")
}

/// The error of a tunnel that must fail, checked for leaks on the way.
async fn refused(proxy: &ProxyUrl) -> NetError {
    let error = tunnel(proxy, ROUTE).await.expect_err("the tunnel opened");
    assert_redacted(&error);
    error
}

fn assert_redacted(error: &NetError) {
    for text in [
        error.to_string(),
        format!("{error:?}"),
        format!("{error:#?}"),
    ] {
        for secret in [PASSWORD, "s3cr%40t", "s3cr", TOKEN] {
            assert!(!text.contains(secret), "{secret:?} leaked into {text}");
        }
    }
}

#[tokio::test]
async fn the_tunnel_starts_right_after_the_head_and_carries_bytes_unchanged() {
    let (port, proxy_side) = fake_proxy(|mut stream| async move {
        stream
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\nXYZ")
            .await
            .unwrap();
        let (mut from_client, mut to_client) = stream.split();
        tokio::io::copy(&mut from_client, &mut to_client)
            .await
            .unwrap();
        to_client.shutdown().await.unwrap();
    })
    .await;
    let stream = tunnel(&with_credentials(port), ROUTE).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let mut first = [0; 3];
    read.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"XYZ", "connect_tunnel took bytes of the tunnel");

    let sent: Vec<u8> = (0..1_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let writer = async {
        write.write_all(&sent).await.unwrap();
        write.shutdown().await.unwrap();
    };
    let reader = async {
        let mut echoed = Vec::new();
        read.read_to_end(&mut echoed).await.unwrap();
        echoed
    };
    let ((), echoed) = tokio::join!(writer, reader);
    assert!(echoed == sent, "the tunnel changed the bytes");
    proxy_side.await.unwrap();
}

#[tokio::test]
async fn sends_exactly_one_connect_with_host_and_basic_auth() {
    let (port, proxy_side) = replying(b"HTTP/1.1 200 OK\r\n\r\n").await;
    tunnel(&with_credentials(port), ROUTE).await.unwrap();
    let expected = format!(
        "CONNECT {ROUTE}:443 HTTP/1.1\r\nHost: {ROUTE}:443\r\nProxy-Authorization: Basic \
         {TOKEN}\r\n\r\n"
    );
    assert_eq!(
        String::from_utf8(proxy_side.await.unwrap()).unwrap(),
        expected
    );

    let (port, proxy_side) = replying(b"HTTP/1.1 200 OK\r\n\r\n").await;
    tunnel(&anonymous(port), "fd00::1").await.unwrap();
    assert_eq!(
        String::from_utf8(proxy_side.await.unwrap()).unwrap(),
        "CONNECT [fd00::1]:443 HTTP/1.1\r\nHost: [fd00::1]:443\r\n\r\n"
    );
}

#[tokio::test]
async fn http_1_0_and_any_2xx_open_the_tunnel() {
    for reply in [
        &b"HTTP/1.0 200 Connection established\r\nProxy-agent: Apache\r\n\r\n"[..],
        b"HTTP/1.1 204 No Content\r\n\r\n",
        b"HTTP/1.1 200\n\n",
    ] {
        let (port, _) = replying(reply).await;
        tunnel(&anonymous(port), ROUTE)
            .await
            .unwrap_or_else(|e| panic!("{reply:?}: {e}"));
    }
}

#[tokio::test]
async fn a_reply_trickling_in_one_byte_at_a_time_is_read_exactly() {
    let (port, _) = fake_proxy(|mut stream| async move {
        let reply = b"HTTP/1.1 200 Connection established\r\nVia: 1.1 squid\r\n\r\nXYZ";
        for byte in reply {
            stream.write_all(&[*byte]).await.unwrap();
            stream.flush().await.unwrap();
            tokio::task::yield_now().await;
        }
        let _ = stream.read(&mut [0; 1]).await;
    })
    .await;
    let mut stream = tunnel(&anonymous(port), ROUTE).await.unwrap();
    let mut first = [0; 3];
    stream.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"XYZ");
}

#[tokio::test]
async fn a_407_asks_for_credentials_or_blames_them() {
    let reply = b"HTTP/1.1 407 Proxy Authentication Required\r\n\
                  Proxy-Authenticate: Basic realm=\"squid\"\r\n\r\n";
    let (port, _) = replying(reply).await;
    let error = refused(&anonymous(port)).await;
    assert_eq!(error.class(), NetErrorClass::Auth);
    assert!(
        matches!(
            error,
            NetError::ProxyAuth {
                had_credentials: false,
                ..
            }
        ),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains("requires credentials"), "{message}");
    assert!(
        message.contains("--proxy http://USER:PASSWORD@host:port"),
        "{message}"
    );

    let (port, _) = replying(reply).await;
    let error = refused(&with_credentials(port)).await;
    assert_eq!(error.class(), NetErrorClass::Auth);
    assert!(
        matches!(
            error,
            NetError::ProxyAuth {
                had_credentials: true,
                ..
            }
        ),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains(&format!("http://{USER}:***@127.0.0.1:{port}")),
        "{message}"
    );
    assert!(
        message.contains("rejected the credentials for user \"alice\""),
        "{message}"
    );
}

#[tokio::test]
async fn refusals_carry_the_status_the_reason_and_a_hint() {
    let cases: [(&'static [u8], u16, &str, &str); 4] = [
        (
            b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n",
            403,
            "Forbidden",
            "policy forbids CONNECT to dvm-ns.apps.example.com:443",
        ),
        (
            b"HTTP/1.1 502 Bad Gateway\r\n\r\n",
            502,
            "Bad Gateway",
            "could not reach dvm-ns.apps.example.com:443",
        ),
        (
            b"HTTP/1.1 503 Service \x1b[2JUnavailable\r\n\r\n",
            503,
            "Service ?[2JUnavailable",
            "route host resolves",
        ),
        (
            b"HTTP/1.1 405 Method Not Allowed\r\n\r\n",
            405,
            "Method Not Allowed",
            "does not offer CONNECT",
        ),
    ];
    for (reply, code, phrase, hint_piece) in cases {
        let (port, _) = replying(reply).await;
        let error = refused(&with_credentials(port)).await;
        assert_eq!(error.class(), NetErrorClass::Connect);
        let NetError::ProxyRefused {
            status,
            reason,
            hint,
            ..
        } = &error
        else {
            panic!("{error:?}");
        };
        assert_eq!((*status, reason.as_str()), (code, phrase));
        assert!(hint.contains(hint_piece), "{hint}");
        assert!(error.to_string().contains(hint_piece), "{error}");
    }
}

#[tokio::test]
async fn a_refusal_is_reported_even_if_the_proxy_hangs_up_mid_head() {
    let (port, _) = fake_proxy(|mut stream| async move {
        stream
            .write_all(b"HTTP/1.1 403 Forbidden\r\nVia: x\r\n")
            .await
            .unwrap();
    })
    .await;
    let error = refused(&anonymous(port)).await;
    assert!(
        matches!(error, NetError::ProxyRefused { status: 403, .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn something_that_is_not_an_http_proxy_is_named_as_such() {
    let (port, _) = replying(b"SSH-2.0-OpenSSH_9.6\r\n").await;
    let error = refused(&with_credentials(port)).await;
    assert_eq!(error.class(), NetErrorClass::Connect);
    assert!(matches!(error, NetError::ProxyProtocol { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("\"SSH-2.0-OpenSSH_9.6\""), "{message}");
    assert!(message.contains("may not be an HTTP proxy"), "{message}");

    // A TLS alert: the address is a TLS endpoint, perhaps the route itself.
    let (port, _) = replying(b"\x15\x03\x03\x00\x02\x02\x46").await;
    let message = refused(&anonymous(port)).await.to_string();
    assert!(message.contains("answered in TLS"), "{message}");

    let (port, _) = replying(b"HTTP/1.1 OK 200\r\n\r\n").await;
    let message = refused(&anonymous(port)).await.to_string();
    assert!(
        message.contains("status line \"HTTP/1.1 OK 200\""),
        "{message}"
    );
}

/// Keeps sending `line` until the client hangs up.
async fn endless(line: &'static [u8]) -> (u16, JoinHandle<Vec<u8>>) {
    fake_proxy(move |mut stream| async move {
        if stream.write_all(b"HTTP/1.1 200 OK\r\n").await.is_err() {
            return;
        }
        while stream.write_all(line).await.is_ok() {}
    })
    .await
}

#[tokio::test]
async fn endless_headers_stop_at_64_lines() {
    let (port, proxy_side) = endless(b"X-Pad: aaaaaaaa\r\n").await;
    let error = refused(&anonymous(port)).await;
    assert!(matches!(error, NetError::ProxyProtocol { .. }), "{error:?}");
    assert!(
        error.to_string().contains("more than 64 header lines"),
        "{error}"
    );
    drop(error);
    // The fake stops once the client has hung up.
    proxy_side.await.unwrap();
}

#[tokio::test]
async fn an_endless_line_stops_at_8_kib() {
    let (port, proxy_side) = endless(b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa").await;
    let error = refused(&anonymous(port)).await;
    assert!(matches!(error, NetError::ProxyProtocol { .. }), "{error:?}");
    assert!(error.to_string().contains("within 8192 bytes"), "{error}");
    proxy_side.await.unwrap();
}

#[tokio::test]
async fn a_hang_up_before_or_during_the_answer_is_a_protocol_error() {
    let (port, _) = fake_proxy(|_stream| async {}).await;
    let error = refused(&with_credentials(port)).await;
    assert_eq!(error.class(), NetErrorClass::Connect);
    assert!(
        error
            .to_string()
            .contains("the proxy closed the connection before answering CONNECT"),
        "{error}"
    );

    let (port, _) = fake_proxy(|mut stream| async move {
        stream
            .write_all(b"HTTP/1.1 200 Connection established\r\nVia: sq")
            .await
            .unwrap();
    })
    .await;
    let error = refused(&anonymous(port)).await;
    assert!(matches!(error, NetError::ProxyProtocol { .. }), "{error:?}");
    assert!(error.to_string().contains("after 44 bytes"), "{error}");
}

#[tokio::test]
async fn a_reset_during_the_answer_is_an_io_error_naming_the_proxy() {
    let (port, _) = fake_proxy(|stream| async move {
        // SO_LINGER 0: closing sends RST instead of FIN.
        socket2::SockRef::from(&stream)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
    })
    .await;
    let error = refused(&with_credentials(port)).await;
    assert_eq!(error.class(), NetErrorClass::Connect);
    // A reset can race with the kernel's view of the close; both are reported on the proxy.
    assert!(
        matches!(
            error,
            NetError::ProxyIo { .. } | NetError::ProxyProtocol { .. }
        ),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains(&format!("proxy http://alice:***@127.0.0.1:{port}")),
        "{error}"
    );
}

#[tokio::test]
async fn an_unreachable_proxy_is_named_as_the_proxy() {
    let port = {
        let listener = ferry_net::listen("127.0.0.1:0".parse().unwrap()).unwrap();
        listener.local_addr().unwrap().port()
    };
    let error = connect_proxy(&with_credentials(port), PATIENCE)
        .await
        .unwrap_err();
    assert_redacted(&error);
    assert_eq!(error.class(), NetErrorClass::Connect);
    assert!(
        matches!(error, NetError::ProxyUnreachable { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.starts_with(&format!(
            "cannot reach proxy http://alice:***@127.0.0.1:{port}: "
        )),
        "{message}"
    );
    assert!(
        message.contains("nothing listens on that port"),
        "{message}"
    );
    assert!(
        message.ends_with("check --proxy / HTTPS_PROXY"),
        "{message}"
    );
    assert!(!message.contains("ferry server"), "{message}");
}

#[tokio::test]
async fn an_unresolvable_proxy_is_named_as_the_proxy() {
    let proxy =
        ProxyUrl::parse(&format!("http://{USER}:s3cr%40t-Pa55@proxy.invalid:3128")).unwrap();
    let error = connect_proxy(&proxy, PATIENCE).await.unwrap_err();
    assert_redacted(&error);
    assert_eq!(error.class(), NetErrorClass::Connect);
    let message = error.to_string();
    assert!(
        message.contains("cannot resolve proxy.invalid"),
        "{message}"
    );
}

#[test]
fn configuration_errors_keep_the_password_out() {
    for bad in [
        "https://alice:s3cr%40t-Pa55@proxy:443",
        "socks5://alice:s3cr@t-Pa55@proxy:1080",
        "http://alice:s3cr%40t-Pa55",
        "http://alice:s3cr@t-Pa55@proxy:3128/path",
        "http://alice:s3cr@t-Pa55@proxy:99999",
    ] {
        let error = ProxyUrl::parse(bad).unwrap_err();
        assert_eq!(error.class(), NetErrorClass::Config, "{bad}");
        assert_redacted(&error);
    }
    let error = ferry_net::choose_proxy(None, None, ROUTE, 443, |name| {
        (name == "HTTPS_PROXY").then(|| "socks5://alice:s3cr@t-Pa55@proxy:1080".to_owned())
    })
    .unwrap_err();
    assert_redacted(&error);
}
