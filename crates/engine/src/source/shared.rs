//! What the source's session shares beyond its driver: with the sender threads (the counts
//! and live progress they add what they sent to, the writer's compression counts) and with the push
//! that runs it (counts and files committed, read after an attempt is cut, and the files
//! delivered by earlier attempts). The session's rules and its per-file state are the
//! source core's, owned by the driver alone.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use ferry_proto::session::source::Resolved;

use ferry_proto::FileFailure;

use super::send::{FileInfo, Sent};
use crate::report::progress::Progress;
use crate::report::summary::SourceCounts;

/// State shared by one attempt's driver, its senders, and the push around it.
#[derive(Default)]
pub struct Shared {
    pub counts: Mutex<SourceCounts>,
    /// Files whose content went out whole (FileEnd sent) and that the target had not
    /// resolved when an attempt was cut, by path, with their size. Shared by all attempts
    /// of a push: such a file found unchanged by the next attempt was committed by the
    /// cut one, and is counted as transferred, not unchanged.
    pub delivered: Arc<Mutex<HashMap<Vec<u8>, u64>>>,
    /// Files and bytes committed by cut attempts, found unchanged by this one.
    pub carried: Mutex<(u64, u64)>,
    /// Files and bytes this attempt asked for that the target has resolved: if the
    /// attempt is then cut, they were committed without a `Done` to count them.
    pub resolved_wanted: Mutex<(u64, u64)>,
    /// Files one of whose ranges failed (`FileFailed`) and that the target has not
    /// resolved yet, by index: the file's other ranges failing too count it no more (at
    /// most a window's worth).
    pub failed_ranges: Mutex<HashSet<u64>>,
    /// This attempt's `--compress` state and counts.
    pub compression: Arc<crate::framed::Compression>,
    pub live: Arc<Progress>,
}

impl Shared {
    /// A file is handed to a sender: remembered as delivered until the target resolves
    /// it (before its FileEnd can go out, so the target's Ack cannot come first).
    pub fn delivering(&self, file: &FileInfo) {
        self.delivered
            .lock()
            .expect("delivered lock")
            .insert(file.path.as_bytes().to_vec(), file.size);
    }

    /// Counts what a sender sent of one range of file `index`: as [`Shared::sent`], but a
    /// failure only for the file's first failed range (each range of a file that changed
    /// fails on its own).
    pub fn sent_range(&self, index: u64, sent: &Sent) {
        let first = sent.failure.is_some()
            && self
                .failed_ranges
                .lock()
                .expect("failed ranges lock")
                .insert(index);
        match first || sent.failure.is_none() {
            true => self.sent(sent),
            false => self.sent(&Sent {
                failure: None,
                ..*sent
            }),
        }
    }

    /// Counts what a sender sent of one file.
    pub fn sent(&self, sent: &Sent) {
        let mut counts = self.counts.lock().expect("counts lock");
        counts.bytes_literal += sent.stats.literal;
        counts.bytes_matched += sent.stats.copied;
        counts.files_delta += u64::from(sent.as_delta);
        counts.bytes_resumed += sent.resumed;
        match sent.failure {
            Some(FileFailure::Vanished | FileFailure::Changed) => counts.vanished += 1,
            Some(FileFailure::ReadError) => counts.read_errors += 1,
            None => {}
        }
    }

    /// Counts what an `Ack` resolved: files the target had (unchanged, or committed by
    /// a cut attempt), files it asked for, and the progress of both.
    pub fn resolved(&self, resolved: &Resolved<FileInfo>) {
        let (mut unchanged, mut skipped, mut carried, mut wanted) = (0, 0, (0, 0), (0, 0));
        let mut delivered = self.delivered.lock().expect("delivered lock");
        for f in &resolved.files {
            // Resolved files leave `delivered`, which so holds only files sent and not
            // yet resolved: at most a window's worth, however large the tree.
            let sent_before = delivered.remove(f.file.path.as_bytes()).is_some();
            if f.wanted {
                wanted.0 += 1;
                wanted.1 += f.file.size;
                continue;
            }
            skipped += f.file.size;
            if sent_before {
                carried.0 += 1;
                carried.1 += f.file.size;
            } else {
                unchanged += 1;
            }
        }
        drop(delivered);
        let mut failed_ranges = self.failed_ranges.lock().expect("failed ranges lock");
        if !failed_ranges.is_empty() {
            failed_ranges.retain(|&index| index >= resolved.through);
        }
        drop(failed_ranges);
        let mut resolved_wanted = self.resolved_wanted.lock().expect("resolved lock");
        resolved_wanted.0 += wanted.0;
        resolved_wanted.1 += wanted.1;
        drop(resolved_wanted);
        self.counts.lock().expect("counts lock").files_unchanged += unchanged;
        let mut total = self.carried.lock().expect("carried lock");
        total.0 += carried.0;
        total.1 += carried.1;
        drop(total);
        self.live
            .resolved(resolved.files.len() as u64 + resolved.links, skipped);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(reason: FileFailure) -> Sent {
        Sent {
            failure: Some(reason),
            ..Sent::default()
        }
    }

    #[test]
    fn a_file_whose_ranges_fail_counts_once_until_it_is_resolved() {
        let shared = Shared::default();
        let vanished = || shared.counts.lock().unwrap().vanished;
        shared.sent_range(3, &failed(FileFailure::Changed));
        shared.sent_range(3, &failed(FileFailure::Changed));
        assert_eq!(vanished(), 1);
        // Another file's range counts on its own; the bytes of a failed range still do.
        let mut bytes = failed(FileFailure::Changed);
        bytes.stats.literal = 100;
        shared.sent_range(5, &bytes);
        shared.sent_range(5, &bytes);
        assert_eq!(vanished(), 2);
        assert_eq!(shared.counts.lock().unwrap().bytes_literal, 200);
        // Resolved through 4: file 3 is forgotten, file 5 is not.
        shared.resolved(&Resolved {
            through: 4,
            files: Vec::new(),
            links: 0,
        });
        shared.sent_range(3, &failed(FileFailure::ReadError));
        shared.sent_range(5, &failed(FileFailure::Changed));
        assert_eq!(vanished(), 2);
        assert_eq!(shared.counts.lock().unwrap().read_errors, 1);
        assert_eq!(*shared.failed_ranges.lock().unwrap(), HashSet::from([3, 5]));
    }
}
