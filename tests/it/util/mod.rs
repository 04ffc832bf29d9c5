//! The process harness: certificates, a running `ferry serve`, and `ferry push` runs.
//!
//! Nothing here waits on a clock to decide an outcome: the server is ready when it prints its
//! `listening` line, a push is done when it exits. The timeouts are hang guards only: they
//! kill a stuck child and fail the test with everything it printed.

mod push;
mod server;
mod tmpfs;

pub use push::{clear_proxy_env, pull, push, push_paired, Push, PushOutcome};
pub use server::Server;
pub use tmpfs::Tmpfs;

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use tempfile::TempDir;

/// How long any child may run before the harness kills it and fails the test.
const HANG_GUARD: Duration = Duration::from_secs(120);

pub fn ferry() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ferry"))
}

/// A fresh CA with a server and a client certificate, from `ferry certs`.
pub struct Certs {
    dir: TempDir,
}

impl Certs {
    /// Server names `localhost` and `127.0.0.1`.
    pub fn new() -> Certs {
        let dir = TempDir::new().expect("tempdir");
        let out = run_guarded(
            ferry().arg("certs").arg("--out").arg(dir.path()).args([
                "--server-name",
                "localhost",
                "--server-name",
                "127.0.0.1",
            ]),
            "ferry certs",
        );
        assert_eq!(out.code, Some(0), "ferry certs failed:\n{}", out.dump());
        for side in ["server", "client"] {
            for file in ["tls.crt", "tls.key", "ca.crt"] {
                let p = dir.path().join(side).join(file);
                assert!(p.is_file(), "ferry certs did not write {p:?}");
            }
        }
        Certs { dir }
    }

    /// A fresh CA whose server certificate is valid for exactly `names`.
    pub fn with_names(names: &[&str]) -> Certs {
        let dir = TempDir::new().expect("tempdir");
        let mut cmd = ferry();
        cmd.arg("certs").arg("--out").arg(dir.path());
        for name in names {
            cmd.arg("--server-name").arg(name);
        }
        let out = run_guarded(&mut cmd, "ferry certs");
        assert_eq!(out.code, Some(0), "ferry certs failed:\n{}", out.dump());
        Certs { dir }
    }

    pub fn server_dir(&self) -> PathBuf {
        self.dir.path().join("server")
    }

    pub fn client_dir(&self) -> PathBuf {
        self.dir.path().join("client")
    }
}

/// What a finished child did.
#[derive(Debug)]
pub struct Output {
    /// `None` if it was killed by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    fn collect(
        status: ExitStatus,
        stdout: Option<JoinHandle<String>>,
        stderr: Option<JoinHandle<String>>,
    ) -> Output {
        let join = |h: Option<JoinHandle<String>>| {
            h.map(|h| h.join().unwrap_or_default()).unwrap_or_default()
        };
        Output {
            code: status.code(),
            stdout: join(stdout),
            stderr: join(stderr),
        }
    }

    pub fn dump(&self) -> String {
        format!(
            "exit code: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs a command to completion with the hang guard, capturing its output.
pub fn run_guarded(cmd: &mut Command, what: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    let stdout = drain(child.stdout.take().expect("stdout"));
    let stderr = drain(child.stderr.take().expect("stderr"));
    let (status, hung) = wait_guarded(&mut child);
    let out = Output::collect(status, Some(stdout), Some(stderr));
    assert!(
        !hung,
        "{what} did not finish within {HANG_GUARD:?} and was killed:\n{}",
        out.dump()
    );
    out
}

/// Waits for `child`; a guard thread kills it if it outlives [`HANG_GUARD`].
/// Returns the status and whether the guard had to kill it.
fn wait_guarded(child: &mut Child) -> (ExitStatus, bool) {
    let pid = rustix::process::Pid::from_raw(child.id() as i32).expect("pid");
    let (done, rx) = mpsc::channel::<()>();
    let guard = thread::spawn(move || {
        let timed_out = matches!(
            rx.recv_timeout(HANG_GUARD),
            Err(mpsc::RecvTimeoutError::Timeout)
        );
        if timed_out {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
        timed_out
    });
    let status = child.wait().expect("wait for child");
    drop(done);
    let hung = guard.join().expect("guard thread");
    (status, hung)
}

fn drain<R: Read + Send + 'static>(mut r: R) -> JoinHandle<String> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// A source tree, a target volume `vol` served by a running `ferry serve`, and certificates.
pub struct Fixture {
    pub tmp: TempDir,
    pub src: PathBuf,
    pub dst: PathBuf,
    pub certs: Certs,
    pub server: Server,
}

impl Fixture {
    pub fn new() -> Fixture {
        let tmp = TempDir::new().expect("tempdir");
        let src = tmp.path().join("src");
        let dst = tmp.path().join("dst");
        std::fs::create_dir(&src).expect("mkdir src");
        std::fs::create_dir(&dst).expect("mkdir dst");
        let certs = Certs::new();
        let server = Server::builder(&certs).volume("vol", &dst).start();
        Fixture {
            tmp,
            src,
            dst,
            certs,
            server,
        }
    }

    /// `ferry push SRC ferry://.../vol` with this fixture's client certificate.
    pub fn push(&self) -> Push {
        push(&self.certs, &self.src, &self.server.url("vol"))
    }
}
