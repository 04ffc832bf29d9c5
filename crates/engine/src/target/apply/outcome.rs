//! How a file's last frame left it, and what the session hears of that.

use ferry_proto::RelPath;
use ferry_tree::NotApplied;

use super::assembly::Assembly;
use super::job::Completion;
use crate::error::EngineError;
use crate::target::in_place::InPlace;

/// How a file's last frame left it (a frame that leaves it unfinished is `None`).
pub(super) enum Finished {
    Committed(NotApplied),
    Mismatch,
}

pub(super) enum Failure {
    Protocol(String),
    Tree(ferry_tree::TreeError),
    /// The session ended while the frame was being worked on.
    Cancelled,
}

impl From<ferry_tree::TreeError> for Failure {
    fn from(e: ferry_tree::TreeError) -> Self {
        Failure::Tree(e)
    }
}

impl Failure {
    fn into_completion(self, index: u64, path: RelPath, more: bool) -> Completion {
        match self {
            Failure::Protocol(message) => Completion::Failed {
                index,
                path,
                message: String::new(),
                fatal: Some(EngineError::protocol(message)),
                draining: false,
            },
            Failure::Cancelled => Completion::Failed {
                index,
                path,
                message: String::new(),
                fatal: Some(EngineError::new(
                    crate::ExitCode::Interrupted,
                    "the session ended",
                )),
                draining: false,
            },
            Failure::Tree(e) => {
                let fatal = e.is_fatal().then(|| EngineError::from(&e));
                Completion::Failed {
                    index,
                    path,
                    message: e.to_string(),
                    fatal,
                    draining: more,
                }
            }
        }
    }
}

/// What the session hears of a file whose last frame finished it (or failed it);
/// `more`: that frame was not its `FileEnd`, so the source is still sending it.
pub(super) fn finish(
    index: u64,
    a: Assembly,
    finished: Result<Finished, Failure>,
    more: bool,
) -> Completion {
    match finished {
        Ok(Finished::Committed(not_applied)) => Completion::Committed {
            index,
            size: a.pending.size,
            in_place: matches!(a.pending.in_place, InPlace::Chosen { .. }),
            path: (not_applied != NotApplied::default()).then_some(a.pending.path),
            not_applied,
        },
        Ok(Finished::Mismatch) => Completion::Mismatch {
            index,
            pending: Box::new(a.discard()),
        },
        Err(failure) => failure.into_completion(index, a.discard().path, more),
    }
}
