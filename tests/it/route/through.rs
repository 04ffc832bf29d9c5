//! A push through the CONNECT proxy and the SNI router lands in the volume of the route its
//! server name picks, and nowhere else.

use crate::fidelity::build_fidelity_tree;
use crate::snapshot::{assert_trees_equal, assert_untouched, Snapshot};

use super::topology::{Topology, ROUTE_A, ROUTE_B};

#[test]
fn push_through_proxy_and_router_reaches_the_route_named_by_sni() {
    let t = Topology::new();
    build_fidelity_tree(&t.src);
    let b_before = Snapshot::take(&t.vol_b);

    // One stream, so one CONNECT: this test is about the path one connection takes.
    // (Under `auto` a tree this small may start joins that land after the session
    // ended; several streams along this path are `streams.rs`'s and `streams_tree.rs`'s.)
    t.push_via_proxy(ROUTE_A)
        .arg("--streams")
        .arg("1")
        .run()
        .assert_ok();
    assert_trees_equal(&t.src, &t.vol_a);
    assert_untouched(&b_before, &Snapshot::take(&t.vol_b));
    let router = format!("127.0.0.1:{}", t.router.port());
    let requests = t.proxy.connect_requests();
    assert!(
        requests.len() == 1 && requests[0].starts_with(&format!("CONNECT {router} ")),
        "expected one CONNECT to the router {router}, got {requests:?}\n{}",
        t.proxy.dump()
    );

    // The default (`auto`): however many streams it opens, all reach route B.
    let a_before = Snapshot::take(&t.vol_a);
    t.push_via_proxy(ROUTE_B).run().assert_ok();
    assert_trees_equal(&t.src, &t.vol_b);
    assert_untouched(&a_before, &Snapshot::take(&t.vol_a));
}

#[test]
fn push_through_router_without_proxy_reaches_the_route() {
    let t = Topology::new();
    build_fidelity_tree(&t.src);
    let a_before = Snapshot::take(&t.vol_a);
    t.push_via_router(ROUTE_B).run().assert_ok();
    assert_trees_equal(&t.src, &t.vol_b);
    assert_untouched(&a_before, &Snapshot::take(&t.vol_a));
    assert!(
        t.proxy.connect_requests().is_empty(),
        "the proxy was used without --proxy:\n{}",
        t.proxy.dump()
    );
}
