//! A tree's every attribute, read with `lstat` (never following a link), and the
//! comparison of two trees attribute by attribute.
//!
//! `diff` is what "the target is an exact copy of the source" means; `diff_untouched`
//! additionally demands the same inodes and ctimes, i.e. that nobody wrote to the tree at
//! all (ctime changes on every chmod, chown, utimes, xattr write, rename or content write).

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use ferry_proto::escape;

use crate::files::at;

/// A sparse source file's copy may use this many more 512-byte blocks than the source
/// (filesystem metadata, block rounding) and still count as sparse.
const SPARSE_SLACK_BLOCKS: u64 = 256;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub kind: &'static str,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: (i64, i64),
    pub ctime: (i64, i64),
    pub size: u64,
    pub blocks: u64,
    pub content: Option<[u8; 32]>,
    pub link: Option<Vec<u8>>,
    pub rdev: u64,
    pub xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
    pub inode: (u64, u64),
    pub nlink: u64,
}

/// Every entry under a root (the root itself under the empty path), keyed by relative path.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub root: PathBuf,
    pub nodes: BTreeMap<Vec<u8>, Node>,
}

impl Snapshot {
    pub fn take(root: &Path) -> Snapshot {
        let mut nodes = BTreeMap::new();
        walk(root, Vec::new(), &mut nodes);
        Snapshot {
            root: root.to_path_buf(),
            nodes,
        }
    }

    pub fn get(&self, rel: &[u8]) -> &Node {
        self.nodes
            .get(rel)
            .unwrap_or_else(|| panic!("{}: not in the tree at {:?}", show(rel), self.root))
    }

    /// The snapshot without `rel` and everything below it.
    pub fn without(mut self, rel: &[u8]) -> Snapshot {
        let mut prefix = rel.to_vec();
        prefix.push(b'/');
        self.nodes
            .retain(|k, _| k != rel && !k.starts_with(&prefix));
        self
    }

    /// The names of the files sharing each inode (sorted): one pass, so that comparing
    /// the link groups of a large tree is not quadratic.
    fn link_groups(&self) -> std::collections::HashMap<(u64, u64), Vec<String>> {
        let mut groups: std::collections::HashMap<_, Vec<String>> = Default::default();
        for (k, n) in &self.nodes {
            if n.kind == "file" {
                groups.entry(n.inode).or_default().push(show(k));
            }
        }
        groups
    }
}

/// How a relative path is shown in messages.
pub fn show(rel: &[u8]) -> String {
    if rel.is_empty() {
        ".".to_string()
    } else {
        format!("{:?}", escape(rel))
    }
}

fn walk(root: &Path, rel: Vec<u8>, nodes: &mut BTreeMap<Vec<u8>, Node>) {
    let path = at(root, &rel);
    let node = read_node(&path);
    let is_dir = node.kind == "dir";
    nodes.insert(rel.clone(), node);
    if !is_dir {
        return;
    }
    let mut names: Vec<Vec<u8>> = fs::read_dir(&path)
        .unwrap_or_else(|e| panic!("read_dir {path:?}: {e}"))
        .map(|e| e.expect("dir entry").file_name().as_bytes().to_vec())
        .collect();
    names.sort();
    for name in names {
        let mut child = rel.clone();
        if !child.is_empty() {
            child.push(b'/');
        }
        child.extend_from_slice(&name);
        walk(root, child, nodes);
    }
}

fn read_node(path: &Path) -> Node {
    let m = fs::symlink_metadata(path).unwrap_or_else(|e| panic!("lstat {path:?}: {e}"));
    let kind = match m.mode() & 0o170000 {
        0o100000 => "file",
        0o040000 => "dir",
        0o120000 => "symlink",
        0o010000 => "fifo",
        0o020000 => "chardev",
        0o060000 => "blockdev",
        0o140000 => "socket",
        _ => "unknown",
    };
    let content = (kind == "file").then(|| hash_file(path));
    let link = (kind == "symlink").then(|| {
        fs::read_link(path)
            .unwrap_or_else(|e| panic!("readlink {path:?}: {e}"))
            .as_os_str()
            .as_bytes()
            .to_vec()
    });
    Node {
        kind,
        mode: m.mode() & 0o7777,
        uid: m.uid(),
        gid: m.gid(),
        mtime: (m.mtime(), m.mtime_nsec()),
        ctime: (m.ctime(), m.ctime_nsec()),
        size: m.size(),
        blocks: m.blocks(),
        content,
        link,
        rdev: m.rdev(),
        xattrs: read_xattrs(path),
        inode: (m.dev(), m.ino()),
        nlink: m.nlink(),
    }
}

fn hash_file(path: &Path) -> [u8; 32] {
    let mut f = fs::File::open(path).unwrap_or_else(|e| panic!("open {path:?}: {e}"));
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .unwrap_or_else(|e| panic!("read {path:?}: {e}"));
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    *hasher.finalize().as_bytes()
}

/// `user.*` and POSIX ACL xattrs; `security.*` (SELinux labels) and the rest are ignored.
fn read_xattrs(path: &Path) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut list = vec![0u8; 64 * 1024];
    let n = rustix::fs::llistxattr(path, &mut list[..])
        .unwrap_or_else(|e| panic!("listxattr {path:?}: {e}"));
    let mut out = BTreeMap::new();
    for name in list[..n].split(|&b| b == 0).filter(|n| !n.is_empty()) {
        if !(name.starts_with(b"user.") || name.starts_with(b"system.posix_acl_")) {
            continue;
        }
        let mut value = vec![0u8; 128 * 1024];
        let len = rustix::fs::lgetxattr(path, name, &mut value[..])
            .unwrap_or_else(|e| panic!("getxattr {path:?} {}: {e}", escape(name)));
        value.truncate(len);
        out.insert(name.to_vec(), value);
    }
    out
}

/// Every way `dst` is not an exact copy of `src`, one line each, naming path and attribute.
pub fn diff(src: &Snapshot, dst: &Snapshot) -> Vec<String> {
    let mut out = Vec::new();
    let (src_groups, dst_groups) = (src.link_groups(), dst.link_groups());
    for (rel, s) in &src.nodes {
        let p = show(rel);
        let Some(d) = dst.nodes.get(rel) else {
            out.push(format!("{p}: missing at target (source has a {})", s.kind));
            continue;
        };
        if s.kind != d.kind {
            out.push(format!("{p}: kind: source {}, target {}", s.kind, d.kind));
            continue;
        }
        let mut attr = |name: &str, a: String, b: String| {
            if a != b {
                out.push(format!("{p}: {name}: source {a}, target {b}"));
            }
        };
        attr("mode", format!("{:04o}", s.mode), format!("{:04o}", d.mode));
        attr("uid", s.uid.to_string(), d.uid.to_string());
        attr("gid", s.gid.to_string(), d.gid.to_string());
        attr("mtime", fmt_time(s.mtime), fmt_time(d.mtime));
        if s.kind != "dir" {
            attr("size", s.size.to_string(), d.size.to_string());
        }
        attr("content (blake3)", hex(s.content), hex(d.content));
        attr("symlink target", fmt_link(&s.link), fmt_link(&d.link));
        attr("rdev", format!("{:#x}", s.rdev), format!("{:#x}", d.rdev));
        for name in s.xattrs.keys().chain(d.xattrs.keys()) {
            let (a, b) = (s.xattrs.get(name), d.xattrs.get(name));
            if a != b {
                out.push(format!(
                    "{p}: xattr {}: source {}, target {}",
                    escape(name),
                    fmt_value(a),
                    fmt_value(b)
                ));
            }
        }
        if s.kind == "file" {
            let (a, b) = (&src_groups[&s.inode], &dst_groups[&d.inode]);
            if a != b {
                out.push(format!("{p}: hard-link group: source {a:?}, target {b:?}"));
            }
            let sparse = s.blocks * 512 + SPARSE_SLACK_BLOCKS * 512 < s.size;
            if sparse && d.blocks > s.blocks + SPARSE_SLACK_BLOCKS {
                out.push(format!(
                    "{p}: sparseness: source {} blocks of 512 B for {} bytes, target {} blocks",
                    s.blocks, s.size, d.blocks
                ));
            }
        }
    }
    for (rel, d) in &dst.nodes {
        if !src.nodes.contains_key(rel) {
            out.push(format!(
                "{}: extra at target (a {} the source does not have)",
                show(rel),
                d.kind
            ));
        }
    }
    // A missing directory would otherwise repeat for everything below it.
    out.dedup();
    out
}

/// `diff` plus: the same inodes and ctimes, so nothing was written, replaced or re-set.
pub fn diff_untouched(before: &Snapshot, after: &Snapshot) -> Vec<String> {
    let mut out = diff(before, after);
    for (rel, b) in &before.nodes {
        if let Some(a) = after.nodes.get(rel) {
            if a.inode != b.inode {
                out.push(format!(
                    "{}: replaced (inode {:?} -> {:?})",
                    show(rel),
                    b.inode,
                    a.inode
                ));
            }
            if a.ctime != b.ctime {
                out.push(format!(
                    "{}: ctime changed ({} -> {}): something wrote to it",
                    show(rel),
                    fmt_time(b.ctime),
                    fmt_time(a.ctime)
                ));
            }
        }
    }
    out
}

/// Panics unless `dst` is an exact copy of `src`, listing every difference.
#[track_caller]
pub fn assert_trees_equal(src: &Path, dst: &Path) {
    let problems = diff(&Snapshot::take(src), &Snapshot::take(dst));
    assert!(
        problems.is_empty(),
        "target {dst:?} is not an exact copy of source {src:?}:\n  {}",
        problems.join("\n  ")
    );
}

/// Panics unless nothing in the tree changed between the two snapshots.
#[track_caller]
pub fn assert_untouched(before: &Snapshot, after: &Snapshot) {
    let problems = diff_untouched(before, after);
    assert!(
        problems.is_empty(),
        "tree {:?} was modified:\n  {}",
        before.root,
        problems.join("\n  ")
    );
}

fn fmt_time((sec, nsec): (i64, i64)) -> String {
    format!("{sec}.{nsec:09}")
}

fn hex(h: Option<[u8; 32]>) -> String {
    h.map(|h| h.iter().take(8).map(|b| format!("{b:02x}")).collect())
        .unwrap_or_else(|| "-".to_string())
}

fn fmt_link(l: &Option<Vec<u8>>) -> String {
    l.as_ref()
        .map(|l| format!("{:?}", escape(l)))
        .unwrap_or_else(|| "-".to_string())
}

fn fmt_value(v: Option<&Vec<u8>>) -> String {
    v.map(|v| format!("{:?}", escape(v)))
        .unwrap_or_else(|| "(absent)".to_string())
}
