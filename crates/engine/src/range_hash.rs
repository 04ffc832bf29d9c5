//! A large file's BLAKE3 from its ranges (protocol 6, `WantRange`/`RangeEnd`): each side
//! hashes a range on its own, where it reads or writes it, and the whole file's hash is
//! put together from the ranges' chaining values, in any order they complete.
//!
//! A range is [`RANGE`] bytes at a multiple of [`RANGE`] (a file's last range fewer), and
//! [`RANGE`] is a power of two times BLAKE3's 1 KiB chunk: every range but the last is a
//! complete subtree of BLAKE3's tree, the last a right edge that starts a subtree too, so
//! the file's tree above its ranges is BLAKE3's tree with ranges for leaves. The root of
//! that tree is exactly `blake3::hash` of the file; no new hash construction is made here.
//!
//! ```text
//! range k's bytes ─▶ RangeHasher::new(size, k·RANGE) ─▶ value of range k ─┐  (any order)
//!                                                         RangeMerger::add ◀┘
//!                                       every range in ─▶ RangeMerger::hash = blake3::hash(file)
//! ```
//!
//! A file of one range (at most [`RANGE`] bytes) has no tree above it: its range's value
//! is the file's hash itself (a root, not a chaining value). The protocol asks files in
//! ranges only from `4 × RANGE` bytes, but these functions take any size.
//!
//! Owns: the arithmetic of ranges and BLAKE3's tree. Must not import: files, sockets or
//! the session cores (pure functions of bytes; the roles call it).

use std::collections::BTreeMap;

use blake3::hazmat::{
    left_subtree_len, merge_subtrees_non_root, merge_subtrees_root, ChainingValue, HasherExt, Mode,
};
use ferry_proto::RANGE;

/// How many ranges a file of `size` bytes has (none when it is empty).
pub fn range_count(size: u64) -> u64 {
    size.div_ceil(RANGE)
}

/// The length of the range at `offset` of a file of `size` bytes.
pub fn range_len(size: u64, offset: u64) -> u64 {
    RANGE.min(size.saturating_sub(offset))
}

/// Hashes one range's bytes as they come, in order. Its value is the range's chaining
/// value, or the file's hash when the range is the whole file.
#[derive(Clone, Debug)]
pub struct RangeHasher {
    hasher: blake3::Hasher,
    whole_file: bool,
}

impl RangeHasher {
    /// A hasher for the range at `offset` of a file of `size` bytes.
    ///
    /// # Panics
    /// If `offset` is not a multiple of [`RANGE`] below `size`: the caller checked the
    /// range against its ask (a peer's offset never reaches here unchecked).
    pub fn new(size: u64, offset: u64) -> RangeHasher {
        assert!(
            offset.is_multiple_of(RANGE) && offset < size,
            "range at {offset} of a {size}-byte file"
        );
        let mut hasher = blake3::Hasher::new();
        let whole_file = size <= RANGE;
        if !whole_file {
            hasher.set_input_offset(offset);
        }
        RangeHasher { hasher, whole_file }
    }

    pub fn update(&mut self, bytes: &[u8]) -> &mut RangeHasher {
        self.hasher.update(bytes);
        self
    }

    /// Feeds `len` zero bytes (a hole), as [`crate::zeros::hash_zeros`]: at most a
    /// range, a few milliseconds.
    pub fn update_zeros(&mut self, len: u64) -> &mut RangeHasher {
        crate::zeros::hash_zeros(&mut self.hasher, len);
        self
    }

    /// The range's value (`RangeEnd.cv`, `WantRange.cv`). The caller fed exactly the
    /// range's [`range_len`] bytes.
    pub fn value(&self) -> [u8; 32] {
        match self.whole_file {
            true => *self.hasher.finalize().as_bytes(),
            false => self.hasher.finalize_non_root(),
        }
    }
}

/// The value of the range at `offset` of a file of `size` bytes, whose bytes are `bytes`.
pub fn range_value(size: u64, offset: u64, bytes: &[u8]) -> [u8; 32] {
    debug_assert_eq!(bytes.len() as u64, range_len(size, offset));
    RangeHasher::new(size, offset).update(bytes).value()
}

/// The whole file's BLAKE3 from the values of all its ranges, in file order (BLAKE3's
/// split: the left subtree is the largest power of two of ranges that leaves the right
/// one at least a byte). `None` if `values` is not one per range.
pub fn combine(size: u64, values: &[[u8; 32]]) -> Option<[u8; 32]> {
    if values.len() as u64 != range_count(size) {
        return None;
    }
    Some(match values {
        [] => *blake3::hash(&[]).as_bytes(),
        [whole] => *whole,
        _ => {
            let left = left_subtree_len(size);
            let split = (left / RANGE) as usize;
            let left_cv = subtree(left, &values[..split]);
            let right_cv = subtree(size - left, &values[split..]);
            *merge_subtrees_root(&left_cv, &right_cv, Mode::Hash).as_bytes()
        }
    })
}

/// The chaining value of the subtree of `len` bytes whose ranges have `values`.
fn subtree(len: u64, values: &[ChainingValue]) -> ChainingValue {
    if let [one] = values {
        return *one;
    }
    let left = left_subtree_len(len);
    let split = (left / RANGE) as usize;
    merge_subtrees_non_root(
        &subtree(left, &values[..split]),
        &subtree(len - left, &values[split..]),
        Mode::Hash,
    )
}

/// Why a range's value was not taken.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    #[error("no range of a {size}-byte file starts at {offset}")]
    NotARange { offset: u64, size: u64 },
    #[error("the range at {offset} was added before")]
    Twice { offset: u64 },
}

/// Puts a file's hash together from its ranges' values as they complete, in any order.
/// It merges the contiguous prefix as it grows (a stack of at most log₂(ranges) + 1
/// subtrees, as BLAKE3's own hasher keeps) and holds the values past a gap until the gap
/// fills: memory is O(ranges in flight + log n), never O(file).
#[derive(Clone, Debug)]
pub struct RangeMerger {
    size: u64,
    /// Ranges of the prefix merged so far.
    next: u64,
    /// Chaining values of the complete subtrees of the prefix, largest first.
    stack: Vec<ChainingValue>,
    /// Values of ranges past the prefix, by range number.
    waiting: BTreeMap<u64, [u8; 32]>,
    hash: Option<[u8; 32]>,
}

impl RangeMerger {
    pub fn new(size: u64) -> RangeMerger {
        RangeMerger {
            size,
            next: 0,
            stack: Vec::new(),
            waiting: BTreeMap::new(),
            hash: (size == 0).then(|| *blake3::hash(&[]).as_bytes()),
        }
    }

    /// The value of the range at `offset` (verified by the caller, or computed here).
    pub fn add(&mut self, offset: u64, value: [u8; 32]) -> Result<(), RangeError> {
        if !offset.is_multiple_of(RANGE) || offset >= self.size {
            return Err(RangeError::NotARange {
                offset,
                size: self.size,
            });
        }
        let range = offset / RANGE;
        if range < self.next || self.waiting.insert(range, value).is_some() {
            return Err(RangeError::Twice { offset });
        }
        while let Some(value) = self.waiting.remove(&self.next) {
            self.push(value);
        }
        Ok(())
    }

    /// Bytes from the start of the file whose ranges are all in (a resumable prefix).
    pub fn prefix(&self) -> u64 {
        (self.next * RANGE).min(self.size)
    }

    /// The file's BLAKE3 once every range is in.
    pub fn hash(&self) -> Option<[u8; 32]> {
        self.hash
    }

    /// Values held past a gap in the prefix.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// Appends the next range of the prefix. As BLAKE3's hasher does with chunks: a
    /// complete left subtree merges into its parent once its right sibling exists, and
    /// the last range folds the stack from the right, the top merge being the root.
    fn push(&mut self, value: [u8; 32]) {
        self.next += 1;
        let ranges = range_count(self.size);
        if self.next < ranges {
            let (mut cv, mut done) = (value, self.next);
            while done.is_multiple_of(2) {
                let left = self.stack.pop().expect("a left sibling");
                cv = merge_subtrees_non_root(&left, &cv, Mode::Hash);
                done /= 2;
            }
            self.stack.push(cv);
            return;
        }
        let Some(mut right) = (ranges > 1).then_some(value) else {
            self.hash = Some(value);
            return;
        };
        while self.stack.len() > 1 {
            let left = self.stack.pop().expect("checked");
            right = merge_subtrees_non_root(&left, &right, Mode::Hash);
        }
        let left = self
            .stack
            .pop()
            .expect("a file of 2+ ranges has a left subtree");
        self.hash = Some(*merge_subtrees_root(&left, &right, Mode::Hash).as_bytes());
    }
}

#[cfg(test)]
#[path = "range_hash_tests.rs"]
mod tests;
