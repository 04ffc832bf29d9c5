//! An OpenShift-style passthrough router: HAProxy in TCP mode picks the backend by the TLS
//! SNI of the ClientHello and forwards the raw stream; it never terminates TLS. An SNI that
//! matches no route has no default backend, so the router closes the connection.

use std::fmt::Write as _;
use std::fs;
use std::process::Command;

use tempfile::TempDir;

use super::daemon::Daemon;

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
             defaults\n\
             \x20   mode tcp\n\
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
}
