//! How entries become resolved at the target: a receiver's completion (committed,
//! mismatched and asked for again, failed), hard links made once their leader is in
//! place, directories finished when their last entry is, and the `Ack` watermark that
//! tells the source how far it may list.

use std::sync::atomic::Ordering::Relaxed;

use ferry_proto::{Message, Meta, RelPath};

use super::finish;
use super::plan::LinkRequest;
use super::receive::Completion;
use super::tally::Tally;
use super::{send, Session};
use crate::error::EngineError;

impl Session {
    pub(super) async fn settle(&mut self, index: u64) -> Result<(), EngineError> {
        self.unresolved.remove(&index);
        if let Some(parent) = self.parents.remove(&index) {
            let ready = self.dirs.close(&parent);
            self.finish_dirs(ready).await?;
        }
        Ok(())
    }

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

    pub(super) async fn complete(&mut self, done: Completion) -> Result<(), EngineError> {
        let index = match &done {
            Completion::Committed { index, .. }
            | Completion::Mismatch { index, .. }
            | Completion::Failed { index, .. }
            | Completion::Aborted { index } => *index,
        };
        let ended = self.ended.remove(&index);
        match done {
            Completion::Committed {
                index,
                size,
                not_applied,
                path,
            } => {
                self.pending.remove(&index);
                self.stats.files_transferred += 1;
                self.stats.bytes_written += size;
                self.metrics.files_written.fetch_add(1, Relaxed);
                self.metrics.written_bytes.fetch_add(size, Relaxed);
                if let Some(path) = path {
                    let mut tally = Tally::default();
                    tally.not_applied(&path, not_applied);
                    self.fold(tally).await?;
                }
                self.resolved(index).await
            }
            Completion::Mismatch { index, pending } => {
                if self.resent.insert(index) {
                    self.stats.resent += 1;
                    self.want_whole(index, *pending).await
                } else {
                    self.file_failed(
                        index,
                        pending.path.into_bytes(),
                        "content did not match the source's BLAKE3 twice".into(),
                    )
                    .await
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
                // Its frames up to FileEnd are still coming, unless FileEnd already came.
                if draining && !ended {
                    self.draining.insert(index);
                }
                self.file_failed(index, path.into_bytes(), message).await
            }
            Completion::Aborted { index } => {
                self.pending.remove(&index);
                self.failed.insert(index);
                self.resolved(index).await
            }
        }
    }

    async fn file_failed(
        &mut self,
        index: u64,
        path: Vec<u8>,
        message: String,
    ) -> Result<(), EngineError> {
        self.pending.remove(&index);
        self.failed.insert(index);
        self.stats.file_errors += 1;
        send(&self.tx, Message::FileError { path, message }).await?;
        self.resolved(index).await
    }

    /// Marks `index` done and releases the hard links that waited for it.
    async fn resolved(&mut self, index: u64) -> Result<(), EngineError> {
        self.settle(index).await?;
        if let Some(links) = self.waiting_links.remove(&index) {
            if self.failed.contains(&index) {
                for link in &links {
                    self.link_failed(link, "its leader could not be transferred")
                        .await?;
                    self.settle(link.index).await?;
                }
            } else {
                self.make_links(links).await?;
            }
        }
        Ok(())
    }

    pub(super) async fn link_failed(
        &mut self,
        link: &LinkRequest,
        why: &str,
    ) -> Result<(), EngineError> {
        self.stats.file_errors += 1;
        self.failed.insert(link.index);
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
            self.settle(link.index).await?;
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
        let through = self.unresolved.first().copied().unwrap_or(self.next_index);
        if through > self.acked {
            self.acked = through;
            send(&self.tx, Message::Ack { through }).await?;
        }
        Ok(())
    }
}
