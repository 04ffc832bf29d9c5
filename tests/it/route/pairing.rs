//! Pairing works the way a migration's traffic goes: through the CONNECT proxy and the
//! SNI router, with the route host as the server's name.

use crate::files::write;
use crate::pairing::{join_code, Hosts};
use crate::snapshot::assert_trees_equal;
use crate::util::{push_paired, Server};

use super::router::Router;
use super::tinyproxy::Tinyproxy;
use super::topology::ROUTE_A;

#[test]
fn pairing_through_the_proxy_and_router_then_a_push_with_no_certificate_files() {
    let hosts = Hosts::new();
    let server = Server::builder_with_state(&hosts.state)
        .volume("vol", &hosts.dst)
        .arg("--pair")
        .arg("--server-name")
        .arg(ROUTE_A)
        .start();
    let code = join_code(&server);
    let router = Router::builder().route(ROUTE_A, &server.addr).start();
    let proxy = Tinyproxy::start();
    let via_route = || {
        push_paired(&hosts.src, &router.url("vol"), &hosts.client)
            .server_name(ROUTE_A)
            .arg("--proxy")
            .arg(proxy.url())
    };

    via_route().arg("--join").arg(&code).run().assert_ok();
    assert_trees_equal(&hosts.src, &hosts.dst);
    server.wait_for_log("enrolled a new peer");
    write(&hosts.src.join("later.txt"), b"second run\n", 0o644);
    via_route().run().assert_ok();
    assert_trees_equal(&hosts.src, &hosts.dst);

    let target = format!("127.0.0.1:{}", router.port());
    let requests = proxy.connect_requests();
    assert!(
        requests.len() == 3 && requests.iter().all(|r| r.starts_with(&format!("CONNECT {target} "))),
        "expected three CONNECTs to the router {target} (the pairing and the push of the joining run, then the later push), got {requests:?}\n{}",
        proxy.dump()
    );
}
