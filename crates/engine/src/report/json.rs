//! The JSON-lines sink (`--json`): one object per event on stdout, each with `"event"`
//! and `"schema"`; the events and their fields are documented in `docs/events.md`.

use std::io::Write;
use std::sync::Arc;

use serde_json::{json, Value};

use super::event::{change_word, Event, EventSink};
use super::summary::SCHEMA;
use super::terminal::Terminal;

pub struct JsonLines {
    pub terminal: Arc<Terminal>,
}

impl JsonLines {
    fn line(&self, event: &str, fields: Value) {
        let mut object = json!({"event": event, "schema": SCHEMA});
        if let (Some(object), Value::Object(fields)) = (object.as_object_mut(), fields) {
            object.extend(fields);
        }
        self.terminal.print(|| {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{object}");
        });
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

impl EventSink for JsonLines {
    fn wants_progress(&self) -> bool {
        true
    }

    fn event(&self, event: &Event<'_>) {
        match *event {
            Event::Start {
                source,
                target,
                volume,
                dry_run,
            } => self.line(
                "start",
                json!({"source": source, "target": target, "volume": volume, "dry_run": dry_run,
                       "ferry_version": env!("CARGO_PKG_VERSION")}),
            ),
            Event::TargetSpace(space) => self.line(
                "target_space",
                json!({"free_bytes": space.free_bytes, "reserved_bytes": space.reserved_bytes,
                       "free_inodes": space.free_inodes, "block_size": space.block_size}),
            ),
            Event::Privileges(report) => {
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
            Event::Tick { .. } => {}
            Event::Progress {
                snapshot,
                rate_bps,
                eta_s,
                elapsed_s,
            } => {
                let mut fields = serde_json::to_value(snapshot).expect("snapshot serializes");
                if let Some(fields) = fields.as_object_mut() {
                    fields.insert("rate_bps".into(), json!(rate_bps.round() as u64));
                    fields.insert("eta_s".into(), json!(eta_s.map(|s| s.round() as u64)));
                    fields.insert("elapsed_s".into(), json!(round2(elapsed_s)));
                }
                self.line("progress", fields);
            }
            Event::Change {
                path,
                change,
                entry,
            } => self.line(
                "change",
                json!({"path": path, "change": change_word(change), "kind": entry.name()}),
            ),
            Event::FileError {
                side,
                path,
                message,
            } => self.line(
                "file_error",
                json!({"side": side, "path": path, "message": message}),
            ),
            Event::Stream {
                stream,
                state,
                reason,
            } => self.line(
                "stream",
                json!({"stream": stream, "state": state, "reason": reason}),
            ),
            Event::Warning { path, message } => {
                self.line("warning", json!({"path": path, "message": message}))
            }
            Event::Summary(summary) => self.terminal.print(|| {
                let mut out = std::io::stdout().lock();
                let value = serde_json::to_value(summary).expect("summary serializes");
                let _ = writeln!(out, "{value}");
            }),
        }
    }
}
