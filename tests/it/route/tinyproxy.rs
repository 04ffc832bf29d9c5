//! A real HTTP CONNECT proxy with basic auth: tinyproxy, as the source cluster's egress proxy.
//!
//! tinyproxy's config grammar accepts only `[-a-z0-9._]` in a `BasicAuth` password, so the
//! password cannot carry `%` or `@`; the URL percent-encodes two of its characters anyway
//! (`.` as `%2E`, `_` as `%5F`), which a correct URL parser must decode. Passwords with `%`
//! and `@` are checked against the fake proxy in `fake_proxy.rs`.
//!
//! tinyproxy 1.11 answers a CONNECT without credentials with 407, but one with wrong
//! credentials with 401: both are "credentials required or rejected".

use std::fs;
use std::process::Command;

use tempfile::TempDir;

use super::daemon::Daemon;

pub const PROXY_USER: &str = "ferry";
pub const PROXY_PASSWORD: &str = "s3cr.t-p_ss";
/// [`PROXY_PASSWORD`] as it appears in a proxy URL.
pub const PROXY_PASSWORD_IN_URL: &str = "s3cr%2Et-p%5Fss";

pub struct Tinyproxy {
    dir: TempDir,
    daemon: Daemon,
}

impl Tinyproxy {
    pub fn start() -> Tinyproxy {
        let dir = TempDir::new().expect("tempdir");
        let root = dir.path().to_path_buf();
        let daemon = Daemon::start("tinyproxy", &root, |port| {
            let conf = root.join("tinyproxy.conf");
            // No ConnectPort lines: CONNECT to any port is allowed.
            let text = format!(
                "Port {port}\n\
                 Listen 127.0.0.1\n\
                 Timeout 600\n\
                 BasicAuth {PROXY_USER} {PROXY_PASSWORD}\n\
                 Allow 127.0.0.1\n\
                 LogLevel Info\n\
                 LogFile \"{log}\"\n\
                 PidFile \"{pid}\"\n\
                 MaxClients 50\n",
                log = root.join("tinyproxy.log").display(),
                pid = root.join("tinyproxy.pid").display(),
            );
            fs::write(&conf, text).expect("write tinyproxy.conf");
            let _ = fs::remove_file(root.join("tinyproxy.log"));
            let mut cmd = Command::new("tinyproxy");
            cmd.arg("-d").arg("-c").arg(&conf);
            cmd
        });
        Tinyproxy { dir, daemon }
    }

    pub fn port(&self) -> u16 {
        self.daemon.port
    }

    /// `127.0.0.1:PORT`, which every message about this proxy should name.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port())
    }

    /// The proxy URL with the right credentials.
    pub fn url(&self) -> String {
        self.url_with(&format!("{PROXY_USER}:{PROXY_PASSWORD_IN_URL}@"))
    }

    /// The proxy URL with `userinfo` (`USER:PASSWORD@`, or empty) as given.
    pub fn url_with(&self, userinfo: &str) -> String {
        format!("http://{userinfo}{}", self.addr())
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("tinyproxy.log")).unwrap_or_default()
    }

    /// The CONNECT requests the proxy received (one log line each), e.g.
    /// `CONNECT 127.0.0.1:4443 HTTP/1.1`. Connections without a request (the readiness
    /// check) do not count.
    pub fn connect_requests(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter_map(|l| l.split_once("): ").filter(|_| l.contains("Request (")))
            .map(|(_, request)| request.trim().to_string())
            .filter(|r| r.starts_with("CONNECT "))
            .collect()
    }

    /// The log and output, for failure messages.
    pub fn dump(&self) -> String {
        format!(
            "--- tinyproxy log ---\n{}\n--- tinyproxy output ---\n{}",
            self.log(),
            self.daemon.output()
        )
    }
}
