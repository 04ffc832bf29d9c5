//! Where a run tells the user what happens. The engine emits [`Event`]s through a
//! [`Reporter`]; [`EventSink`]s show them: JSON lines for controllers (`json`), text and a
//! live line for people (`text`, `live`), log lines for a server (`log`), or a sink of the
//! caller's own. Libraries never print; these sinks are the one place the engine writes
//! to stdout/stderr, on behalf of the command that asked for it.
//!
//! ```text
//! roles, commands ─▶ Reporter ─▶ Event ─▶ [LiveLine] + JsonLines | Text | Log | yours
//!                       └─ keeps the per-file errors for the summary
//! ```

use std::sync::{Arc, Mutex};
use std::time::Instant;

use ferry_proto::{escape, ChangeKind, EntryKind};

pub(crate) mod block;
pub(crate) mod display;
mod event;
mod json;
mod live;
mod log;
pub(crate) mod progress;
pub(crate) mod summary;
mod terminal;
mod text;
mod ticker;

pub use event::{Event, EventSink};
pub use summary::SCHEMA;
pub(crate) use ticker::Ticker;

use progress::{Progress, Snapshot};
use summary::Summary;
use terminal::Terminal;

/// Per-file errors kept for the final text report (all are counted and, with `--json`,
/// each is an event).
const ERRORS_KEPT: usize = 100;

/// How events are shown.
#[derive(Clone)]
pub enum Output {
    /// Newline-delimited JSON events on stdout.
    Json,
    /// Text: changes on stdout, warnings on stderr, the report on stderr.
    Text,
    /// The log only (a server that is the source of a pull): errors and warnings as
    /// log lines, changes at debug level, no report.
    Log,
    /// Every event to this sink, and nothing printed (a test, or a program that embeds
    /// the engine and shows runs its own way).
    Sink(Arc<dyn EventSink>),
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Output::Json => "Json",
            Output::Text => "Text",
            Output::Log => "Log",
            Output::Sink(_) => "Sink",
        })
    }
}

/// What a run shows, and to whom.
#[derive(Clone)]
pub struct Reporter {
    /// Every event goes to each, in order.
    sinks: Arc<Vec<Arc<dyn EventSink>>>,
    terminal: Arc<Terminal>,
    started: Instant,
    errors: Arc<Mutex<Vec<String>>>,
}

impl std::fmt::Debug for Reporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reporter")
            .field("sinks", &self.sinks.len())
            .finish()
    }
}

impl Reporter {
    /// The sinks for `output`, and the live line on stderr when `live` (never with a
    /// sink of the caller's).
    pub fn new(output: Output, live: bool) -> Self {
        let terminal = Arc::new(Terminal::default());
        let mut sinks: Vec<Arc<dyn EventSink>> = Vec::new();
        if live && !matches!(output, Output::Sink(_)) {
            sinks.push(Arc::new(live::LiveLine {
                terminal: terminal.clone(),
                final_line: matches!(output, Output::Text),
            }));
        }
        sinks.push(match output {
            Output::Sink(sink) => sink,
            Output::Json => Arc::new(json::JsonLines {
                terminal: terminal.clone(),
            }),
            Output::Text => Arc::new(text::Text {
                terminal: terminal.clone(),
            }),
            Output::Log => Arc::new(log::Log),
        });
        Reporter::with_sinks(sinks, terminal)
    }

    fn with_sinks(sinks: Vec<Arc<dyn EventSink>>, terminal: Arc<Terminal>) -> Self {
        Reporter {
            sinks: Arc::new(sinks),
            terminal,
            started: Instant::now(),
            errors: Arc::default(),
        }
    }

    fn emit(&self, event: Event<'_>) {
        for sink in self.sinks.iter() {
            sink.event(&event);
        }
    }

    /// Whether any sink shows progress (the ticker runs only then).
    pub fn wants_progress(&self) -> bool {
        self.sinks.iter().any(|s| s.wants_progress())
    }

    /// Takes the live line off the screen.
    pub fn clear_line(&self) {
        self.terminal.print(|| {});
    }

    /// The live state, on every tick.
    pub fn draw(&self, snapshot: &Snapshot, bps: f64, eta: Option<f64>) {
        self.emit(Event::Tick {
            snapshot,
            rate_bps: bps,
            eta_s: eta,
        });
    }

    pub fn start(&self, src: &str, target: &str, volume: &str, dry_run: bool) {
        self.emit(Event::Start {
            source: src,
            target,
            volume,
            dry_run,
        });
    }

    /// What this side holds and cannot do with it (the `privileges` event).
    pub fn privileges(&self, report: &ferry_tree::PrivilegeReport) {
        self.emit(Event::Privileges(report));
    }

    /// The `target_space` event.
    pub fn target_space(&self, space: &ferry_proto::VolumeSpace) {
        self.emit(Event::TargetSpace(space));
    }

    /// The `progress` event.
    pub fn progress(&self, snapshot: &Snapshot, bps: f64, eta: Option<f64>) {
        self.emit(Event::Progress {
            snapshot,
            rate_bps: bps,
            eta_s: eta,
            elapsed_s: self.started.elapsed().as_secs_f64(),
        });
    }

    pub fn change(&self, path: &[u8], kind: ChangeKind, entry: EntryKind) {
        let path = escape(path);
        self.emit(Event::Change {
            path: &path,
            change: kind,
            entry,
        });
    }

    pub fn file_error(&self, side: &str, path: &str, message: &str) {
        {
            let mut errors = self.errors.lock().expect("errors lock");
            if errors.len() < ERRORS_KEPT {
                errors.push(format!("{side}: {path}: {message}"));
            }
        }
        self.emit(Event::FileError {
            side,
            path,
            message,
        });
    }

    /// The `stream` event: `state` is `joined`, `refused`, `failed` or `lost`.
    pub fn stream(&self, stream: u16, state: &str, reason: &str) {
        self.emit(Event::Stream {
            stream,
            state,
            reason,
        });
    }

    pub fn warning(&self, path: &str, message: &str) {
        self.emit(Event::Warning { path, message });
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
        self.emit(Event::Summary(summary));
    }
}
