//! When the proxy hop fails, the push says so: which proxy (without its password), what it
//! answered, and the right exit code (5 for credentials, 10 for the network). One attempt,
//! not a retry storm against a proxy that will keep refusing.

use std::fs;
use std::path::Path;

use tempfile::TempDir;

use crate::files::write;
use crate::util::{push, Certs, PushOutcome};

use super::daemon::closed_port;
use super::fake_proxy::{base64, FakeProxy};
use super::tinyproxy::{PROXY_PASSWORD, PROXY_PASSWORD_IN_URL, PROXY_USER};
use super::topology::{Topology, ROUTE_A};

const WRONG_PASSWORD: &str = "n0t-the-pa55word";

#[track_caller]
fn assert_no_secret(out: &PushOutcome, secrets: &[&str]) {
    for secret in secrets {
        for (name, text) in [("stdout", out.stdout()), ("stderr", out.stderr())] {
            assert!(
                !text.contains(secret),
                "{name} contains the secret {secret:?}:\n{}",
                out.output.dump()
            );
        }
    }
}

#[track_caller]
fn assert_mentions(out: &PushOutcome, what: &str, needles: &[&str]) {
    let lower = out.stderr().to_lowercase();
    for needle in needles {
        assert!(
            lower.contains(&needle.to_lowercase()),
            "stderr should {what} (missing {needle:?}):\n{}",
            out.output.dump()
        );
    }
}

#[track_caller]
fn assert_empty(dir: &Path) {
    assert!(
        fs::read_dir(dir).unwrap().next().is_none(),
        "the volume {dir:?} was written to"
    );
}

#[test]
fn wrong_proxy_password_is_a_start_failure_naming_the_proxy_without_the_password() {
    let t = Topology::new();
    write(&t.src.join("f"), b"f\n", 0o644);
    let url = t.proxy.url_with(&format!("{PROXY_USER}:{WRONG_PASSWORD}@"));
    let out = t.push_via_router(ROUTE_A).arg("--proxy").arg(&url).run();
    out.assert_code(5);
    assert_mentions(
        &out,
        "name the proxy and say its credentials were rejected",
        &[&t.proxy.addr(), "credentials", "reject"],
    );
    assert_no_secret(
        &out,
        &[WRONG_PASSWORD, PROXY_PASSWORD, PROXY_PASSWORD_IN_URL],
    );
    let requests = t.proxy.connect_requests();
    assert_eq!(
        requests.len(),
        1,
        "expected exactly one CONNECT attempt\n{}",
        t.proxy.dump()
    );
    assert_empty(&t.vol_a);
}

#[test]
fn missing_proxy_credentials_are_a_start_failure_naming_the_proxy() {
    let t = Topology::new();
    write(&t.src.join("f"), b"f\n", 0o644);
    let url = t.proxy.url_with("");
    let out = t.push_via_router(ROUTE_A).arg("--proxy").arg(&url).run();
    out.assert_code(5);
    assert_mentions(
        &out,
        "name the proxy and say it wants credentials",
        &[&t.proxy.addr(), "credentials"],
    );
    assert_eq!(
        t.proxy.connect_requests().len(),
        1,
        "expected exactly one CONNECT attempt\n{}",
        t.proxy.dump()
    );
    assert_empty(&t.vol_a);
}

#[test]
fn percent_encoded_special_characters_in_credentials_are_decoded_and_never_shown() {
    let tmp = TempDir::new().unwrap();
    let src = tmp.path().join("src");
    write(&src.join("f"), b"f\n", 0o644);
    let certs = Certs::new();
    let proxy = FakeProxy::start(
        "HTTP/1.1 407 Proxy Authentication Required\r\n\
         Proxy-Authenticate: Basic realm=\"fake\"\r\n\
         Content-Length: 0\r\nConnection: close\r\n\r\n",
    );
    let target_port = closed_port();
    let decoded = "s3cr%t-p@ss";
    let in_url = "s3cr%25t-p%40ss";
    let url = format!("http://ferry:{in_url}@127.0.0.1:{}", proxy.port);
    let out = push(
        &certs,
        &src,
        &format!("ferry://127.0.0.1:{target_port}/vol"),
    )
    .arg("--proxy")
    .arg(&url)
    .run();
    out.assert_code(5);
    let requests = proxy.requests();
    assert_eq!(
        requests.len(),
        1,
        "requests: {requests:?}\n{}",
        out.output.dump()
    );
    let head = &requests[0];
    assert!(
        head.starts_with(&format!("CONNECT 127.0.0.1:{target_port} HTTP/1.")),
        "request head: {head:?}"
    );
    let expected = format!("basic {}", base64(format!("ferry:{decoded}").as_bytes()));
    let auth = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("proxy-authorization")
            .then(|| value.trim().to_string())
    });
    assert_eq!(
        auth.as_deref().map(str::to_lowercase),
        Some(expected.to_lowercase()),
        "Proxy-Authorization should be Basic base64(\"ferry:{decoded}\"); request head: {head:?}"
    );
    assert_no_secret(
        &out,
        &[
            decoded,
            in_url,
            &base64(format!("ferry:{decoded}").as_bytes()),
        ],
    );
}

#[test]
fn unreachable_proxy_is_a_socket_error_naming_the_proxy_without_the_password() {
    let tmp = TempDir::new().unwrap();
    let src = tmp.path().join("src");
    write(&src.join("f"), b"f\n", 0o644);
    let certs = Certs::new();
    let proxy_port = closed_port();
    let url = format!("http://{PROXY_USER}:{PROXY_PASSWORD_IN_URL}@127.0.0.1:{proxy_port}");
    let out = push(
        &certs,
        &src,
        &format!("ferry://127.0.0.1:{}/vol", closed_port()),
    )
    .arg("--proxy")
    .arg(&url)
    .run();
    out.assert_code(10);
    assert_mentions(
        &out,
        "say the proxy could not be reached, naming it",
        &["proxy", &format!("127.0.0.1:{proxy_port}")],
    );
    assert_no_secret(&out, &[PROXY_PASSWORD, PROXY_PASSWORD_IN_URL]);
}

#[test]
fn proxy_that_cannot_reach_the_target_is_a_socket_error_naming_the_proxy() {
    let t = Topology::new();
    write(&t.src.join("f"), b"f\n", 0o644);
    // tinyproxy answers `500 Unable to connect` when the CONNECT target refuses.
    let nowhere = format!("ferry://127.0.0.1:{}/vol", closed_port());
    let out = push(&t.certs, &t.src, &nowhere)
        .server_name(ROUTE_A)
        .arg("--proxy")
        .arg(t.proxy.url())
        .run();
    out.assert_code(10);
    assert_mentions(
        &out,
        "say the proxy refused the CONNECT, naming it and its answer",
        &["proxy", &t.proxy.addr(), "500"],
    );
    assert_no_secret(&out, &[PROXY_PASSWORD, PROXY_PASSWORD_IN_URL]);
}

#[test]
fn proxy_forbidding_the_connect_is_a_socket_error_naming_the_proxy() {
    let tmp = TempDir::new().unwrap();
    let src = tmp.path().join("src");
    write(&src.join("f"), b"f\n", 0o644);
    let certs = Certs::new();
    let proxy = FakeProxy::start(
        "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    let out = push(
        &certs,
        &src,
        &format!("ferry://127.0.0.1:{}/vol", closed_port()),
    )
    .arg("--proxy")
    .arg(format!("http://127.0.0.1:{}", proxy.port))
    .run();
    out.assert_code(10);
    assert_mentions(
        &out,
        "say the proxy refused the CONNECT, naming it and its answer",
        &["proxy", &format!("127.0.0.1:{}", proxy.port), "403"],
    );
    assert_eq!(proxy.requests().len(), 1, "expected one CONNECT attempt");
}
