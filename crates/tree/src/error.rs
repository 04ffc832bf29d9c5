//! The one error type of the crate, and the small helpers that build it with a path
//! a person can read.

use ferry_proto::{escape, PathError, RelPath};
use rustix::io::Errno;

/// Why a filesystem operation failed.
///
/// Callers classify with [`TreeError::is_no_space`] and friends rather than by matching
/// raw errno values: no space is permanent for the whole run, a missing entry usually
/// means it vanished while a live volume was being copied.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    /// An OS call failed. `op` names the call ("open", "rename"...); `path` is escaped
    /// for display and relative to the volume or source root.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: String,
        source: std::io::Error,
    },
    /// A path crosses a symlink or leaves the volume (`ELOOP`/`EXDEV` from `openat2`, or
    /// a non-directory where a directory is needed).
    #[error("{path}: crosses a symlink or leaves the volume")]
    Escape { path: String },
    /// A directory of the volume was renamed out of it (or replaced) while the session
    /// wrote into it: nothing more is put there.
    #[error("{path}: the directory was moved or replaced by another process during the session (it is no longer at this path in the volume); nothing more is written into it; run the transfer again")]
    Moved { path: String },
    /// A name or path failed validation.
    #[error("invalid name: {source}")]
    BadName { source: PathError },
}

impl From<PathError> for TreeError {
    fn from(source: PathError) -> Self {
        TreeError::BadName { source }
    }
}

impl TreeError {
    /// `ENOSPC` or `EDQUOT`: the target is full, retrying will not help.
    pub fn is_no_space(&self) -> bool {
        self.errno() == Some(Errno::NOSPC) || self.errno() == Some(Errno::DQUOT)
    }

    /// `ENOENT`: the entry is not there (on a live source: it vanished).
    pub fn is_not_found(&self) -> bool {
        self.errno() == Some(Errno::NOENT)
    }

    /// Whether it ends a whole run rather than one file: the volume itself is failing
    /// (full, or read-only), so every later file would fail the same way.
    pub fn is_fatal(&self) -> bool {
        self.is_no_space() || self.is_read_only_fs()
    }

    /// `EROFS`: the target volume is mounted read-only.
    pub fn is_read_only_fs(&self) -> bool {
        self.errno() == Some(Errno::ROFS)
    }

    fn errno(&self) -> Option<Errno> {
        match self {
            TreeError::Io { source, .. } => source.raw_os_error().map(Errno::from_raw_os_error),
            _ => None,
        }
    }
}

/// `dir/name` escaped for messages (`name` alone at the root).
pub(crate) fn shown(dir: &RelPath, name: &[u8]) -> String {
    if dir.is_root() && name.is_empty() {
        ".".to_string()
    } else if dir.is_root() {
        escape(name)
    } else if name.is_empty() {
        escape(dir.as_bytes())
    } else {
        format!("{}/{}", escape(dir.as_bytes()), escape(name))
    }
}

/// Builds [`TreeError::Io`] from an errno.
pub(crate) fn io_err(op: &'static str, path: String, errno: Errno) -> TreeError {
    TreeError::Io {
        op,
        path,
        source: errno.into(),
    }
}

/// Builds [`TreeError::Io`] from a `std::io::Error`.
pub(crate) fn std_err(op: &'static str, path: String, source: std::io::Error) -> TreeError {
    TreeError::Io { op, path, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_by_errno() {
        let e = |errno| io_err("write", "f".into(), errno);
        assert!(e(Errno::NOSPC).is_no_space());
        assert!(e(Errno::DQUOT).is_no_space());
        assert!(e(Errno::NOENT).is_not_found());
        assert!(e(Errno::ROFS).is_read_only_fs());
        assert!(!e(Errno::ACCESS).is_no_space());
        let escape = TreeError::Escape { path: "a".into() };
        assert!(!escape.is_not_found());
        assert_eq!(
            e(Errno::NOENT).to_string(),
            format!("write f: {}", std::io::Error::from(Errno::NOENT))
        );
    }

    #[test]
    fn paths_are_escaped_for_people() {
        let limits = ferry_proto::Limits::default();
        let dir = RelPath::new(b"a\nb".to_vec(), &limits).unwrap();
        assert_eq!(shown(&dir, b"c\xff"), "a\\x0ab/c\\xff");
        assert_eq!(shown(&RelPath::root(), b""), ".");
        assert_eq!(shown(&RelPath::root(), b"x"), "x");
        assert_eq!(shown(&dir, b""), "a\\x0ab");
    }
}
