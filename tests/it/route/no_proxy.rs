//! `--no-proxy` / `NO_PROXY` take a target off the proxy (Go `httpproxy` rules), and an
//! explicit `--proxy` is used for every other host, loopback included. The proxy here is a
//! closed port, so a push that succeeds went direct and one that fails with 10 used it.

use crate::files::write;
use crate::snapshot::assert_trees_equal;
use crate::util::{Fixture, Push, PushOutcome};

use super::daemon::closed_port;
use super::hostname::loopback_hostname_or_explain;

fn fixture() -> (Fixture, String) {
    let fx = Fixture::new();
    write(&fx.src.join("f"), b"f\n", 0o644);
    write(&fx.src.join("sub/g"), b"g\n", 0o600);
    let dead_proxy = format!("http://127.0.0.1:{}", closed_port());
    (fx, dead_proxy)
}

fn target_port(fx: &Fixture) -> &str {
    fx.server.addr.rsplit_once(':').unwrap().1
}

#[track_caller]
fn assert_went_direct(fx: &Fixture, out: &PushOutcome, why: &str) {
    assert_eq!(
        out.output.code,
        Some(0),
        "{why}: the push should bypass the (dead) proxy\n{}",
        out.output.dump()
    );
    assert_trees_equal(&fx.src, &fx.dst);
}

#[track_caller]
fn assert_used_proxy(out: &PushOutcome, why: &str) {
    assert_eq!(
        out.output.code,
        Some(10),
        "{why}: the push should use the (dead) proxy and fail\n{}",
        out.output.dump()
    );
    assert!(
        out.stderr().to_lowercase().contains("proxy"),
        "{why}: stderr does not say the proxy failed\n{}",
        out.output.dump()
    );
}

fn with_proxy(fx: &Fixture, proxy: &str) -> Push {
    fx.push().arg("--proxy").arg(proxy)
}

#[test]
fn explicit_proxy_is_used_for_loopback_unless_no_proxy_matches() {
    let (fx, proxy) = fixture();
    let out = with_proxy(&fx, &proxy).run();
    assert_used_proxy(&out, "--proxy and no --no-proxy");
    let out = with_proxy(&fx, &proxy)
        .arg("--no-proxy")
        .arg("10.0.0.0/8,.example.com,127.0.0.2")
        .run();
    assert_used_proxy(&out, "--no-proxy that does not match 127.0.0.1");
}

#[test]
fn no_proxy_ip_bypasses_explicit_proxy() {
    let (fx, proxy) = fixture();
    let out = with_proxy(&fx, &proxy)
        .arg("--no-proxy")
        .arg("127.0.0.1")
        .run();
    assert_went_direct(&fx, &out, "--no-proxy 127.0.0.1");
}

#[test]
fn no_proxy_star_bypasses_explicit_proxy() {
    let (fx, proxy) = fixture();
    let out = with_proxy(&fx, &proxy).arg("--no-proxy").arg("*").run();
    assert_went_direct(&fx, &out, "--no-proxy '*'");
}

#[test]
fn no_proxy_cidr_from_the_environment_bypasses_explicit_proxy() {
    let (fx, proxy) = fixture();
    let out = with_proxy(&fx, &proxy)
        .env("NO_PROXY", "10.0.0.0/8,127.0.0.0/8")
        .run();
    assert_went_direct(&fx, &out, "NO_PROXY=10.0.0.0/8,127.0.0.0/8");
    let (fx, proxy) = fixture();
    let out = with_proxy(&fx, &proxy).env("no_proxy", "127.0.0.0/8").run();
    assert_went_direct(&fx, &out, "no_proxy=127.0.0.0/8");
}

#[test]
fn no_proxy_host_and_port_matches_only_that_port() {
    let (fx, proxy) = fixture();
    let other = format!("127.0.0.1:{}", closed_port());
    let out = with_proxy(&fx, &proxy).arg("--no-proxy").arg(&other).run();
    assert_used_proxy(&out, &format!("--no-proxy {other} (another port)"));
    let this = format!("127.0.0.1:{}", target_port(&fx));
    let out = with_proxy(&fx, &proxy).arg("--no-proxy").arg(&this).run();
    assert_went_direct(&fx, &out, &format!("--no-proxy {this}"));
}

/// `y.com` matches itself; `.y.com` matches only subdomains. Needs a host name that
/// resolves to loopback (see `hostname.rs`).
#[test]
fn no_proxy_domain_rules_for_a_host_name() {
    let Some(host) = loopback_hostname_or_explain("no_proxy_domain_rules_for_a_host_name") else {
        return;
    };
    let (fx, proxy) = fixture();
    let url = format!("ferry://{host}:{}/vol", target_port(&fx));
    let push = || {
        crate::util::push(&fx.certs, &fx.src, &url)
            .server_name("localhost")
            .arg("--proxy")
            .arg(&proxy)
    };
    let out = push().arg("--no-proxy").arg(format!(".{host}")).run();
    assert_used_proxy(
        &out,
        &format!("--no-proxy .{host} does not match {host} itself"),
    );
    let out = push().arg("--no-proxy").arg(format!("sub.{host}")).run();
    assert_used_proxy(
        &out,
        &format!("--no-proxy sub.{host} does not match {host}"),
    );
    let out = push().arg("--no-proxy").arg(&host).run();
    assert_went_direct(&fx, &out, &format!("--no-proxy {host}"));
    let out = push()
        .arg("--no-proxy")
        .arg(format!(" example.com , {} ", host.to_uppercase()))
        .run();
    assert_went_direct(&fx, &out, "a list with spaces and another case");
}
