//! A third-party daemon (tinyproxy, HAProxy) in the foreground on a free loopback port,
//! ready once its port accepts, killed on drop.
//!
//! Neither daemon can listen on port 0 and report the port, so the fixture picks a free port
//! (bind 127.0.0.1:0, read it, close it) and starts the daemon on it; if another process took
//! the port in between, the daemon exits and the fixture retries with a new port.

use std::fs::File;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How long a daemon may take to accept connections before the test fails (hang guard).
const READY_GUARD: Duration = Duration::from_secs(30);
const ATTEMPTS: usize = 10;

pub struct Daemon {
    child: Child,
    pub port: u16,
    what: &'static str,
    dir: PathBuf,
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

/// A loopback port that refuses connections (nothing listens on it).
pub fn closed_port() -> u16 {
    free_port()
}

impl Daemon {
    /// Starts `what`: `configure(port)` writes its config into `dir` and returns the command
    /// to run. Its stdout and stderr go to `dir/<what>.out`.
    pub fn start(
        what: &'static str,
        dir: &Path,
        mut configure: impl FnMut(u16) -> Command,
    ) -> Daemon {
        let out_path = dir.join(format!("{what}.out"));
        let mut failures = String::new();
        for attempt in 1..=ATTEMPTS {
            let port = free_port();
            let mut cmd = configure(port);
            let out = File::create(&out_path).expect("create daemon output file");
            let child = cmd
                .stdin(Stdio::null())
                .stdout(out.try_clone().expect("dup output file"))
                .stderr(out)
                .spawn()
                .unwrap_or_else(|e| panic!("spawn {what} (is it installed? see .ci/run): {e}"));
            let mut daemon = Daemon {
                child,
                port,
                what,
                dir: dir.to_path_buf(),
            };
            if daemon.wait_ready() {
                return daemon;
            }
            failures.push_str(&format!(
                "--- attempt {attempt}, port {port} ---\n{}\n",
                daemon.output()
            ));
        }
        panic!("{what} did not start in {ATTEMPTS} attempts:\n{failures}");
    }

    /// True once the port accepts and the daemon still runs; false if it exited (e.g. the
    /// port was taken).
    fn wait_ready(&mut self) -> bool {
        let start = Instant::now();
        loop {
            if let Some(_status) = self.child.try_wait().expect("try_wait") {
                return false;
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                // Another process may have taken the port between `free_port` and the
                // daemon's bind (tests run in parallel): then it is that one that accepted,
                // and the daemon exits on its failed bind. Ready only if it is still up.
                thread::sleep(Duration::from_millis(50));
                return self.child.try_wait().expect("try_wait").is_none();
            }
            if start.elapsed() > READY_GUARD {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "{} did not accept on port {} within {READY_GUARD:?}:\n{}",
                    self.what,
                    self.port,
                    self.output()
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// What the daemon printed so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(self.dir.join(format!("{}.out", self.what))).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
