//! What the target does as entries resolve: a worker's completion (committed,
//! mismatched and asked for again, failed) told to the core and counted, hard links made
//! once the core says their leader is in place, directories finished when it says their
//! last entry is, and the `Ack` watermark it gives, sent.

use std::sync::atomic::Ordering::Relaxed;

use ferry_proto::session::target::{FileOutcome, Verdict};
use ferry_proto::{Message, Meta, RelPath};

use super::apply::{Completion, Job};
use super::asks::Queued;
use super::fetch::ReadySender;
use super::finish;
use super::plan::LinkRequest;
use super::tally::Tally;
use super::{send, Session};
use crate::error::EngineError;

impl Session {
    /// Applies the attributes of directories that are complete.
    pub(super) async fn finish_dirs(
        &mut self,
        ready: Vec<(RelPath, Meta)>,
    ) -> Result<(), EngineError> {
        if ready.is_empty() || self.dry_run {
            return Ok(());
        }
        let volume = self.volume.clone();
        let (tally, errors) = tokio::task::spawn_blocking(move || {
            let mut tally = Tally::default();
            finish::finish_dirs(&volume, &ready, &mut tally).map(|errors| (tally, errors))
        })
        .await
        .map_err(|e| EngineError::file_io(format!("finishing directories failed: {e}")))??;
        self.fold(tally).await?;
        for error in errors {
            send(&self.tx, error).await?;
        }
        Ok(())
    }

    pub(super) async fn complete(
        &mut self,
        done: Completion,
        ready: &ReadySender,
    ) -> Result<(), EngineError> {
        // Whatever came of the file, its stream's credit for it is back (a file in
        // ranges: once it ended, all of its ranges' and the ones not asked yet).
        self.asks.received(done.index());
        if !matches!(done, Completion::RangeMismatch { .. }) && self.core.is_ranged(done.index()) {
            self.asks.ranged_ended(done.index());
        }
        match done {
            Completion::Committed {
                index,
                size,
                in_place,
                not_applied,
                path,
            } => {
                self.stats.files_transferred += 1;
                self.stats.files_inplace += u64::from(in_place);
                self.stats.bytes_written += size;
                self.metrics.files_written.fetch_add(1, Relaxed);
                self.metrics.written_bytes.fetch_add(size, Relaxed);
                if let Some(path) = path {
                    let mut tally = Tally::default();
                    tally.not_applied(&path, not_applied);
                    self.fold(tally).await?;
                }
                let _ = self.core.handle_file(index, FileOutcome::Committed);
            }
            Completion::Mismatch { index, pending } => {
                match self.core.handle_file(index, FileOutcome::Mismatch) {
                    Verdict::Resend => {
                        self.stats.resent += 1;
                        self.want_whole(index, *pending).await?;
                    }
                    Verdict::Failed | Verdict::Done => {
                        let message = "content did not match the source's BLAKE3 twice";
                        self.file_failed(pending.path.into_bytes(), message.into())
                            .await?;
                    }
                }
            }
            Completion::Failed {
                index,
                path,
                message,
                fatal,
                draining,
            } => {
                if let Some(fatal) = fatal {
                    return Err(fatal);
                }
                let _ = self
                    .core
                    .handle_file(index, FileOutcome::Failed { draining });
                if !self.range_failed.remove(&index) {
                    self.file_failed(path.into_bytes(), message).await?;
                }
            }
            Completion::Aborted { index } => {
                self.range_failed.remove(&index);
                let _ = self.core.handle_file(index, FileOutcome::Aborted);
            }
            // Asked on a lost stream: what came of it is dropped, and it is asked again
            // (unless it failed here meanwhile: its worker had no file any more).
            Completion::Reask { index, pending } => {
                if let Some(pending) = pending {
                    self.want_whole(index, *pending).await?;
                }
            }
            // A range did not match the source's value: asked again once, else the file
            // fails (its worker discards it, and says so with `Aborted`).
            Completion::RangeMismatch {
                index,
                offset,
                size,
                path,
            } => match self.core.handle_range_mismatch(index, offset) {
                Verdict::Resend => {
                    self.stats.resent += 1;
                    self.asks.push_front(Queued::Range {
                        index,
                        offset,
                        size,
                        have: None,
                    });
                }
                Verdict::Failed => {
                    self.range_failed.insert(index);
                    self.asks.ranged_ended(index);
                    self.job(index, Job::Abort { index }).await?;
                    let message = format!(
                        "the range at byte {offset} did not match the source's BLAKE3 twice"
                    );
                    self.file_failed(path.into_bytes(), message).await?;
                }
                Verdict::Done => {}
            },
        }
        self.work(ready).await
    }

    async fn file_failed(&mut self, path: Vec<u8>, message: String) -> Result<(), EngineError> {
        self.stats.file_errors += 1;
        send(&self.tx, Message::FileError { path, message }).await
    }

    pub(super) async fn link_failed(
        &mut self,
        link: &LinkRequest,
        why: &str,
    ) -> Result<(), EngineError> {
        self.stats.file_errors += 1;
        send(
            &self.tx,
            Message::FileError {
                path: link.path.as_bytes().to_vec(),
                message: format!("hard link not created: {why}"),
            },
        )
        .await
    }

    pub(super) async fn make_links(&mut self, links: Vec<LinkRequest>) -> Result<(), EngineError> {
        if links.is_empty() {
            return Ok(());
        }
        let volume = self.volume.clone();
        let dry_run = self.planner.as_ref().is_some_and(|p| p.dry_run());
        let results = tokio::task::spawn_blocking(move || {
            links
                .into_iter()
                .map(|link| {
                    let result = finish::make_link(&volume, &link, dry_run);
                    (link, result)
                })
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|e| EngineError::file_io(format!("linking failed: {e}")))?;
        for (link, result) in results {
            let made = result.is_ok();
            self.core.handle_link(link.index, made);
            match result {
                Ok(Some(change)) => {
                    if !dry_run {
                        self.stats.entries_created += 1;
                    }
                    if dry_run || self.itemize {
                        send(
                            &self.tx,
                            Message::Change {
                                path: link.path.as_bytes().to_vec(),
                                kind: change,
                                entry: ferry_proto::EntryKind::HardLink,
                            },
                        )
                        .await?;
                    }
                }
                Ok(None) => {}
                Err(finish::LinkError::NotAFile(leader)) => {
                    return Err(EngineError::protocol(format!(
                        "hard link {} names {leader}, which is not a regular file",
                        link.path
                    )))
                }
                Err(finish::LinkError::Tree(e)) if e.is_fatal() => return Err(e.into()),
                Err(finish::LinkError::Tree(e)) => self.link_failed(&link, &e.to_string()).await?,
            }
        }
        Ok(())
    }

    /// Sends the watermark if it moved.
    pub(super) async fn ack(&mut self) -> Result<(), EngineError> {
        while let Some(message) = self.core.poll_transmit() {
            send(&self.tx, message).await?;
        }
        Ok(())
    }
}
