//! The HTTP CONNECT tunnel: one more function over streams between TCP and TLS.
//!
//! ```text
//!  choose_proxy(--proxy, --no-proxy, route host, env) ─▶ Some(ProxyUrl)
//!  connect_proxy(proxy) ─▶ TcpStream ─▶ connect_tunnel(route:443) ─▶ TcpStream ─▶ tls_connect(sni)
//!                                        CONNECT ▶ / ◀ HTTP/1.x 2xx
//! ```
//!
//! Only plain HTTP to the proxy and basic auth: that is what MTC's `stunnel_tcp_proxy`
//! offers, and the TLS that matters runs inside the tunnel, end to end with the target. The
//! proxy must pass the bytes through untouched; an inspecting proxy shows up as a TLS
//! failure afterwards, not here.
//!
//! Credentials never leave [`ProxyUrl`] except in the `Proxy-Authorization` header: errors
//! and logs hold [`ProxyUrl::redacted`].

mod choose;
mod reply;
mod url;

use std::future::poll_fn;
use std::net::Ipv6Addr;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use crate::error::NetError;
use crate::tcp;
pub use choose::choose_proxy;
use reply::{printable_bytes, Reply, ReplyHead, Violation, MAX_HEAD, MAX_HEADER_LINES};
pub(crate) use url::is_host_byte;
pub use url::ProxyUrl;

/// How much of a non-HTTP answer is quoted in the error.
const MAX_QUOTE: usize = 64;

/// Dials the proxy; failures name the proxy (redacted) rather than a ferry server.
pub async fn connect_proxy(proxy: &ProxyUrl, timeout: Duration) -> Result<TcpStream, NetError> {
    tcp::connect(proxy.host(), proxy.port(), timeout)
        .await
        .map_err(|cause| NetError::ProxyUnreachable {
            proxy: proxy.redacted(),
            cause: Box::new(cause),
        })
}

/// Asks the proxy at the other end of `stream` for a tunnel to `host:port` and hands the
/// stream back once it is open, positioned at the first byte of the tunnel.
///
/// Sends one `CONNECT host:port HTTP/1.1` with `Host` and, given credentials, basic
/// `Proxy-Authorization`. Reads the answer without taking a byte past its blank line; the
/// answer may be at most 8 KiB with 64 header lines. Any 2xx opens the tunnel; 407 (or 401, tinyproxy's answer) is
/// [`NetError::ProxyAuth`]; other statuses [`NetError::ProxyRefused`] with a hint; anything
/// that is not an HTTP answer [`NetError::ProxyProtocol`]. Not bounded in time: the caller
/// wraps it in its connect timeout.
pub async fn connect_tunnel<S>(
    mut stream: S,
    proxy: &ProxyUrl,
    host: &str,
    port: u16,
) -> Result<S, NetError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let target = authority(host, port)?;
    let failed = |detail: String| NetError::ProxyProtocol {
        proxy: proxy.redacted(),
        detail,
    };
    let io = |source| NetError::ProxyIo {
        proxy: proxy.redacted(),
        source,
    };
    tracing::debug!(proxy = %proxy, %target, "opening a CONNECT tunnel");
    stream
        .write_all(request(proxy, &target).as_bytes())
        .await
        .map_err(io)?;
    stream.flush().await.map_err(io)?;

    let mut head = ReplyHead::default();
    let mut chunk = [0; 16];
    let reply = loop {
        let want = head.room().min(chunk.len());
        let n = stream.read(&mut chunk[..want]).await.map_err(io)?;
        if n == 0 {
            return Err(match head.status() {
                // The answer is clear even if the head never ended.
                Some(reply) if !is_success(reply) => refusal(reply, proxy, &target),
                _ if head.len() == 0 => {
                    failed("the proxy closed the connection before answering CONNECT".into())
                }
                _ => failed(format!(
                    "the proxy closed the connection before answering CONNECT completely \
                     (after {} bytes of its answer)",
                    head.len()
                )),
            });
        }
        match head.push(&chunk[..n]) {
            Ok(Some(reply)) => break reply,
            Ok(None) => {}
            Err(Violation::NotHttp { mut start }) => {
                start.extend(ready_bytes(&mut stream).await);
                return Err(failed(not_http(&start)));
            }
            Err(violation) => return Err(failed(violated(&violation))),
        }
    };
    if is_success(&reply) {
        tracing::debug!(proxy = %proxy, %target, status = reply.status, "CONNECT tunnel open");
        Ok(stream)
    } else {
        Err(refusal(&reply, proxy, &target))
    }
}

fn is_success(reply: &Reply) -> bool {
    (200..300).contains(&reply.status)
}

/// `host:port` for the request line, IPv6 in brackets. The host goes into the request
/// verbatim, so it must not be able to add lines to it.
fn authority(host: &str, port: u16) -> Result<String, NetError> {
    let unbracketed = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(ip) = unbracketed.parse::<Ipv6Addr>() {
        return Ok(format!("[{ip}]:{port}"));
    }
    if host.is_empty() || !host.bytes().all(is_host_byte) {
        return Err(NetError::InvalidName {
            name: host.to_owned(),
            reason: "a host to CONNECT to through a proxy may hold only letters, digits, '-', \
                     '.' and '_'"
                .to_owned(),
        });
    }
    Ok(format!("{host}:{port}"))
}

fn request(proxy: &ProxyUrl, target: &str) -> String {
    let mut request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some(auth) = proxy.basic_auth() {
        request.push_str(&format!("Proxy-Authorization: {auth}\r\n"));
    }
    request.push_str("\r\n");
    request
}

fn refusal(reply: &Reply, proxy: &ProxyUrl, target: &str) -> NetError {
    // 407 is the standard answer; tinyproxy answers 401 to a CONNECT with bad or
    // missing credentials, and no proxy means anything else by it.
    if reply.status == 407 || reply.status == 401 {
        return NetError::ProxyAuth {
            proxy: proxy.redacted(),
            had_credentials: proxy.has_credentials(),
            user: proxy.user().to_owned(),
        };
    }
    let hint = match reply.status {
        403 => format!(
            "the proxy's policy forbids CONNECT to {target}: ask its admin to allow that domain \
             and port"
        ),
        502..=504 => format!(
            "the proxy could not reach {target}: check that the route host resolves and is \
             reachable from the proxy"
        ),
        405 | 501 => "the proxy does not offer CONNECT tunnels: use one that does".to_owned(),
        _ => format!("check the proxy's logs for why it refused CONNECT to {target}"),
    };
    NetError::ProxyRefused {
        proxy: proxy.redacted(),
        status: reply.status,
        reason: reply.reason.clone(),
        hint,
    }
}

fn not_http(start: &[u8]) -> String {
    if matches!(start.first(), Some(0x15 | 0x16)) {
        return "it answered in TLS, but Ferry speaks plain HTTP to the proxy: the address must \
                be an http:// proxy (not an https:// one, and not the route itself)"
            .to_owned();
    }
    let line = start
        .split(|&b| b == b'\r' || b == b'\n')
        .next()
        .unwrap_or(start);
    format!(
        "it answered {:?}, which is not HTTP: the address may not be an HTTP proxy",
        printable_bytes(line, MAX_QUOTE)
    )
}

fn violated(violation: &Violation) -> String {
    match violation {
        Violation::BadStatusLine { line } => format!(
            "its status line {:?} is not `HTTP/1.x NNN reason`: the address may not be an HTTP \
             proxy",
            printable_bytes(line, MAX_QUOTE)
        ),
        Violation::TooLong => format!(
            "its answer did not end within {MAX_HEAD} bytes (an answer to CONNECT is a few \
             lines): the address may not be an HTTP proxy"
        ),
        Violation::TooManyHeaders => format!(
            "its answer has more than {MAX_HEADER_LINES} header lines (an answer to CONNECT \
             has a few): the address may not be an HTTP proxy"
        ),
        Violation::NotHttp { start } => not_http(start),
    }
}

/// What the peer has already sent, without waiting: only to quote more of a non-HTTP answer
/// in the error, the stream being dropped afterwards.
async fn ready_bytes<S: AsyncRead + Unpin>(stream: &mut S) -> Vec<u8> {
    let mut buf = [0; MAX_QUOTE];
    let mut read = ReadBuf::new(&mut buf);
    poll_fn(|cx| {
        // Pending only means nothing more is there yet; the waker it registered is harmless.
        let _ = Pin::new(&mut *stream).poll_read(cx, &mut read);
        Poll::Ready(())
    })
    .await;
    read.filled().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::NetErrorClass;

    const ROUTE: &str = "dvm-ns.apps.example.com";

    #[test]
    fn the_target_goes_into_the_request_only_when_it_is_a_plain_host() {
        assert_eq!(authority(ROUTE, 443).unwrap(), format!("{ROUTE}:443"));
        assert_eq!(authority("10.0.0.1", 443).unwrap(), "10.0.0.1:443");
        assert_eq!(authority("fd00::1", 443).unwrap(), "[fd00::1]:443");
        assert_eq!(authority("[fd00::1]", 443).unwrap(), "[fd00::1]:443");
        for bad in ["", "a\r\nX-Injected: 1", "a b", "a/b", "[x]"] {
            let error = authority(bad, 443).unwrap_err();
            assert_eq!(error.class(), NetErrorClass::Config, "{bad:?}");
        }
    }

    #[test]
    fn a_proxy_that_does_not_answer_in_time_is_a_timeout() {
        let cause = NetError::Timeout {
            host: "10.0.0.5".to_owned(),
            port: 3128,
            after: Duration::from_secs(10),
        };
        let error = NetError::ProxyUnreachable {
            proxy: "http://alice:***@10.0.0.5:3128".to_owned(),
            cause: Box::new(cause),
        };
        assert_eq!(error.class(), NetErrorClass::Timeout);
        assert_eq!(
            error.to_string(),
            "cannot reach proxy http://alice:***@10.0.0.5:3128: no connection within 10s; \
             check --proxy / HTTPS_PROXY"
        );
    }
}
