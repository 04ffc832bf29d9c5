//! The ticker that turns [`Progress`] into a live terminal line (4 times a second) and
//! `progress` events (once a second), with a smoothed rate and an ETA.
//!
//! ```text
//! Progress ──snapshot every 250 ms──▶ Rate ──▶ Reporter::draw (terminal, stderr)
//!                                          └─▶ Reporter::progress (JSON, every 4th tick)
//! ```

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::{Instant, MissedTickBehavior};

use super::display::Rate;
use super::progress::Progress;
use super::Reporter;

/// Redraws of the terminal line.
const TICK: Duration = Duration::from_millis(250);
/// A `progress` event every this many ticks (1 s).
const EVENT_EVERY: u32 = 4;
/// A running ticker; [`Ticker::stop`] ends it with the line cleared.
pub struct Ticker {
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Ticker {
    /// Starts the ticker if the reporter shows a live line or emits JSON events.
    pub fn start(progress: Arc<Progress>, reporter: Reporter) -> Option<Ticker> {
        if !reporter.wants_progress() {
            return None;
        }
        let (stop, mut stopped) = oneshot::channel();
        let task = tokio::spawn(async move {
            let mut interval = tokio::time::interval(TICK);
            interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
            let mut rate = Rate::default();
            let mut ticks = 0u32;
            loop {
                tokio::select! {
                    _ = interval.tick() => {}
                    _ = &mut stopped => break,
                }
                let snapshot = progress.snapshot();
                let (bps, eta) = rate.update(Instant::now(), &snapshot);
                reporter.draw(&snapshot, bps, eta);
                if ticks > 0 && ticks.is_multiple_of(EVENT_EVERY) {
                    reporter.progress(&snapshot, bps, eta);
                }
                ticks += 1;
            }
            reporter.clear_line();
        });
        Some(Ticker {
            stop: Some(stop),
            task,
        })
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}
