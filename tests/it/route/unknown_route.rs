//! A server name the router has no route for: the router closes the connection after the
//! ClientHello, as the OpenShift router does. That is a socket error (10) that names the
//! route asked for, not a hang and not a certificate complaint.

use std::fs;

use crate::files::write;

use super::topology::{Topology, ROUTE_X};

#[test]
fn sni_without_a_route_is_a_socket_error_naming_the_route() {
    let t = Topology::new();
    write(&t.src.join("f"), b"f\n", 0o644);
    for (how, out) in [
        ("through the proxy", t.push_via_proxy(ROUTE_X).run()),
        ("without a proxy", t.push_via_router(ROUTE_X).run()),
    ] {
        assert_eq!(
            out.output.code,
            Some(10),
            "{how}: unexpected exit code\n{}\n--- haproxy ---\n{}",
            out.output.dump(),
            t.router.output()
        );
        assert!(
            out.stderr().contains(ROUTE_X),
            "{how}: stderr does not name the route {ROUTE_X}:\n{}",
            out.output.dump()
        );
    }
    for vol in [&t.vol_a, &t.vol_b] {
        assert!(
            fs::read_dir(vol).unwrap().next().is_none(),
            "{vol:?} was written to"
        );
    }
}
