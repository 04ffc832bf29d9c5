//! What the source's session shares beyond its driver: with the sender threads (the counts
//! and live progress they add what they sent to, the writer's compression counts) and with the push
//! that runs it (counts and files committed, read after an attempt is cut, and the files
//! delivered by earlier attempts). The session's rules and its per-file state are the
//! source core's, owned by the driver alone.

use std::collections::HashMap;
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
