//! Checks on `ferry_net`'s parsers of untrusted or hand-typed text, shared by the fuzz
//! targets `proxy_reply` and `proxy_config` and by `crates/net/tests/fuzz_corpus.rs` (which
//! includes this file with `#[path]`, so it may use only `ferry_net`, `tokio` with
//! `test-util`, and std).
//!
//! The CONNECT reply parser is private to ferry-net, so `proxy_reply` drives the public
//! `connect_tunnel` over an in-memory duplex stream whose other end plays the proxy: it
//! holds the fuzz bytes as the proxy's answer, then end of stream.
//!
//! Every check panics on a violation; a panic is what libFuzzer reports as a crash.

use std::time::Duration;

use ferry_net::{connect_tunnel, NetErrorClass, NoProxy, ProxyUrl};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The route host the tunnel is asked for.
pub const ROUTE: &str = "dvm-ns.apps.example.com";
const PASSWORD: &str = "s3cr3t-PW";
/// base64("alice:s3cr3t-PW"), what the request carries.
const TOKEN: &str = "YWxpY2U6czNjcjN0LVBX";
/// Answers longer than this are cut (the parser gives up at 8 KiB anyway).
const MAX_REPLY: usize = 32 * 1024;
/// With the clock paused, tokio jumps straight here if `connect_tunnel` waits for nothing.
const HANG: Duration = Duration::from_secs(3600);

/// `data` is everything the proxy sends back to CONNECT before it closes its side.
///
/// * `connect_tunnel` never panics and never hangs on a closed stream.
/// * It sends one well-formed CONNECT request with the credentials.
/// * On success the stream is positioned right after the head: the bytes still to be read
///   are exactly those after the first blank line, and the head started with a 2xx status
///   line within 8 KiB.
/// * On error, the message does not reveal the password.
pub fn proxy_reply(data: &[u8]) {
    let data = &data[..data.len().min(MAX_REPLY)];
    let proxy = ProxyUrl::parse(&format!("http://alice:{PASSWORD}@127.0.0.1:3128"))
        .expect("the test proxy URL parses");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime");
    runtime.block_on(async {
        let (client, mut server) = tokio::io::duplex(2 * MAX_REPLY);
        server
            .write_all(data)
            .await
            .expect("fits the duplex buffer");
        server
            .shutdown()
            .await
            .expect("shutdown of the proxy's side");

        let result = tokio::time::timeout(HANG, connect_tunnel(client, &proxy, ROUTE, 443))
            .await
            .unwrap_or_else(|_| panic!("connect_tunnel hung on a closed stream"));

        let mut request = Vec::new();
        match result {
            Ok(mut stream) => {
                let mut rest = Vec::new();
                stream
                    .read_to_end(&mut rest)
                    .await
                    .expect("read the tunnel");
                let consumed = data.len() - rest.len();
                assert_eq!(&data[consumed..], &rest[..], "the tunnel bytes changed");
                assert_eq!(
                    Some(consumed),
                    head_end(data),
                    "the tunnel does not start right after the head"
                );
                assert!(consumed <= 8 * 1024, "accepted a head of {consumed} bytes");
                let status = data.get(9..12).expect("a status code");
                assert!(
                    data.starts_with(b"HTTP/1.") && status[0] == b'2',
                    "accepted a non-2xx answer {:?}",
                    String::from_utf8_lossy(&data[..consumed.min(64)])
                );
                drop(stream);
            }
            Err(error) => {
                let shown = format!("{error} {error:?}");
                assert!(
                    !shown.contains(PASSWORD) && !shown.contains(TOKEN),
                    "an error shows the credentials: {shown}"
                );
                let _ = error.class();
            }
        }
        server
            .read_to_end(&mut request)
            .await
            .expect("read the request");
        let expected = format!(
            "CONNECT {ROUTE}:443 HTTP/1.1\r\nHost: {ROUTE}:443\r\n\
             Proxy-Authorization: Basic {TOKEN}\r\n\r\n"
        );
        assert_eq!(String::from_utf8_lossy(&request), expected);
    });
}

/// Where the head of an HTTP/1 answer ends: after the first empty line (`\n` or `\r\n`)
/// that follows the status line. `None` if there is none.
pub fn head_end(data: &[u8]) -> Option<usize> {
    let mut start = data.iter().position(|&b| b == b'\n')? + 1;
    loop {
        let len = data[start..].iter().position(|&b| b == b'\n')?;
        let line = &data[start..start + len];
        start += len + 1;
        if line.is_empty() || line == b"\r" {
            return Some(start);
        }
    }
}

/// `data` as text (invalid UTF-8 is skipped): the first line is a proxy URL and a
/// `NO_PROXY` list, the second a host, the third a port.
///
/// * `ProxyUrl::parse` never panics; a refusal is a configuration error. What it accepts
///   renders as `http://[user[:***]@]host:port`, and that rendering parses back to the same
///   host, port and whether there were credentials.
/// * `NoProxy::parse` and `matches` never panic; a list matches a host exactly when one of
///   its comma-separated entries does; case never matters; `*` matches everything.
pub fn proxy_config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.splitn(3, '\n');
    let list = lines.next().unwrap_or("");
    let host = lines.next().unwrap_or("");
    let port = lines
        .next()
        .map(|p| p.trim().parse::<u16>().unwrap_or(p.len() as u16))
        .unwrap_or(443);

    for candidate in [list, host] {
        check_proxy_url(candidate);
    }

    let parsed = NoProxy::parse(list);
    let matched = parsed.matches(host, port);
    let by_entry = list
        .split(',')
        .any(|entry| NoProxy::parse(entry).matches(host, port));
    assert_eq!(
        matched, by_entry,
        "{list:?} vs {host:?}:{port}: the list disagrees with its entries"
    );
    assert_eq!(
        parsed.matches(&host.to_ascii_uppercase(), port),
        matched,
        "{list:?} vs {host:?}: case of the host matters"
    );
    assert_eq!(
        NoProxy::parse(&list.to_ascii_uppercase()).matches(host, port),
        matched,
        "{list:?} vs {host:?}: case of the list matters"
    );
    assert!(NoProxy::parse(&format!("{list},*")).matches(host, port));
}

fn check_proxy_url(s: &str) {
    match ProxyUrl::parse(s) {
        Ok(url) => {
            let shown = url.redacted();
            assert_eq!(url.to_string(), shown);
            assert!(format!("{url:?}").contains(&shown));
            assert!(shown.starts_with("http://"), "{shown}");
            let again = ProxyUrl::parse(&shown).unwrap_or_else(|e| {
                panic!("{s:?} renders as {shown:?}, which does not parse: {e}")
            });
            assert_eq!(again.host(), url.host(), "{s:?} -> {shown:?}");
            assert_eq!(again.port(), url.port(), "{s:?} -> {shown:?}");
            assert_eq!(
                again.has_credentials(),
                url.has_credentials(),
                "{s:?} -> {shown:?}"
            );
            assert_eq!(again.redacted(), shown, "{s:?} -> {shown:?}");
        }
        Err(error) => {
            let _ = format!("{error} {error:?}");
            assert_eq!(error.class(), NetErrorClass::Config, "{s:?}: {error}");
        }
    }
}
