//! The live progress line on stderr (`--progress`, or stderr is a terminal), redrawn on
//! every tick; with text output, its last state stays on screen at the end.

use std::sync::Arc;

use super::display::{human_bytes, human_duration, line};
use super::event::{Event, EventSink};
use super::summary::Summary;
use super::terminal::Terminal;

pub struct LiveLine {
    pub terminal: Arc<Terminal>,
    /// Leave the final state on screen (text output; JSON output only clears it).
    pub final_line: bool,
}

impl EventSink for LiveLine {
    fn wants_progress(&self) -> bool {
        true
    }

    fn event(&self, event: &Event<'_>) {
        match *event {
            Event::Tick {
                snapshot,
                rate_bps,
                eta_s,
            } => self.terminal.draw(&line(snapshot, rate_bps, eta_s)),
            Event::Summary(summary) => self.terminal.print(|| {
                if self.final_line {
                    eprintln!("{}", final_line(summary));
                }
            }),
            _ => {}
        }
    }
}

/// The live line's last state: `done  10/10 files  4.0 MiB/4.0 MiB  avg 2.0 MiB/s  in 2s`.
fn final_line(s: &Summary) -> String {
    let word = if s.error.is_some() { "failed" } else { "done" };
    let avg = if s.duration_s > 0.0 {
        (s.bytes_transferred as f64 / s.duration_s) as u64
    } else {
        0
    };
    format!(
        "{word:<12}  {}/{} files  {}/{}  avg {}/s  in {}",
        s.files_total,
        s.files_total,
        human_bytes(s.bytes_total),
        human_bytes(s.bytes_total),
        human_bytes(avg),
        human_duration(s.duration_s),
    )
}
