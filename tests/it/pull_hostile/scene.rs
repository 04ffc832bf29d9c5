//! Where a hostile-server case runs: DEST, with files of its own and symlinks that
//! point at a sentinel directory next to it; and what must hold of them after any case,
//! in-process or real.

use std::path::PathBuf;

use tempfile::TempDir;

use super::FILE_DATA;
use crate::files::{symlink, write};
use crate::snapshot::{assert_untouched, show, Snapshot};

/// Where a case runs: `TMP/dest` (DEST) next to `TMP/sentinel`, and a name no other
/// test or run uses, for absolute paths that must not come to exist.
pub struct Place {
    pub tmp: PathBuf,
    pub uniq: String,
}

impl Place {
    /// `pattern` with `TMP` and `UNIQ` filled in.
    pub fn path(&self, pattern: &str) -> PathBuf {
        let tmp = self.tmp.to_str().expect("temp dir is UTF-8");
        PathBuf::from(pattern.replace("TMP", tmp).replace("UNIQ", &self.uniq))
    }
}

/// `TMP/dest` (DEST, with files of its own and symlinks to the sentinel) next to
/// `TMP/sentinel`, and how they were.
pub fn scene() -> (TempDir, Place, Snapshot) {
    let tmp = TempDir::new().unwrap();
    let place = Place {
        tmp: tmp.path().to_path_buf(),
        uniq: tmp
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned(),
    };
    let dest = place.tmp.join("dest");
    write(&dest.join("pre.txt"), b"pre-existing\n", 0o644);
    write(&dest.join("predir/inner.txt"), b"inner\n", 0o600);
    symlink(b"pre.txt", &dest.join("prelink"));
    symlink(b"../sentinel/s.txt", &dest.join("out-link"));
    symlink(b"../sentinel/sub", &dest.join("out-dir"));
    write(&place.tmp.join("sentinel/s.txt"), b"sentinel\n", 0o644);
    write(
        &place.tmp.join("sentinel/sub/t.txt"),
        b"sentinel t\n",
        0o600,
    );
    let before = Snapshot::take(&place.tmp);
    (tmp, place, before)
}

/// Asserts nothing outside DEST changed, nothing exists at the `absent` paths, and no
/// file in DEST is half-written.
pub fn assert_contained(place: &Place, before: &Snapshot, absent: &[&str], dump: &str) {
    let after = Snapshot::take(&place.tmp);
    assert_untouched(
        &before.clone().without(b"dest"),
        &after.clone().without(b"dest"),
    );
    for pattern in absent {
        let path = place.path(pattern);
        assert!(
            std::fs::symlink_metadata(&path).is_err(),
            "{path:?} was created by the pull\n{dump}"
        );
    }
    assert_no_half_written(before, &after, dump);
}

/// Asserts DEST's own entries, and its root's mode and owner, are as they were.
pub fn assert_own_entries_untouched(place: &Place, before: &Snapshot) {
    let after = Snapshot::take(&place.tmp);
    let own = |s: &Snapshot| {
        let mut s = s.clone();
        s.nodes
            .retain(|k, _| k.starts_with(b"dest/") && before.nodes.contains_key(k));
        s
    };
    assert_untouched(&own(before), &own(&after));
    let (b, a) = (before.get(b"dest"), after.get(b"dest"));
    assert_eq!(
        (b.mode, b.uid, b.gid),
        (a.mode, a.uid, a.gid),
        "DEST's mode or owner changed"
    );
}

/// Every regular file in DEST that was not there before (or was replaced) holds all of
/// [`FILE_DATA`] under a final name: nothing cut short, nothing past the declared size,
/// no partial left behind.
fn assert_no_half_written(before: &Snapshot, after: &Snapshot, dump: &str) {
    let whole = *blake3::hash(FILE_DATA).as_bytes();
    for (rel, node) in &after.nodes {
        let Some(name) = rel.strip_prefix(b"dest/") else {
            continue;
        };
        if node.kind != "file" || before.nodes.get(rel) == Some(node) {
            continue;
        }
        let base = name.rsplit(|&b| b == b'/').next().unwrap_or(name);
        assert!(
            !(base.starts_with(b".ferry.") && base.ends_with(b".partial")),
            "a partial file was left in DEST: {}\n{dump}",
            show(rel)
        );
        assert_eq!(
            node.content,
            Some(whole),
            "{} holds {} bytes that are not what the server sent and hashed\n{dump}",
            show(rel),
            node.size
        );
    }
}
