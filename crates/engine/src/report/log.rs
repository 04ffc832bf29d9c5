//! The log sink, for a server that is the source of a pull: errors and warnings as log
//! lines, changes at debug level, no report.

use super::event::{change_word, Event, EventSink};

pub struct Log;

impl EventSink for Log {
    fn event(&self, event: &Event<'_>) {
        match *event {
            Event::Change {
                path,
                change,
                entry,
            } => tracing::debug!("{} {path} ({})", change_word(change), entry.name()),
            Event::FileError {
                side,
                path,
                message,
            } => tracing::warn!("error at the {side}: {path}: {message}"),
            Event::Warning { path, message } => tracing::warn!("{path}: {message}"),
            Event::Start { .. }
            | Event::Privileges(_)
            | Event::TargetSpace(_)
            | Event::Stream { .. }
            | Event::Tick { .. }
            | Event::Progress { .. }
            | Event::Summary(_) => {}
        }
    }
}
