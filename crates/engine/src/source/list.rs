//! The listing's side of the source: the walker thread that reads the tree one directory
//! at a time into a bounded channel, and the cutting of each directory's listing into
//! frames the source core can list ([`Frame`]), each regular file with what a sender
//! needs to read it ([`FileInfo`]). How far ahead the frames may go (the window) is the
//! core's rule; this module only prepares them.
//!
//! ```text
//! walker thread ──Listing (channel of 4)──▶ driver ──frames()──▶ Frame.. ──▶ core.list
//! ```

use ferry_proto::{escape, Content, Entry, Limits, RelPath};
use ferry_tree::{Listing, Walker};
use tokio::sync::mpsc;

use super::send::FileInfo;
use crate::error::EngineError;

/// Listing frames are cut near this many encoded bytes.
const FRAME_TARGET: usize = 512 * 1024;

/// Directory listings read ahead of the driver.
const LISTINGS_AHEAD: usize = 4;

/// One `List` frame to be: some of a directory's children (the core numbers them).
pub struct Frame {
    pub dir: RelPath,
    pub entries: Vec<(Entry, Option<FileInfo>)>,
    pub dir_done: bool,
    pub dir_complete: bool,
}

/// Starts the walker on its own thread; its listings come out of the returned channel,
/// which ends when the walk does. The thread stops early once the channel is dropped.
pub fn spawn_walker(
    walker: Walker,
) -> Result<(mpsc::Receiver<Listing>, std::thread::JoinHandle<()>), EngineError> {
    let (listing_tx, listings) = mpsc::channel::<Listing>(LISTINGS_AHEAD);
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
    Ok((listings, walk))
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

/// Cuts one directory's listing into frames that respect the entry and size limits
/// (an empty directory is one empty frame), numbered from `next`, the index the core
/// gives the next entry listed. The walker numbers entries too: a gap is our bug.
pub fn frames(listing: Listing, next: u64, limits: &Limits) -> Result<Vec<Frame>, EngineError> {
    let Listing {
        dir,
        entries,
        complete,
        ..
    } = listing;
    let mut frames: Vec<Frame> = Vec::new();
    let mut bytes = 0usize;
    for (index, source_entry) in (next..).zip(entries) {
        if source_entry.index != index {
            return Err(EngineError::file_io(format!(
                "internal error: walker indices out of order at {}",
                escape(dir.as_bytes())
            )));
        }
        let entry = source_entry.entry;
        let size = encoded_size(&entry);
        let full = frames.last().is_none_or(|frame| {
            frame.entries.len() >= limits.max_entries_per_frame || bytes + size > FRAME_TARGET
        });
        if full {
            frames.push(Frame {
                dir: dir.clone(),
                entries: Vec::new(),
                dir_done: false,
                dir_complete: complete,
            });
            bytes = 0;
        }
        bytes += size;
        let file = file_info(&dir, &entry, limits)?;
        frames
            .last_mut()
            .expect("pushed")
            .entries
            .push((entry, file));
    }
    if frames.is_empty() {
        frames.push(Frame {
            dir,
            entries: Vec::new(),
            dir_done: false,
            dir_complete: complete,
        });
    }
    frames.last_mut().expect("one at least").dir_done = true;
    Ok(frames)
}

/// What a sender needs of a regular file (none for other kinds).
fn file_info(
    dir: &RelPath,
    entry: &Entry,
    limits: &Limits,
) -> Result<Option<FileInfo>, EngineError> {
    let Content::File { size, .. } = entry.content else {
        return Ok(None);
    };
    let path = dir
        .join(&entry.name, limits)
        .map_err(|e| EngineError::usage(format!("source name refused: {e}")))?;
    Ok(Some(FileInfo {
        path,
        size,
        mtime: entry.meta.mtime,
    }))
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

#[cfg(test)]
mod tests {
    use ferry_proto::{Meta, Timestamp};
    use ferry_tree::SourceEntry;

    use super::*;

    fn listing(dir: &[u8], first: u64, files: u64) -> Listing {
        let entries = (0..files)
            .map(|k| SourceEntry {
                index: first + k,
                entry: Entry {
                    name: format!("f{k}").into_bytes(),
                    meta: Meta {
                        mtime: Timestamp { sec: 5, nsec: 6 },
                        ..Meta::default()
                    },
                    content: Content::File {
                        size: k,
                        checksum: None,
                    },
                },
            })
            .collect();
        Listing {
            dir: RelPath::new(dir.to_vec(), &Limits::default()).unwrap(),
            entries,
            complete: true,
            errors: Vec::new(),
        }
    }

    #[test]
    fn a_listing_is_cut_at_the_frame_limit_and_its_last_frame_ends_the_dir() {
        let limits = Limits {
            max_entries_per_frame: 2,
            ..Limits::default()
        };
        let frames = frames(listing(b"d", 7, 5), 7, &limits).unwrap();
        let shape: Vec<(usize, bool)> = frames
            .iter()
            .map(|f| (f.entries.len(), f.dir_done))
            .collect();
        assert_eq!(shape, [(2, false), (2, false), (1, true)]);
        let info = frames[1].entries[1].1.as_ref().unwrap();
        assert_eq!(info.path.as_bytes(), b"d/f3");
        assert_eq!((info.size, info.mtime), (3, Timestamp { sec: 5, nsec: 6 }));
    }

    #[test]
    fn an_empty_directory_is_one_empty_frame() {
        let frames = frames(listing(b"e", 3, 0), 3, &Limits::default()).unwrap();
        assert_eq!(frames.len(), 1);
        assert!(frames[0].entries.is_empty() && frames[0].dir_done);
    }

    #[test]
    fn walker_indices_that_skip_are_an_internal_error() {
        let Err(e) = frames(listing(b"d", 4, 2), 3, &Limits::default()) else {
            panic!("a gap was taken");
        };
        assert!(
            e.message.contains("walker indices out of order at d"),
            "{e}"
        );
    }
}
