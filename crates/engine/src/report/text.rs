//! The text sink, for people: changes on stdout (`created  path`), warnings, per-file
//! errors and the final report on stderr.

use std::io::Write;
use std::sync::Arc;

use ferry_proto::EntryKind;

use super::event::{change_word, Event, EventSink};
use super::terminal::Terminal;

pub struct Text {
    pub terminal: Arc<Terminal>,
}

impl EventSink for Text {
    fn event(&self, event: &Event<'_>) {
        match *event {
            Event::Change {
                path,
                change,
                entry,
            } => self.terminal.print(|| {
                let mut out = std::io::stdout().lock();
                let slash = if entry == EntryKind::Dir { "/" } else { "" };
                let _ = writeln!(out, "{:<8} {path}{slash}", change_word(change));
            }),
            Event::FileError {
                side,
                path,
                message,
            } => self
                .terminal
                .print(|| eprintln!("ferry: error at the {side}: {path}: {message}")),
            Event::Warning { path, message } => self
                .terminal
                .print(|| eprintln!("ferry: warning: {path}: {message}")),
            Event::Summary(summary) => self.terminal.print(|| {
                if let Some(error) = &summary.error {
                    eprintln!("ferry: {error}");
                }
                eprint!("{}", summary.to_text());
            }),
            Event::Start { .. }
            | Event::Privileges(_)
            | Event::TargetSpace(_)
            | Event::Stream { .. }
            | Event::Tick { .. }
            | Event::Progress { .. } => {}
        }
    }
}
