//! Faults the core must survive without losing anything, injected with real processes,
//! sockets and filesystems; after each, the trees are compared.

mod durability;
mod kills;
mod network;
mod preauth;
mod source;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde_json::Value;

use crate::files::{random_bytes, write};
use crate::relay::Relay;
use crate::snapshot::{diff, Snapshot};
use crate::util::{ferry, run_guarded, Fixture, Server};

/// `ferry push` of the fixture's source to `url`, running in the background (output
/// discarded).
pub(crate) fn spawn_push(fx: &Fixture, url: &str, extra: &[&str]) -> Child {
    push_command(fx, url, extra)
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn ferry push")
}

/// [`spawn_push`], with stdout kept for the test to read.
fn spawn_push_piped(fx: &Fixture, url: &str, extra: &[&str]) -> Child {
    push_command(fx, url, extra)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn ferry push")
}

fn push_command(fx: &Fixture, url: &str, extra: &[&str]) -> std::process::Command {
    let mut cmd = ferry();
    cmd.arg("push")
        .arg(&fx.src)
        .arg(url)
        .arg("--tls-dir")
        .arg(fx.certs.client_dir())
        .args(extra)
        .stderr(Stdio::null());
    cmd
}

/// Waits for `ready` (readiness, polled; not a timing assertion), failing after 30 s.
pub(crate) fn wait_until(what: &str, ready: impl Fn() -> bool) {
    for _ in 0..600 {
        if ready() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("gave up waiting for {what}");
}

/// Kills a running `ferry serve` with SIGKILL: no cleanup runs.
pub(crate) fn sigkill(server: Server) {
    let pid = rustix::process::Pid::from_raw(server.pid() as i32).expect("pid");
    rustix::process::kill_process(pid, rustix::process::Signal::KILL).expect("kill");
    drop(server);
}
