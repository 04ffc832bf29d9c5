//! `ferry probe` walks the hops in order and names the first one that fails; the hops
//! after it are skipped, and the exit code is that hop's.

use std::fs;

use tempfile::TempDir;

use crate::util::{Certs, Fixture};

use super::daemon::closed_port;
use super::probe_run::probe;
use super::tinyproxy::{PROXY_PASSWORD, PROXY_PASSWORD_IN_URL, PROXY_USER};
use super::topology::{Topology, ROUTE_A, ROUTE_X};

#[test]
fn probe_through_proxy_and_router_passes_every_hop() {
    let t = Topology::new();
    let out = probe(&t.certs.client_dir(), &t.router.url("vol"))
        .server_name(ROUTE_A)
        .proxy(&t.proxy.url())
        .run();
    out.assert(0, ["ok", "ok", "ok", "ok", "ok", "ok"]);
    for secret in [PROXY_PASSWORD, PROXY_PASSWORD_IN_URL] {
        assert!(
            !out.all().contains(secret),
            "the probe printed the proxy password:\n{}",
            out.all()
        );
    }
    assert!(
        fs::read_dir(&t.vol_a).unwrap().next().is_none(),
        "probing wrote to the volume"
    );
}

#[test]
fn probe_without_proxy_skips_the_connect_hop() {
    let fx = Fixture::new();
    let out = probe(&fx.certs.client_dir(), &fx.server.url("vol")).run();
    out.assert(0, ["ok", "ok", "skip", "ok", "ok", "ok"]);
}

#[test]
fn probe_with_wrong_proxy_password_fails_at_connect() {
    let t = Topology::new();
    let wrong = "n0t-the-pa55word";
    let out = probe(&t.certs.client_dir(), &t.router.url("vol"))
        .server_name(ROUTE_A)
        .proxy(&t.proxy.url_with(&format!("{PROXY_USER}:{wrong}@")))
        .run();
    out.assert(5, ["ok", "ok", "FAIL", "skip", "skip", "skip"]);
    assert!(
        out.text("connect").to_lowercase().contains("credentials"),
        "the connect line should say the credentials were the problem:\n{}",
        out.all()
    );
    assert!(
        !out.all().contains(wrong),
        "the probe printed the password:\n{}",
        out.all()
    );
}

#[test]
fn probe_with_closed_proxy_port_fails_at_tcp() {
    let fx = Fixture::new();
    let proxy = format!("http://127.0.0.1:{}", closed_port());
    let out = probe(&fx.certs.client_dir(), &fx.server.url("vol"))
        .proxy(&proxy)
        .run();
    out.assert(10, ["ok", "FAIL", "skip", "skip", "skip", "skip"]);
    assert!(
        out.text("tcp").contains("proxy"),
        "the tcp line should say it was the proxy that could not be reached:\n{}",
        out.all()
    );
}

#[test]
fn probe_with_unrouted_server_name_fails_at_tls() {
    let t = Topology::new();
    let out = probe(&t.certs.client_dir(), &t.router.url("vol"))
        .server_name(ROUTE_X)
        .proxy(&t.proxy.url())
        .run();
    out.assert(10, ["ok", "ok", "ok", "FAIL", "skip", "skip"]);
}

/// The client trusts the right CA (the server's certificate verifies) but presents a
/// certificate from another CA. With TLS 1.3 the client's handshake completes before the
/// server has judged its certificate; the refusal arrives on the first read, so it is the
/// `client-cert` hop, not `tls`, that fails.
#[test]
fn probe_with_client_certificate_from_another_ca_fails_at_client_cert() {
    let t = Topology::new();
    let stranger = Certs::with_names(&[ROUTE_A]);
    let mixed = TempDir::new().unwrap();
    fs::copy(
        t.certs.client_dir().join("ca.crt"),
        mixed.path().join("ca.crt"),
    )
    .unwrap();
    for file in ["tls.crt", "tls.key"] {
        fs::copy(stranger.client_dir().join(file), mixed.path().join(file)).unwrap();
    }
    let out = probe(mixed.path(), &t.router.url("vol"))
        .server_name(ROUTE_A)
        .proxy(&t.proxy.url())
        .run();
    out.assert(5, ["ok", "ok", "ok", "ok", "FAIL", "skip"]);
}

#[test]
fn probe_of_unknown_volume_fails_at_volume_naming_it() {
    let t = Topology::new();
    let out = probe(&t.certs.client_dir(), &t.router.url("no-such-volume"))
        .server_name(ROUTE_A)
        .proxy(&t.proxy.url())
        .run();
    out.assert(5, ["ok", "ok", "ok", "ok", "ok", "FAIL"]);
    assert!(
        out.text("volume").contains("no-such-volume"),
        "the volume line should name the volume:\n{}",
        out.all()
    );
}
