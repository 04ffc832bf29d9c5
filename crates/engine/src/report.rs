//! Where a push tells the user what happens: JSON lines for controllers, text for people.
//! Libraries never print; this is the one place the engine writes to stdout/stderr, on
//! behalf of the command that asked for it.

use std::io::Write;

use ferry_proto::{escape, ChangeKind, EntryKind};
use serde_json::json;

use crate::summary::Summary;

/// How events are shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// Newline-delimited JSON events on stdout.
    Json,
    /// Text: changes (dry run) on stdout, warnings on stderr, the report on stderr.
    Text,
}

#[derive(Clone, Debug)]
pub struct Reporter {
    output: Output,
}

impl Reporter {
    pub fn new(output: Output) -> Self {
        Reporter { output }
    }

    fn line(&self, value: serde_json::Value) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{value}");
    }

    pub fn start(&self, src: &str, target: &str, volume: &str) {
        if self.output == Output::Json {
            self.line(json!({"event": "start", "source": src, "target": target, "volume": volume}));
        }
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
            Output::Json => {
                self.line(json!({"event": "change", "path": path, "change": change, "kind": kind}))
            }
            Output::Text => {
                let mut out = std::io::stdout().lock();
                let slash = if entry == EntryKind::Dir { "/" } else { "" };
                let _ = writeln!(out, "{change:<8} {path}{slash}");
            }
        }
    }

    pub fn file_error(&self, side: &str, path: &str, message: &str) {
        match self.output {
            Output::Json => self.line(
                json!({"event": "file_error", "side": side, "path": path, "message": message}),
            ),
            Output::Text => eprintln!("ferry: error at the {side}: {path}: {message}"),
        }
    }

    pub fn warning(&self, path: &str, message: &str) {
        match self.output {
            Output::Json => {
                self.line(json!({"event": "warning", "path": path, "message": message}))
            }
            Output::Text => eprintln!("ferry: warning: {path}: {message}"),
        }
    }

    pub fn summary(&self, summary: &Summary) {
        match self.output {
            Output::Json => self.line(serde_json::to_value(summary).expect("summary serializes")),
            Output::Text => {
                if let Some(error) = &summary.error {
                    eprintln!("ferry: {error}");
                }
                eprint!("{}", summary.to_text());
            }
        }
    }
}
