//! A long scan holds the connection idle; a router cuts idle connections. Heartbeats on
//! both sides keep it alive. These tests are about survival, not speed: nothing here
//! measures time. The scan pause (`FERRY_TEST_SCAN_PAUSE_MS`, before each directory
//! listing) is twice the router's idle timeout, and the tree has two directories (root and
//! `sub`), so the source is silent for at least two such stretches.

use crate::files::write;
use crate::snapshot::assert_trees_equal;

use super::topology::{Topology, ROUTE_A};

const ROUTER_IDLE: &str = "2s";
const SCAN_PAUSE_MS: &str = "4000";

fn topology(heartbeat: u64) -> Topology {
    let t = Topology::builder()
        .router_idle_timeout(ROUTER_IDLE)
        .serve_heartbeat(heartbeat)
        .start();
    write(&t.src.join("top.txt"), b"top\n", 0o644);
    write(&t.src.join("sub/inner.txt"), b"inner\n", 0o644);
    t
}

#[test]
fn heartbeats_keep_a_long_scan_alive_through_an_idle_cutting_router() {
    let t = topology(1);
    let out = t
        .push_via_proxy(ROUTE_A)
        .arg("--heartbeat")
        .arg("1")
        .env("FERRY_TEST_SCAN_PAUSE_MS", SCAN_PAUSE_MS)
        .run();
    out.assert_ok();
    assert_trees_equal(&t.src, &t.vol_a);
}

/// CONTROL for the test above: the same route and pause with heartbeats far apart (30 s)
/// must get cut by the router, or the test above proves nothing. Deterministic because the
/// 4 s pause is twice the router's 2 s idle timeout, and the first pause comes before the
/// source has sent any listing.
#[test]
fn control_without_heartbeats_the_router_cuts_the_idle_scan() {
    let t = topology(30);
    let out = t
        .push_via_proxy(ROUTE_A)
        .arg("--heartbeat")
        .arg("30")
        .env("FERRY_TEST_SCAN_PAUSE_MS", SCAN_PAUSE_MS)
        .run();
    assert_eq!(
        out.output.code,
        Some(10),
        "the router should have cut the idle connection (socket error)\n{}\n--- haproxy ---\n{}",
        out.output.dump(),
        t.router.output()
    );
}
