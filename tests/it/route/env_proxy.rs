//! A proxy from the environment (HTTPS_PROXY / https_proxy, then ALL_PROXY / all_proxy):
//! never used for `localhost` or a loopback IP (Go's rule), used for any other host, and
//! switched off by `--proxy ""`.
//!
//! Telling "used" from "skipped" for a non-loopback host needs a name that still reaches
//! only 127.0.0.0/8: the machine's own name when /etc/hosts maps it there (`hostname.rs`);
//! elsewhere those tests say so on stderr and return.

use crate::files::write;
use crate::snapshot::assert_trees_equal;
use crate::util::{push, Fixture};

use super::daemon::closed_port;
use super::hostname::loopback_hostname_or_explain;
use super::topology::{Topology, ROUTE_A};

#[test]
fn environment_proxy_is_never_used_for_loopback_targets() {
    let fx = Fixture::new();
    write(&fx.src.join("f"), b"f\n", 0o644);
    let dead = format!("http://127.0.0.1:{}", closed_port());
    let port = fx.server.addr.rsplit_once(':').unwrap().1.to_string();
    let localhost = format!("ferry://localhost:{port}/vol");
    let cases = [
        ("HTTPS_PROXY", fx.server.url("vol")),
        ("https_proxy", fx.server.url("vol")),
        ("ALL_PROXY", fx.server.url("vol")),
        ("all_proxy", fx.server.url("vol")),
        ("HTTPS_PROXY", localhost.clone()),
    ];
    for (var, url) in cases {
        let out = push(&fx.certs, &fx.src, &url).env(var, &dead).run();
        assert_eq!(
            out.output.code,
            Some(0),
            "{var}={dead} and target {url}: a loopback target must not use the proxy\n{}",
            out.output.dump()
        );
    }
    // Not discriminating on its own (loopback skips the proxy anyway); the host-name test
    // below is the real check of `--proxy ""`.
    let out = fx
        .push()
        .env("HTTPS_PROXY", &dead)
        .arg("--proxy")
        .arg("")
        .run();
    out.assert_ok();
    assert_trees_equal(&fx.src, &fx.dst);
}

#[test]
fn empty_proxy_flag_disables_the_environment_proxy() {
    let Some(host) =
        loopback_hostname_or_explain("empty_proxy_flag_disables_the_environment_proxy")
    else {
        return;
    };
    let fx = Fixture::new();
    write(&fx.src.join("f"), b"f\n", 0o644);
    let dead = format!("http://127.0.0.1:{}", closed_port());
    let port = fx.server.addr.rsplit_once(':').unwrap().1;
    let url = format!("ferry://{host}:{port}/vol");
    let attempt = || {
        push(&fx.certs, &fx.src, &url)
            .server_name("localhost")
            .env("HTTPS_PROXY", &dead)
    };
    let out = attempt().run();
    assert_eq!(
        out.output.code,
        Some(10),
        "control: HTTPS_PROXY={dead} should be used for {host} (not a loopback name) and fail\n{}",
        out.output.dump()
    );
    let out = attempt().arg("--proxy").arg("").run();
    assert_eq!(
        out.output.code,
        Some(0),
        "--proxy \"\" should ignore HTTPS_PROXY={dead}\n{}",
        out.output.dump()
    );
    assert_trees_equal(&fx.src, &fx.dst);
}

#[test]
fn environment_proxy_is_used_for_other_hosts_in_order_of_precedence() {
    let Some(host) = loopback_hostname_or_explain(
        "environment_proxy_is_used_for_other_hosts_in_order_of_precedence",
    ) else {
        return;
    };
    let t = Topology::new();
    write(&t.src.join("f"), b"f\n", 0o644);
    let dead = format!("http://127.0.0.1:{}", closed_port());
    let good = t.proxy.url();
    let url = format!("ferry://{host}:{}/vol", t.router.port());
    let cases: [&[(&str, &str)]; 4] = [
        &[("HTTPS_PROXY", &good), ("ALL_PROXY", &dead)],
        &[("https_proxy", &good), ("all_proxy", &dead)],
        &[("ALL_PROXY", &good)],
        &[("all_proxy", &good)],
    ];
    for (i, envs) in cases.iter().enumerate() {
        let mut p = push(&t.certs, &t.src, &url).server_name(ROUTE_A);
        for (k, v) in envs.iter() {
            p = p.env(k, v);
        }
        let out = p.run();
        assert_eq!(
            out.output.code,
            Some(0),
            "environment {envs:?}: the push should go through the proxy\n{}\n{}",
            out.output.dump(),
            t.proxy.dump()
        );
        let requests = t.proxy.connect_requests();
        assert_eq!(
            requests.len(),
            i + 1,
            "environment {envs:?}: the proxy saw no new CONNECT\n{}",
            t.proxy.dump()
        );
        let want = format!("CONNECT {host}:{} ", t.router.port());
        assert!(
            requests[i].starts_with(&want),
            "environment {envs:?}: CONNECT should ask for the host as given, {want:?}; got {:?}",
            requests[i]
        );
    }
    assert_trees_equal(&t.src, &t.vol_a);
}
