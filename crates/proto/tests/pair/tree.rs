//! A fake volume: paths to nodes, with hard links as shared content. Random trees for
//! both sides, and the walker's order (each directory listed before its children are,
//! names sorted by their bytes).

use std::collections::BTreeMap;

use super::Dice;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    Dir,
    File(Vec<u8>),
    Symlink(Vec<u8>),
    /// Another name for the file at this path (listed before it).
    Link(String),
}

/// A tree: every path ("" is the root, always a directory) and what is there.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tree(pub BTreeMap<String, Node>);

pub fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

pub fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(p, _)| p)
}

impl Tree {
    /// A random tree of at most a few dozen entries, three levels deep; hard links name
    /// files that come before them in walker order.
    pub fn random(rng: &mut Dice, flavour: u64) -> Tree {
        let mut tree = Tree::default();
        tree.0.insert(String::new(), Node::Dir);
        let mut dirs = vec![(String::new(), 0)];
        while let Some((dir, depth)) = dirs.pop() {
            for k in 0..rng.below(6) {
                let path = join(&dir, &format!("n{k}"));
                let node = match rng.below(6) {
                    0 if depth < 2 => {
                        dirs.push((path.clone(), depth + 1));
                        Node::Dir
                    }
                    1 => Node::Symlink(format!("t{}", rng.below(3)).into_bytes()),
                    _ => {
                        let len = rng.below(3 + 40 * flavour) as usize;
                        let seed = rng.below(4) as u8;
                        Node::File((0..len).map(|i| seed.wrapping_add(i as u8)).collect())
                    }
                };
                tree.0.insert(path, node);
            }
        }
        // Some later files become hard links to earlier ones.
        let order = tree.walk_order();
        let mut files_before: Vec<String> = Vec::new();
        for path in order {
            if let Some(Node::File(_)) = tree.0.get(&path) {
                if !files_before.is_empty() && rng.below(5) == 0 {
                    let leader =
                        files_before[rng.below(files_before.len() as u64) as usize].clone();
                    tree.0.insert(path, Node::Link(leader));
                } else {
                    files_before.push(path);
                }
            }
        }
        tree
    }

    /// Children of `dir`, sorted by name.
    pub fn children(&self, dir: &str) -> Vec<(String, String)> {
        self.0
            .keys()
            .filter(|p| !p.is_empty() && parent(p) == dir)
            .map(|p| (p.rsplit('/').next().unwrap_or(p).to_string(), p.clone()))
            .collect()
    }

    /// Directories in the order a walker lists them: each before its children.
    pub fn dirs_in_walk_order(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![String::new()];
        while let Some(dir) = stack.pop() {
            for (_, path) in self.children(&dir).into_iter().rev() {
                if self.0.get(&path) == Some(&Node::Dir) {
                    stack.push(path);
                }
            }
            out.push(dir);
        }
        out
    }

    /// Every entry in listing order.
    pub fn walk_order(&self) -> Vec<String> {
        self.dirs_in_walk_order()
            .into_iter()
            .flat_map(|dir| self.children(&dir).into_iter().map(|(_, p)| p))
            .collect()
    }

    /// What a reader sees: hard links read through to their leader's content.
    pub fn content(&self, path: &str) -> Option<Vec<u8>> {
        match self.0.get(path)? {
            Node::File(bytes) => Some(bytes.clone()),
            Node::Link(leader) => self.content(leader),
            _ => None,
        }
    }

    /// The tree as a reader sees it, links resolved: what the two sides must agree on.
    pub fn seen(&self) -> BTreeMap<String, Node> {
        self.0
            .iter()
            .map(|(path, node)| {
                let node = match node {
                    Node::Link(_) => Node::File(self.content(path).unwrap_or_default()),
                    other => other.clone(),
                };
                (path.clone(), node)
            })
            .collect()
    }

    /// Removes `path` and everything under it.
    pub fn remove(&mut self, path: &str) {
        let prefix = format!("{path}/");
        self.0.retain(|p, _| p != path && !p.starts_with(&prefix));
    }
}

/// The test's own 32-byte content hash (the pair does not need BLAKE3's strength, only
/// that different content hashes differently in practice).
pub fn hash(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, chunk) in out.chunks_mut(8).enumerate() {
        for &b in bytes.iter().chain(&[i as u8]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        chunk.copy_from_slice(&h.to_le_bytes());
    }
    out
}
