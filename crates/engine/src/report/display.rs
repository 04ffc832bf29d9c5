//! How progress reads to a person: a smoothed rate with an ETA ([`Rate`]), byte counts
//! and durations in human units, and the live line. Pure functions of a [`Snapshot`]; the
//! [`super::ticker`] calls them and the [`super::Reporter`] prints them.

use tokio::time::Instant;

use super::progress::Snapshot;

/// Time constant of the rate's exponential smoothing.
const SMOOTHING: f64 = 3.0;

/// A smoothed rate of processed file bytes.
#[derive(Debug, Default)]
pub struct Rate {
    last: Option<(Instant, u64)>,
    bps: f64,
}

impl Rate {
    /// Bytes per second and, once the totals are final and the rate is known, seconds
    /// left.
    pub fn update(&mut self, now: Instant, snapshot: &Snapshot) -> (f64, Option<f64>) {
        if let Some((then, before)) = self.last {
            let dt = now.duration_since(then).as_secs_f64();
            if dt > 0.0 {
                let instant = snapshot.processed.saturating_sub(before) as f64 / dt;
                let weight = 1.0 - (-dt / SMOOTHING).exp();
                self.bps += (instant - self.bps) * weight;
            }
        }
        self.last = Some((now, snapshot.processed));
        let left = snapshot.bytes_total.saturating_sub(snapshot.bytes_done) as f64;
        let eta = (snapshot.totals_final && self.bps >= 1.0).then(|| left / self.bps);
        (self.bps, eta)
    }
}

/// `1.5 GiB`, `512 B`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// `4s`, `2m05s`, `1h02m`.
pub fn human_duration(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

/// The live line: `transferring  3/10+ files  1.2 MiB/4.0 MiB+  2.0 MiB/s  ETA 2s`
/// (a `+` after a total: the scan is still streaming and the total will grow).
pub fn line(s: &Snapshot, bps: f64, eta: Option<f64>) -> String {
    let more = if s.totals_final { "" } else { "+" };
    let mut line = format!(
        "{:<12}  {}/{}{more} files  {}/{}{more}  {}/s",
        s.phase.name(),
        s.files_done,
        s.files_total,
        human_bytes(s.bytes_done),
        human_bytes(s.bytes_total),
        human_bytes(bps as u64),
    );
    match eta {
        Some(eta) => line.push_str(&format!("  ETA {}", human_duration(eta))),
        None if !s.totals_final => line.push_str("  (scanning)"),
        None => {}
    }
    if s.retries > 0 {
        line.push_str(&format!("  retries {}", s.retries));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::progress::Phase;

    const TICK: std::time::Duration = std::time::Duration::from_millis(250);

    fn snapshot(processed: u64, done: u64, total: u64, totals_final: bool) -> Snapshot {
        Snapshot {
            phase: Phase::Transferring,
            files_done: 1,
            files_total: 4,
            bytes_done: done,
            bytes_total: total,
            totals_final,
            bytes_on_wire: 0,
            retries: 0,
            attempt: 1,
            processed,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn rate_and_eta_settle_on_a_steady_flow() {
        let mut rate = Rate::default();
        let start = Instant::now();
        let mut eta = None;
        let mut bps = 0.0;
        for tick in 0..=80u64 {
            let now = start + TICK * tick as u32;
            let done = tick * 250_000; // 1 MB/s
            (bps, eta) = rate.update(now, &snapshot(done, done, 100_000_000, true));
        }
        assert!((bps - 1_000_000.0).abs() < 20_000.0, "rate {bps}");
        let eta = eta.expect("an eta");
        assert!((eta - 80.0).abs() < 2.0, "eta {eta}");
    }

    #[test]
    fn no_eta_while_the_totals_grow() {
        let mut rate = Rate::default();
        let start = Instant::now();
        rate.update(start, &snapshot(0, 0, 10, false));
        let (_, eta) = rate.update(start + TICK, &snapshot(5, 5, 10, false));
        assert_eq!(eta, None);
    }

    #[test]
    fn the_line_says_when_totals_will_grow() {
        let line = line(&snapshot(0, 2048, 1 << 30, false), 1536.0, None);
        assert_eq!(
            line,
            "transferring  1/4+ files  2.0 KiB/1.0 GiB+  1.5 KiB/s  (scanning)"
        );
        assert_eq!(human_duration(125.0), "2m05s");
        assert_eq!(human_bytes(512), "512 B");
    }
}
