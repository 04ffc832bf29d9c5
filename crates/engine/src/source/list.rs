//! Streams the source tree to the target as `List` frames, never more than a window of
//! entries ahead of what the target has resolved, so memory on both sides stays flat
//! however large the tree.
//!
//! ```text
//! walker thread ──Listing──▶ lister task ──List frames──▶ writer
//!                                 ▲
//!                    Ack{through} │ (window)
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use ferry_proto::{escape, Content, Entry, Limits, Message};
use ferry_tree::{Listing, Walker};
use tokio::sync::{mpsc, Notify};

use super::send::FileInfo;
use crate::error::EngineError;
use crate::framed::FrameSender;
use crate::report::progress::Progress;
use crate::report::summary::SourceCounts;
use crate::report::Reporter;

/// Listing frames are cut near this many encoded bytes.
const FRAME_TARGET: usize = 512 * 1024;

/// State shared by the lister, the reader of target replies and the senders.
#[derive(Default)]
pub struct Shared {
    /// Files listed and not yet resolved by the target, by index.
    pub files: Mutex<BTreeMap<u64, FileInfo>>,
    /// (entries listed so far, watermark from the target's last Ack)
    pub progress: Mutex<(u64, u64)>,
    pub acked: Notify,
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
    /// Hard links listed and not yet resolved (counted as files in progress).
    pub links: Mutex<BTreeSet<u64>>,
    /// Bytes of signatures received for files not yet answered by a sender: bounded by
    /// the protocol's `Limits::signature_window`.
    pub signature_bytes: std::sync::atomic::AtomicUsize,
    pub live: Arc<Progress>,
}

impl Shared {
    /// Records the target's watermark and forgets files below it.
    pub fn ack(&self, through: u64) -> Result<(), EngineError> {
        {
            let mut progress = self.progress.lock().expect("progress lock");
            if through < progress.1 || through > progress.0 {
                return Err(EngineError::protocol(format!(
                    "target acknowledged entries through {through}, but {} were listed and {} acknowledged before",
                    progress.0, progress.1
                )));
            }
            progress.1 = through;
        }
        let mut files = self.files.lock().expect("files lock");
        let rest = files.split_off(&through);
        let done = std::mem::replace(&mut *files, rest);
        drop(files);
        let mut links = self.links.lock().expect("links lock");
        let rest = links.split_off(&through);
        let links_done = std::mem::replace(&mut *links, rest).len() as u64;
        drop(links);
        let mut delivered = self.delivered.lock().expect("delivered lock");
        let (mut unchanged, mut skipped, mut carried, mut wanted) = (0, 0, (0, 0), (0, 0));
        for f in done.values() {
            // Resolved files leave `delivered`, which so holds only files sent and not
            // yet resolved: at most a window's worth, however large the tree.
            let sent_before = delivered.remove(f.path.as_bytes()).is_some();
            if f.wanted {
                wanted.0 += 1;
                wanted.1 += f.size;
                continue;
            }
            skipped += f.size;
            if sent_before {
                carried.0 += 1;
                carried.1 += f.size;
            } else {
                unchanged += 1;
            }
        }
        drop(delivered);
        let mut resolved = self.resolved_wanted.lock().expect("resolved lock");
        resolved.0 += wanted.0;
        resolved.1 += wanted.1;
        drop(resolved);
        self.counts.lock().expect("counts lock").files_unchanged += unchanged;
        let mut total = self.carried.lock().expect("carried lock");
        total.0 += carried.0;
        total.1 += carried.1;
        drop(total);
        self.live.resolved(done.len() as u64 + links_done, skipped);
        self.acked.notify_one();
        Ok(())
    }

    /// Marks file `index` as asked for; false if it is not a listed, unresolved file, or
    /// was asked for twice already (a target asks again only once, after a mismatch: more
    /// is a peer queueing work without bound).
    pub fn want(&self, index: u64) -> bool {
        match self.files.lock().expect("files lock").get_mut(&index) {
            Some(info) if info.asks < 2 => {
                info.wanted = true;
                info.asks += 1;
                true
            }
            _ => false,
        }
    }

    pub fn file(&self, index: u64) -> Option<FileInfo> {
        self.files.lock().expect("files lock").get(&index).cloned()
    }

    /// Waits until entries up to `upto` fit the protocol's listing window
    /// ([`Limits::window`]) past the target's last watermark; the target refuses more.
    async fn wait_for_window(&self, upto: u64, window: u64) {
        loop {
            let notified = self.acked.notified();
            if upto <= self.progress.lock().expect("progress lock").1 + window {
                return;
            }
            notified.await;
        }
    }
}

/// Runs the walker on a thread and the lister loop here; returns when `ListEnd` is queued.
pub async fn run_lister(
    walker: Walker,
    limits: Limits,
    shared: Arc<Shared>,
    tx: FrameSender,
    reporter: Reporter,
) -> Result<(), EngineError> {
    let (listing_tx, mut listings) = mpsc::channel::<Listing>(4);
    let pause = scan_pause();
    let walk = std::thread::Builder::new()
        .name("ferry-walk".into())
        .spawn(move || {
            let mut walker = walker.on_this_thread();
            while let Some(listing) = walker.next_listing() {
                if let Some(pause) = pause {
                    std::thread::sleep(pause);
                }
                if listing_tx.blocking_send(listing).is_err() {
                    break;
                }
            }
        })
        .map_err(|e| EngineError::file_io(format!("cannot start the walker thread: {e}")))?;

    let mut next = 0u64;
    while let Some(listing) = listings.recv().await {
        for error in &listing.errors {
            reporter.warning(&listing.dir.to_string(), &error.to_string());
        }
        let errors =
            listing.errors.len() as u64 + u64::from(!listing.complete && listing.errors.is_empty());
        shared.counts.lock().expect("counts lock").read_errors += errors;
        let dir = listing.dir.clone();
        let complete = listing.complete;
        let mut frames = split(listing, &limits);
        let last = frames.len().saturating_sub(1);
        if frames.is_empty() {
            frames.push((Vec::new(), Vec::new()));
        }
        for (i, (indices, entries)) in frames.into_iter().enumerate() {
            let first = indices.first().copied().unwrap_or(next);
            if first != next
                || indices
                    .iter()
                    .enumerate()
                    .any(|(k, &ix)| ix != first + k as u64)
            {
                return Err(EngineError::new(
                    crate::ExitCode::FileIo,
                    format!(
                        "internal error: walker indices out of order at {}",
                        escape(dir.as_bytes())
                    ),
                ));
            }
            let count = entries.len() as u64;
            shared.wait_for_window(next + count, limits.window).await;
            remember(&shared, &dir, first, &entries, &limits)?;
            next += count;
            shared.progress.lock().expect("progress lock").0 = next;
            let message = Message::List {
                dir: dir.as_bytes().to_vec(),
                first,
                entries,
                dir_done: i == last,
                dir_complete: complete,
            };
            tx.send(message)
                .await
                .map_err(|_| EngineError::socket("the connection closed while listing"))?;
        }
    }
    let _ = walk.join();
    shared.live.scan_done();
    let read_errors = shared.counts.lock().expect("counts lock").read_errors;
    tx.send(Message::ListEnd {
        entries: next,
        read_errors,
    })
    .await
    .map_err(|_| EngineError::socket("the connection closed while listing"))?;
    Ok(())
}

/// Test hook: `FERRY_TEST_SCAN_PAUSE_MS` makes the walker pause before each listing, so
/// tests can hold a connection idle the way a slow scan of a huge tree does (there is no
/// other deterministic way to make a real scan slow). Unset in normal use.
fn scan_pause() -> Option<std::time::Duration> {
    let ms: u64 = std::env::var("FERRY_TEST_SCAN_PAUSE_MS")
        .ok()?
        .parse()
        .ok()?;
    Some(std::time::Duration::from_millis(ms))
}

/// Cuts one directory's listing into frames that respect the entry and size limits.
fn split(listing: Listing, limits: &Limits) -> Vec<(Vec<u64>, Vec<Entry>)> {
    let mut frames = Vec::new();
    let mut indices = Vec::new();
    let mut entries = Vec::new();
    let mut bytes = 0usize;
    for source_entry in listing.entries {
        let size = encoded_size(&source_entry.entry);
        if !entries.is_empty()
            && (entries.len() >= limits.max_entries_per_frame || bytes + size > FRAME_TARGET)
        {
            frames.push((std::mem::take(&mut indices), std::mem::take(&mut entries)));
            bytes = 0;
        }
        bytes += size;
        indices.push(source_entry.index);
        entries.push(source_entry.entry);
    }
    if !entries.is_empty() {
        frames.push((indices, entries));
    }
    frames
}

fn encoded_size(entry: &Entry) -> usize {
    let xattrs: usize = entry
        .meta
        .xattrs
        .iter()
        .map(|x| 8 + x.name.len() + x.value.len())
        .sum();
    let content = match &entry.content {
        Content::Symlink { target } => target.len() + 4,
        Content::HardLink { path, .. } => path.len() + 12,
        _ => 41,
    };
    4 + entry.name.len() + 28 + xattrs + 1 + content
}

fn remember(
    shared: &Shared,
    dir: &ferry_proto::RelPath,
    first: u64,
    entries: &[Entry],
    limits: &Limits,
) -> Result<(), EngineError> {
    let mut files = shared.files.lock().expect("files lock");
    let mut links = shared.links.lock().expect("links lock");
    let mut counts = shared.counts.lock().expect("counts lock");
    for (k, entry) in entries.iter().enumerate() {
        counts.entries_total += 1;
        match &entry.content {
            Content::File { size, .. } => {
                counts.files_total += 1;
                counts.bytes_total += size;
                shared.live.listed(*size);
                let path = dir
                    .join(&entry.name, limits)
                    .map_err(|e| EngineError::usage(format!("source name refused: {e}")))?;
                files.insert(
                    first + k as u64,
                    FileInfo {
                        path,
                        size: *size,
                        mtime: entry.meta.mtime,
                        wanted: false,
                        asks: 0,
                    },
                );
            }
            Content::HardLink { .. } => {
                counts.files_total += 1;
                links.insert(first + k as u64);
                shared.live.listed(0);
            }
            _ => {}
        }
    }
    Ok(())
}
