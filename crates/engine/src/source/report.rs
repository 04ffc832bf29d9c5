//! Shows what a target reports (its changes, errors and attributes it could not apply)
//! and counts it: for the source's driver, whose target is the peer, and for the
//! puller, whose target is its own.

use std::sync::Mutex;

use ferry_proto::{escape, peer_text, ChangeKind, EntryKind, Message};

use crate::report::summary::{NotAppliedExample, SourceCounts};
use crate::report::Reporter;

/// Shows what the target reports of its changes and errors (`Change`, `FileError`,
/// `NotApplied`), and counts it; other messages are left alone. Used where the target
/// is the peer (push, and the server's side of a pull: `from_peer`, so its words are
/// escaped with [`peer_text`]) and where it is this process (the puller's own target).
pub(crate) fn report_from_target(
    message: &Message,
    counts: &Mutex<SourceCounts>,
    reporter: &Reporter,
    dry_run: bool,
    from_peer: bool,
) {
    match message {
        Message::Change { path, kind, entry } => {
            let content = matches!(kind, ChangeKind::Created | ChangeKind::Updated);
            if dry_run && content && *entry == EntryKind::File {
                counts.lock().expect("counts lock").files_would_change += 1;
            }
            reporter.change(path, *kind, *entry)
        }
        Message::FileError { path, message } => {
            let message = if from_peer {
                peer_text(message)
            } else {
                message.clone()
            };
            reporter.file_error("target", &escape(path), &message)
        }
        Message::NotApplied {
            path,
            owner,
            xattrs,
            special,
        } => {
            let mut what = Vec::new();
            if *owner {
                what.push("owner");
            }
            if *xattrs > 0 {
                what.push("xattrs");
            }
            if *special {
                what.push("special");
            }
            let mut counts = counts.lock().expect("counts lock");
            if counts.not_applied_examples.len() < 10 {
                counts.not_applied_examples.push(NotAppliedExample {
                    path: escape(path),
                    what,
                });
            }
        }
        _ => {}
    }
}
