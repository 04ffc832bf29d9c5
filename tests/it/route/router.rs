//! An OpenShift-style passthrough router: HAProxy in TCP mode picks the backend by the TLS
//! SNI of the ClientHello and forwards the raw stream; it never terminates TLS. An SNI that
//! matches no route has no default backend, so the router closes the connection.
//!
//! The router logs each connection as it ends (to its output), with the route it took
//! and the bytes it carried each way: [`Router::connections`].

use std::fmt::Write as _;
use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::daemon::Daemon;

/// What starts each connection's log line.
const CONN_LOG: &str = "ferry-route-conn";

/// One connection the router carried, from its log line once the connection ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoutedConn {
    /// The SNI route it took: its index in the order routes were added.
    pub route: Option<usize>,
    /// Bytes from the client to the backend, and back.
    pub up: u64,
    pub down: u64,
}

pub struct Router {
    _dir: TempDir,
    daemon: Daemon,
}

pub struct RouterBuilder {
    routes: Vec<(String, String)>,
    idle_timeout: String,
}

impl RouterBuilder {
    /// Connections whose SNI is `sni` (case-insensitive) go to `backend` (`127.0.0.1:PORT`).
    pub fn route(mut self, sni: &str, backend: &str) -> Self {
        self.routes.push((sni.to_string(), backend.to_string()));
        self
    }

    /// HAProxy's `timeout client`, `timeout server` and `timeout tunnel` (e.g. `2s`): how long
    /// a connection may stay idle before the router cuts it. Default 30s.
    pub fn idle_timeout(mut self, timeout: &str) -> Self {
        self.idle_timeout = timeout.to_string();
        self
    }

    pub fn start(self) -> Router {
        let dir = TempDir::new().expect("tempdir");
        let root = dir.path().to_path_buf();
        let daemon = Daemon::start("haproxy", &root, |port| {
            let conf = root.join("haproxy.cfg");
            fs::write(&conf, self.config(port)).expect("write haproxy.cfg");
            let mut cmd = Command::new("haproxy");
            cmd.arg("-db").arg("-f").arg(&conf);
            cmd
        });
        Router { _dir: dir, daemon }
    }

    fn config(&self, port: u16) -> String {
        let t = &self.idle_timeout;
        let mut cfg = format!(
            "global\n\
             \x20   maxconn 200\n\
             \x20   log stdout format raw local0\n\
             defaults\n\
             \x20   mode tcp\n\
             \x20   log global\n\
             \x20   log-format \"{CONN_LOG} backend=%b up=%U down=%B\"\n\
             \x20   timeout connect 5s\n\
             \x20   timeout client {t}\n\
             \x20   timeout server {t}\n\
             \x20   timeout tunnel {t}\n\
             frontend routes\n\
             \x20   bind 127.0.0.1:{port}\n\
             \x20   tcp-request inspect-delay 5s\n\
             \x20   tcp-request content accept if {{ req.ssl_hello_type 1 }}\n"
        );
        for (i, (sni, _)) in self.routes.iter().enumerate() {
            writeln!(cfg, "    use_backend b{i} if {{ req.ssl_sni -i {sni} }}").unwrap();
        }
        for (i, (_, backend)) in self.routes.iter().enumerate() {
            writeln!(cfg, "backend b{i}\n    server s{i} {backend}").unwrap();
        }
        cfg
    }
}

impl Router {
    pub fn builder() -> RouterBuilder {
        RouterBuilder {
            routes: Vec::new(),
            idle_timeout: "30s".to_string(),
        }
    }

    pub fn port(&self) -> u16 {
        self.daemon.port
    }

    /// `ferry://127.0.0.1:PORT/VOLUME`: the route host is chosen by `--server-name` (SNI).
    pub fn url(&self, volume: &str) -> String {
        format!("ferry://127.0.0.1:{}/{volume}", self.port())
    }

    pub fn output(&self) -> String {
        self.daemon.output()
    }

    /// The connections that took route `route` (its index in the order routes were
    /// added), once there are at least `n`: a connection is logged when it ended, which
    /// may be just after its client exited. Panics after 10 s (hang guard).
    pub fn wait_for_connections(&self, route: usize, n: usize) -> Vec<RoutedConn> {
        let start = Instant::now();
        loop {
            let conns: Vec<RoutedConn> = self
                .connections()
                .into_iter()
                .filter(|c| c.route == Some(route))
                .collect();
            if conns.len() >= n {
                return conns;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the router logged {} connections on route {route}, expected {n}:\n{}",
                conns.len(),
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The connections that ended so far, in the order they ended (a connection that
    /// matched no route has `route: None`).
    pub fn connections(&self) -> Vec<RoutedConn> {
        self.output()
            .lines()
            .filter_map(|l| l.strip_prefix(CONN_LOG))
            .filter_map(|l| {
                let field = |name: &str| {
                    l.split_whitespace()
                        .find_map(|f| f.strip_prefix(name)?.strip_prefix('='))
                };
                Some(RoutedConn {
                    route: field("backend")?
                        .strip_prefix('b')
                        .and_then(|i| i.parse().ok()),
                    up: field("up")?.parse().ok()?,
                    down: field("down")?.parse().ok()?,
                })
            })
            .collect()
    }
}
