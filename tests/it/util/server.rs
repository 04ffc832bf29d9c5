//! A running `ferry serve`: ready when it prints its `listening` line, killed on drop.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};

use super::{ferry, wait_guarded, Certs, Output, HANG_GUARD};

/// A `ferry serve` child on an ephemeral loopback port; killed on drop.
pub struct Server {
    child: Option<Child>,
    /// `127.0.0.1:PORT`, from the `listening` line.
    pub addr: String,
    stdout: Option<JoinHandle<String>>,
    stderr: Option<JoinHandle<String>>,
    /// Everything printed so far, to wait on (see [`Server::wait_for_stdout`]).
    seen_stdout: Arc<Seen>,
    seen_stderr: Arc<Seen>,
}

/// Output of a child as it arrives.
#[derive(Default)]
struct Seen {
    text: Mutex<String>,
    more: Condvar,
}

impl Seen {
    /// Waits (hang-guarded) until the text holds `needle`; returns the line holding it.
    fn wait_for(&self, needle: &str) -> Option<String> {
        let text = self.text.lock().expect("seen lock");
        let (text, _) = self
            .more
            .wait_timeout_while(text, HANG_GUARD, |text| !text.contains(needle))
            .expect("seen lock");
        text.lines()
            .find(|line| line.contains(needle))
            .map(str::to_owned)
    }

    fn push(&self, line: &str) {
        self.text.lock().expect("seen lock").push_str(line);
        self.more.notify_all();
    }
}

pub struct ServerBuilder<'a> {
    /// `None`: no --tls-dir (the server's own CA in --state-dir).
    certs: Option<&'a Certs>,
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
        cmd.arg("serve").args(["--listen", "127.0.0.1:0"]);
        if let Some(certs) = self.certs {
            cmd.arg("--tls-dir").arg(certs.server_dir());
        }
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
        let seen_stderr = Arc::new(Seen::default());
        let seen_stdout = Arc::new(Seen::default());
        let stderr = lines(
            child.stderr.take().expect("stderr"),
            seen_stderr.clone(),
            None,
        );
        let (tx, rx) = mpsc::channel();
        let stdout = lines(
            child.stdout.take().expect("stdout"),
            seen_stdout.clone(),
            Some(tx),
        );
        let mut server = Server {
            child: Some(child),
            addr: String::new(),
            stdout: Some(stdout),
            stderr: Some(stderr),
            seen_stdout,
            seen_stderr,
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
    /// A server without --tls-dir: its own CA in `state` (--state-dir), with names
    /// `127.0.0.1` unless more `--server-name`s are given.
    pub fn builder_with_state(state: &Path) -> ServerBuilder<'static> {
        ServerBuilder {
            certs: None,
            volumes: Vec::new(),
            once: false,
            args: vec!["--state-dir".into(), state.as_os_str().to_os_string()],
            under: Vec::new(),
        }
    }

    /// Waits (hang-guarded) for a line of stdout holding `needle`, and returns it.
    #[track_caller]
    pub fn wait_for_stdout(&self, needle: &str) -> String {
        self.seen_stdout
            .wait_for(needle)
            .unwrap_or_else(|| panic!("ferry serve printed no {needle:?} on stdout"))
    }

    /// Waits (hang-guarded) for a line of stderr (the log) holding `needle`.
    #[track_caller]
    pub fn wait_for_log(&self, needle: &str) -> String {
        self.seen_stderr
            .wait_for(needle)
            .unwrap_or_else(|| panic!("ferry serve logged no {needle:?}"))
    }

    /// The log so far.
    pub fn log(&self) -> String {
        self.seen_stderr.text.lock().expect("seen lock").clone()
    }

    pub fn builder(certs: &Certs) -> ServerBuilder<'_> {
        ServerBuilder {
            certs: Some(certs),
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

/// Reads `stream` line by line into `seen`, sending the first line to `first`; returns
/// everything read.
fn lines<R: Read + Send + 'static>(
    stream: R,
    seen: Arc<Seen>,
    first: Option<mpsc::Sender<String>>,
) -> JoinHandle<String> {
    thread::spawn(move || {
        let mut r = BufReader::new(stream);
        let mut all = String::new();
        let mut first = first;
        loop {
            let mut line = String::new();
            match r.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            if let Some(tx) = first.take() {
                let _ = tx.send(line.clone());
            }
            seen.push(&line);
            all.push_str(&line);
        }
        if let Some(tx) = first.take() {
            let _ = tx.send(String::new());
        }
        all
    })
}
