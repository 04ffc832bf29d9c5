//! Hostile-source cases against a real `serve --once` over TLS, for what the in-process
//! cases cannot show: the target's peak memory under an attack (`memory`) and under a
//! flood of file data (`flood`), the CPU the
//! costliest filter costs it and the refusal of a Hello over the filter budget
//! (`filters`), and, for each, the exit status and log of the binary.

mod filters;
mod flood;
mod memory;

use super::*;
use crate::raw::RawClient;
use crate::util::{Certs, Output, Server};

/// What one hostile session against `serve --once` left behind.
struct RealRun {
    scene: Scene,
    seen: Vec<Recv>,
    server: Output,
    /// The target's peak resident memory (VmHWM) as last seen before it exited.
    peak_rss_kib: u64,
}

/// The most resident memory a target may reach under any hostile case: every length
/// the peer sends is bounded before anything is allocated for it, so an attack costs
/// no more than an honest session of one tiny file (about 15 MiB here).
const PEAK_RSS_BOUND_KIB: u64 = 64 * 1024;

/// Samples the VmHWM of process `pid` until it exits (a zombie has none); returns the
/// last value seen. VmHWM only grows, so this is the peak up to the process's last
/// moments: it can miss growth in those, never report more than there was.
fn watch_peak_rss(pid: u32) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut peak = 0;
        loop {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            let hwm = status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
            match hwm {
                Some(kib) => peak = peak.max(kib),
                None => return peak,
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    })
}

/// A fresh [`Scene`], a fresh `serve --once` on its volume, and a session with Root
/// sent; then `attack` and the target's answers until it ends the session, as
/// [`super::run_session`] does in-process.
fn run_session(attack: impl FnOnce(&mut RawClient, &str)) -> RealRun {
    let scene = Scene::new();
    let vol = scene.vol();
    let certs = Certs::new();
    let server = Server::builder(&certs).volume("v", &vol).once().start();
    let peak_rss = watch_peak_rss(server.pid());
    let mut client = RawClient::connect_as_client(&server.addr, &certs.client_dir());
    client.start_session("v");
    // The volume root's own attributes, so that applying them changes nothing.
    let root = own_meta(&vol);
    client
        .send(&Message::Root { meta: root })
        .expect("send Root");
    attack(&mut client, &scene.uniq);
    let seen = client.recv_until_end_with(|client, msg| {
        if let Message::Want { index, .. } = *msg {
            send_ignoring_hangup(client, &whole_file(index));
        }
    });
    drop(client);
    let server = server.finish();
    let peak_rss_kib = peak_rss.join().expect("memory watcher");
    RealRun {
        scene,
        seen,
        server,
        peak_rss_kib,
    }
}

fn send_ignoring_hangup(client: &mut RawClient, msgs: &[Message]) {
    for m in msgs {
        if client.send(m).is_err() {
            return;
        }
    }
}

/// Asserts the target stayed within [`PEAK_RSS_BOUND_KIB`] (and that it was measured).
fn assert_memory_bounded(run: &RealRun) {
    eprintln!("target peak RSS: {} KiB", run.peak_rss_kib);
    assert!(
        run.peak_rss_kib > 0,
        "the target's memory was never sampled"
    );
    assert!(
        run.peak_rss_kib <= PEAK_RSS_BOUND_KIB,
        "the target reached {} KiB resident, over the bound of {PEAK_RSS_BOUND_KIB} KiB",
        run.peak_rss_kib
    );
}

/// Asserts `serve --once` refused the session: protocol `Error` (or a close), exit 12,
/// nothing changed outside the volume or to what was in it, memory bounded.
fn assert_refused(run: &RealRun) {
    assert!(
        is_refusal(&run.seen),
        "the target did not end the session: {:?}\nserver:\n{}",
        run.seen.iter().rev().take(3).collect::<Vec<_>>(),
        run.server.dump()
    );
    assert_eq!(
        run.server.code,
        Some(12),
        "serve --once should exit 12 (protocol)\n{}",
        run.server.dump()
    );
    run.scene.assert_contained(&[]);
    run.scene.assert_pre_existing_untouched();
    assert_memory_bounded(run);
}
