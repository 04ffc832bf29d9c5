//! The migration's network in miniature: a source tree, two targets (`a`, `b`) each serving
//! a volume `vol`, a passthrough router that picks between them by SNI, and a CONNECT proxy
//! with basic auth in front of it.
//!
//! ```text
//! ferry push ─▶ tinyproxy (CONNECT 127.0.0.1:ROUTER) ─▶ HAProxy ─┬─ SNI route-a.example ─▶ serve a
//!                                                                └─ SNI route-b.example ─▶ serve b
//! ```
//!
//! One `ferry certs` run covers both targets and `route-x.example`, a name the certificate
//! is valid for but the router has no route for.

use std::path::PathBuf;

use tempfile::TempDir;

use super::router::Router;
use super::tinyproxy::Tinyproxy;
use crate::util::{push, Certs, Push, Server};

pub const ROUTE_A: &str = "route-a.example";
pub const ROUTE_B: &str = "route-b.example";
/// In the server certificate, but no route on the router.
pub const ROUTE_X: &str = "route-x.example";

pub struct Topology {
    /// Holds `src` and the volumes.
    _tmp: TempDir,
    pub src: PathBuf,
    pub vol_a: PathBuf,
    pub vol_b: PathBuf,
    pub certs: Certs,
    /// The targets behind the routes, alive as long as the topology.
    _a: Server,
    _b: Server,
    pub router: Router,
    pub proxy: Tinyproxy,
}

pub struct TopologyBuilder {
    serve_heartbeat: Option<u64>,
    idle_timeout: Option<String>,
}

impl TopologyBuilder {
    /// `ferry serve --heartbeat SECS` on both targets.
    pub fn serve_heartbeat(mut self, secs: u64) -> Self {
        self.serve_heartbeat = Some(secs);
        self
    }

    /// The router's idle timeouts (client, server, tunnel), e.g. `2s`.
    pub fn router_idle_timeout(mut self, timeout: &str) -> Self {
        self.idle_timeout = Some(timeout.to_string());
        self
    }

    pub fn start(self) -> Topology {
        let tmp = TempDir::new().expect("tempdir");
        let src = tmp.path().join("src");
        let vol_a = tmp.path().join("vol-a");
        let vol_b = tmp.path().join("vol-b");
        for dir in [&src, &vol_a, &vol_b] {
            std::fs::create_dir(dir).expect("mkdir");
        }
        let certs = Certs::with_names(&[ROUTE_A, ROUTE_B, ROUTE_X]);
        let serve = |vol: &PathBuf| {
            let mut builder = Server::builder(&certs).volume("vol", vol);
            if let Some(secs) = self.serve_heartbeat {
                builder = builder.arg("--heartbeat").arg(secs.to_string());
            }
            builder.start()
        };
        let a = serve(&vol_a);
        let b = serve(&vol_b);
        let mut router = Router::builder()
            .route(ROUTE_A, &a.addr)
            .route(ROUTE_B, &b.addr);
        if let Some(timeout) = &self.idle_timeout {
            router = router.idle_timeout(timeout);
        }
        let router = router.start();
        let proxy = Tinyproxy::start();
        Topology {
            _tmp: tmp,
            src,
            vol_a,
            vol_b,
            certs,
            _a: a,
            _b: b,
            router,
            proxy,
        }
    }
}

impl Topology {
    pub fn builder() -> TopologyBuilder {
        TopologyBuilder {
            serve_heartbeat: None,
            idle_timeout: None,
        }
    }

    pub fn new() -> Topology {
        Topology::builder().start()
    }

    /// The target behind `ROUTE_A`.
    pub fn server_a(&self) -> &Server {
        &self._a
    }

    /// A push of `src` to `vol` on the route `sni`, through the router, without a proxy.
    pub fn push_via_router(&self, sni: &str) -> Push {
        push(&self.certs, &self.src, &self.router.url("vol")).server_name(sni)
    }

    /// A push of `src` to `vol` on the route `sni`, through the proxy (right credentials)
    /// and the router: the way a migration runs.
    pub fn push_via_proxy(&self, sni: &str) -> Push {
        self.push_via_router(sni)
            .arg("--proxy")
            .arg(self.proxy.url())
    }

    /// `ferry pull` of the router's `vol` (route A's volume) into `dest`, through the
    /// proxy and the router.
    pub fn pull_via_proxy(&self, dest: &std::path::Path) -> Push {
        crate::util::pull(&self.certs, &self.router.url("vol"), dest)
            .server_name(ROUTE_A)
            .arg("--proxy")
            .arg(self.proxy.url())
    }
}
