//! A running `ferry serve`: ready when it prints its `listening` line, killed on drop.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Stdio};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};

use super::{drain, ferry, wait_guarded, Certs, Output, HANG_GUARD};

/// A `ferry serve` child on an ephemeral loopback port; killed on drop.
pub struct Server {
    child: Option<Child>,
    /// `127.0.0.1:PORT`, from the `listening` line.
    pub addr: String,
    stdout: Option<JoinHandle<String>>,
    stderr: Option<JoinHandle<String>>,
}

pub struct ServerBuilder<'a> {
    certs: &'a Certs,
    /// (name, path, read-only)
    volumes: Vec<(String, PathBuf, bool)>,
    once: bool,
    args: Vec<OsString>,
    /// A program that starts ferry, with its arguments (e.g. `setpriv --bounding-set ...`).
    under: Vec<OsString>,
}

impl<'a> ServerBuilder<'a> {
    /// Starts ferry through `program args... -- ferry serve ...` (setpriv, to start it
    /// with chosen credentials).
    pub fn under(mut self, program: &str, args: &[&str]) -> Self {
        self.under = std::iter::once(program)
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect();
        self
    }

    pub fn volume(mut self, name: &str, path: &Path) -> Self {
        self.volumes
            .push((name.to_string(), path.to_path_buf(), false));
        self
    }

    /// `--volume NAME=PATH:ro`: pulls only.
    pub fn read_only_volume(mut self, name: &str, path: &Path) -> Self {
        self.volumes
            .push((name.to_string(), path.to_path_buf(), true));
        self
    }

    /// Any other flag, e.g. `--heartbeat 1`.
    pub fn arg(mut self, arg: impl AsRef<std::ffi::OsStr>) -> Self {
        self.args.push(arg.as_ref().to_os_string());
        self
    }

    /// `--once`: exit after the first session with its exit code (see [`Server::finish`]).
    pub fn once(mut self) -> Self {
        self.once = true;
        self
    }

    pub fn start(self) -> Server {
        let mut cmd = match self.under.split_first() {
            Some((program, args)) => {
                let mut cmd = std::process::Command::new(program);
                cmd.args(args).arg("--").arg(env!("CARGO_BIN_EXE_ferry"));
                cmd
            }
            None => ferry(),
        };
        cmd.arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .arg("--tls-dir")
            .arg(self.certs.server_dir());
        for (name, path, read_only) in &self.volumes {
            let mut spec = OsString::from(format!("{name}="));
            spec.push(path);
            if *read_only {
                spec.push(":ro");
            }
            cmd.arg("--volume").arg(spec);
        }
        if self.once {
            cmd.arg("--once");
        }
        cmd.args(&self.args);
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ferry serve");
        let stderr = drain(child.stderr.take().expect("stderr"));
        let (tx, rx) = mpsc::channel();
        let stdout = first_line_then_drain(child.stdout.take().expect("stdout"), tx);
        let mut server = Server {
            child: Some(child),
            addr: String::new(),
            stdout: Some(stdout),
            stderr: Some(stderr),
        };
        let line = match rx.recv_timeout(HANG_GUARD) {
            Ok(line) => line,
            Err(_) => {
                let out = server.kill_and_collect();
                panic!(
                    "ferry serve printed no `listening` line within {HANG_GUARD:?}:\n{}",
                    out.dump()
                );
            }
        };
        let addr = line
            .trim_end()
            .strip_prefix("listening ")
            .map(str::to_string);
        match addr {
            Some(addr) if addr.starts_with("127.0.0.1:") && !addr.ends_with(":0") => {
                server.addr = addr
            }
            _ => {
                let out = server.kill_and_collect();
                panic!(
                    "ferry serve's first stdout line is {line:?}, expected `listening 127.0.0.1:PORT`:\n{}",
                    out.dump()
                );
            }
        }
        server
    }
}

impl Server {
    pub fn builder(certs: &Certs) -> ServerBuilder<'_> {
        ServerBuilder {
            certs,
            volumes: Vec::new(),
            once: false,
            args: Vec::new(),
            under: Vec::new(),
        }
    }

    /// The server's process id (for /proc inspection).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server running").id()
    }

    /// `ferry://127.0.0.1:PORT/VOLUME`
    pub fn url(&self, volume: &str) -> String {
        format!("ferry://{}/{volume}", self.addr)
    }

    /// Waits for a `--once` server to exit (hang-guarded) and returns what it did.
    pub fn finish(mut self) -> Output {
        let mut child = self.child.take().expect("server already finished");
        let (status, hung) = wait_guarded(&mut child);
        let out = Output::collect(status, self.stdout.take(), self.stderr.take());
        assert!(
            !hung,
            "ferry serve --once did not exit within {HANG_GUARD:?}:\n{}",
            out.dump()
        );
        out
    }

    fn kill_and_collect(&mut self) -> Output {
        let mut child = self.child.take().expect("child");
        let _ = child.kill();
        let status = child.wait().expect("wait ferry serve");
        Output::collect(status, self.stdout.take(), self.stderr.take())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn first_line_then_drain(stdout: ChildStdout, tx: mpsc::Sender<String>) -> JoinHandle<String> {
    thread::spawn(move || {
        let mut r = BufReader::new(stdout);
        let mut line = String::new();
        let _ = r.read_line(&mut line);
        let _ = tx.send(line.clone());
        let mut rest = String::new();
        let _ = r.read_to_string(&mut rest);
        line + &rest
    })
}
