//! Where a push tells the user what happens: JSON lines for controllers, text and a live
//! line for people. Libraries never print; this is the one place the engine writes to
//! stdout/stderr, on behalf of the command that asked for it.
//!
//! Every JSON line is an object with `"event"` and `"schema": SCHEMA`; the events and
//! their fields are documented in `docs/events.md`. The live line is redrawn in place on
//! stderr (`\r` + clear-line) and cleared before anything else is printed, so warnings
//! never land in the middle of it.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use ferry_proto::{escape, ChangeKind, EntryKind};
use serde_json::{json, Value};

use crate::display::{human_bytes, human_duration, line};
use crate::progress::{Progress, Snapshot};
use crate::summary::Summary;

/// Version of the `--json` event schema. Adding a field keeps it; renaming, removing or
/// changing the meaning or type of one makes the next version.
pub const SCHEMA: u32 = 1;

/// Per-file errors kept for the final text report (all are counted and, with `--json`,
/// each is an event).
const ERRORS_KEPT: usize = 100;

/// Clears the terminal line: carriage return, then ANSI "erase entire line".
const CLEAR: &str = "\r\x1b[2K";

/// How events are shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// Newline-delimited JSON events on stdout.
    Json,
    /// Text: changes on stdout, warnings on stderr, the report on stderr.
    Text,
    /// The log only (a server that is the source of a pull): errors and warnings as
    /// log lines, changes at debug level, no report.
    Log,
}

#[derive(Clone, Debug)]
pub struct Reporter {
    output: Output,
    /// A live progress line on stderr.
    live: bool,
    started: Instant,
    /// Whether the live line is on screen now.
    drawn: Arc<Mutex<bool>>,
    errors: Arc<Mutex<Vec<String>>>,
}

impl Reporter {
    pub fn new(output: Output, live: bool) -> Self {
        Reporter {
            output,
            live,
            started: Instant::now(),
            drawn: Arc::new(Mutex::new(false)),
            errors: Arc::new(Mutex::new(Vec::new())),
        }
    }

    pub fn live(&self) -> bool {
        self.live
    }

    pub fn json(&self) -> bool {
        self.output == Output::Json
    }

    fn line(&self, event: &str, fields: Value) {
        let mut object = json!({"event": event, "schema": SCHEMA});
        if let (Some(object), Value::Object(fields)) = (object.as_object_mut(), fields) {
            object.extend(fields);
        }
        self.clear_line();
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{object}");
    }

    /// Runs `print` with the live line off the screen; the next tick redraws it.
    fn text(&self, print: impl FnOnce()) {
        let mut drawn = self.drawn.lock().expect("display lock");
        if *drawn {
            eprint!("{CLEAR}");
            *drawn = false;
        }
        print();
    }

    pub fn clear_line(&self) {
        self.text(|| {});
    }

    /// Redraws the live line.
    pub fn draw(&self, snapshot: &Snapshot, bps: f64, eta: Option<f64>) {
        if !self.live {
            return;
        }
        let mut drawn = self.drawn.lock().expect("display lock");
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "{CLEAR}{}", line(snapshot, bps, eta));
        let _ = err.flush();
        *drawn = true;
    }

    pub fn start(&self, src: &str, target: &str, volume: &str, dry_run: bool) {
        if self.json() {
            self.line(
                "start",
                json!({"source": src, "target": target, "volume": volume, "dry_run": dry_run,
                       "ferry_version": env!("CARGO_PKG_VERSION")}),
            );
        }
    }

    /// The `privileges` event: what this side holds and what it cannot do with it
    /// (the same words went to stderr before the run started).
    pub fn privileges(&self, report: &ferry_tree::PrivilegeReport) {
        if !self.json() {
            return;
        }
        let held: Vec<&str> = report.held.iter().map(|c| c.name()).collect();
        let missing: Vec<Value> = report
            .missing
            .iter()
            .map(|s| {
                json!({"capability": s.cap.to_string(), "effect": s.effect,
                       "message": report.line(s)})
            })
            .collect();
        self.line(
            "privileges",
            json!({"side": report.side.name(), "uid": report.uid, "held": held,
                   "missing": missing}),
        );
    }

    /// The `progress` event.
    pub fn progress(&self, snapshot: &Snapshot, bps: f64, eta: Option<f64>) {
        if !self.json() {
            return;
        }
        let mut fields = serde_json::to_value(snapshot).expect("snapshot serializes");
        if let Some(fields) = fields.as_object_mut() {
            fields.insert("rate_bps".into(), json!(bps.round() as u64));
            fields.insert("eta_s".into(), json!(eta.map(|s| s.round() as u64)));
            fields.insert(
                "elapsed_s".into(),
                json!(round2(self.started.elapsed().as_secs_f64())),
            );
        }
        self.line("progress", fields);
    }

    pub fn change(&self, path: &[u8], kind: ChangeKind, entry: EntryKind) {
        let change = match kind {
            ChangeKind::Created => "created",
            ChangeKind::Updated => "updated",
            ChangeKind::MetaUpdated => "meta",
            ChangeKind::Deleted => "deleted",
        };
        let path = escape(path);
        let kind = entry.name();
        match self.output {
            Output::Json => self.line(
                "change",
                json!({"path": path, "change": change, "kind": kind}),
            ),
            Output::Text => self.text(|| {
                let mut out = std::io::stdout().lock();
                let slash = if entry == EntryKind::Dir { "/" } else { "" };
                let _ = writeln!(out, "{change:<8} {path}{slash}");
            }),
            Output::Log => tracing::debug!("{change} {path} ({kind})"),
        }
    }

    pub fn file_error(&self, side: &str, path: &str, message: &str) {
        {
            let mut errors = self.errors.lock().expect("errors lock");
            if errors.len() < ERRORS_KEPT {
                errors.push(format!("{side}: {path}: {message}"));
            }
        }
        match self.output {
            Output::Json => self.line(
                "file_error",
                json!({"side": side, "path": path, "message": message}),
            ),
            Output::Text => {
                self.text(|| eprintln!("ferry: error at the {side}: {path}: {message}"))
            }
            Output::Log => tracing::warn!("error at the {side}: {path}: {message}"),
        }
    }

    pub fn warning(&self, path: &str, message: &str) {
        match self.output {
            Output::Json => self.line("warning", json!({"path": path, "message": message})),
            Output::Text => self.text(|| eprintln!("ferry: warning: {path}: {message}")),
            Output::Log => tracing::warn!("{path}: {message}"),
        }
    }

    /// The per-file errors kept for the report.
    pub fn errors(&self) -> Vec<String> {
        self.errors.lock().expect("errors lock").clone()
    }

    /// Ends a run: the last `progress` event (all of it done), then `summary` with the
    /// per-file errors this reporter kept. Returns the summary.
    pub fn finish(&self, progress: &Progress, mut summary: Summary) -> Summary {
        let last = progress.snapshot();
        let elapsed = self.started.elapsed().as_secs_f64().max(1e-3);
        self.progress(&last, last.processed as f64 / elapsed, Some(0.0));
        summary.errors = self.errors();
        self.summary(&summary);
        summary
    }

    pub fn summary(&self, summary: &Summary) {
        match self.output {
            Output::Json => {
                self.clear_line();
                let mut out = std::io::stdout().lock();
                let value = serde_json::to_value(summary).expect("summary serializes");
                let _ = writeln!(out, "{value}");
            }
            Output::Text => self.text(|| {
                if self.live {
                    eprintln!("{}", final_line(summary));
                }
                if let Some(error) = &summary.error {
                    eprintln!("ferry: {error}");
                }
                eprint!("{}", summary.to_text());
            }),
            Output::Log => {}
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

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
