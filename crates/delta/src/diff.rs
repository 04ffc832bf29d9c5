//! Delta search: new data against a peer's indexed signature.
//!
//! Two ways to find a block, cheapest first:
//! * **Aligned.** After a match at block `b`, the data that follows most likely
//!   continues with block `b + 1` (an unchanged run, or edits made in place), so its
//!   strong hash is checked straight away: one XXH3 per block, no rolling at all.
//!   Where it fails, the next [`SKIP_AHEAD`] blocks are tried at their own places, so
//!   an edit in place costs a few hashes, not a rolling search over the dirty block.
//!   This is what keeps a pass over a large, mostly unchanged file near hashing speed.
//! * **Rolling.** Otherwise rsync's search: slide a one-block window byte by byte,
//!   look its weak checksum up in the index, and confirm a candidate with the strong
//!   hash. It finds content that moved (insertions, deletions).
//!
//! Strong hashes that fail are budgeted to [`MISS_BUDGET`] times the segment's length,
//! so a hostile signature (every block sharing the weak checksum of our data) costs at
//! most a few hashes of the data, never one per byte.

use crate::encode::DeltaWriter;
use crate::error::DeltaError;
use crate::index::SignatureIndex;
use crate::scan::{scan, DeltaStats};
use crate::signature::strong;
use crate::weak::Rolling;

/// Bytes hashed for candidates that turned out false, per byte of data, at most.
const MISS_BUDGET: usize = 2;

/// Blocks past a failed aligned check that are tried at their own places before the
/// rolling search: an edit in place dirties one block, or two where it straddles a
/// boundary, and checking what follows costs a hash where rolling over the dirty block
/// would cost a lookup per byte.
const SKIP_AHEAD: usize = 2;

/// Appends to `out` the delta that rebuilds `data` from the peer's basis and returns
/// exactly how many of its bytes are literal and how many are copied (they always sum
/// to `data.len()`).
///
/// Call it once per segment of at most [`crate::segment_len`] bytes; matches do not
/// cross segments. On error `out` is left as it was.
///
/// Cost: one XXH3 of the data where it lines up with the basis; on data that matches
/// nothing, a rolling checksum and a bitset probe per byte. Use
/// [`crate::literal_fraction`] to stop searching a hopeless file.
pub fn diff_segment(
    index: &SignatureIndex<'_>,
    data: &[u8],
    out: &mut Vec<u8>,
) -> Result<DeltaStats, DeltaError> {
    let start = out.len();
    let stats = search(index, data, out);
    // The counts feed the user's report and the writer is ours, but a delta we cannot
    // read back would fail at the target: check rather than trust.
    let result = scan(&out[start..]).and_then(|scan| {
        if scan.stats == stats && stats.literal + stats.copied == data.len() as u64 {
            Ok(stats)
        } else {
            Err(DeltaError::delta(format!(
                "generated delta reads back as {:?} for {} bytes of data ({stats:?} written)",
                scan.stats,
                data.len()
            )))
        }
    });
    if result.is_err() {
        out.truncate(start);
    }
    result
}

fn search(index: &SignatureIndex<'_>, data: &[u8], out: &mut Vec<u8>) -> DeltaStats {
    let signature = index.signature;
    let block_size = signature.plan().block_size as usize;
    let strong_len = signature.plan().strong_len as usize;
    let mut at = Cursor {
        delta: DeltaWriter::new(out),
        pos: 0,
        literal_from: 0,
        next: None,
    };
    let mut budget = data.len().saturating_mul(MISS_BUDGET);
    let mut rolling: Option<Rolling> = None;
    'search: while at.pos < data.len() {
        if let Some(block) = at.next.take() {
            // The expected block, else (an edit in place) one of the next few at their
            // own places: the blocks skipped over go literal.
            for skip in 0..=SKIP_AHEAD {
                let (block, pos) = (block + skip, at.pos + skip * block_size);
                if lines_up(index, data, pos, block) {
                    at.matched(data, pos, block, signature.extent(block));
                    rolling = None;
                    continue 'search;
                }
            }
        }
        let pos = at.pos;
        if data.len() - pos < block_size || budget < block_size {
            break;
        }
        let window = &data[pos..pos + block_size];
        let weak = rolling.get_or_insert_with(|| Rolling::new(window));
        let candidates = index.candidates(weak.digest());
        if !candidates.is_empty() {
            let hash = strong(window);
            for &(_, block) in candidates {
                let block = block as usize;
                if hash[..strong_len] == *signature.strong(block) {
                    at.matched(data, pos, block, (signature.extent(block).0, block_size));
                    rolling = None;
                    continue 'search;
                }
            }
            budget -= block_size;
        }
        if pos + block_size < data.len() {
            weak.roll(data[pos], data[pos + block_size]);
        }
        at.pos += 1;
    }
    at.delta.literal(&data[at.literal_from..]);
    at.delta.finish()
}

/// Where the search stands in the data, and the delta written so far.
struct Cursor<'a> {
    delta: DeltaWriter<'a>,
    pos: usize,
    /// Start of the data not yet covered by a command.
    literal_from: usize,
    /// The block expected at `pos`, after a match that ended there.
    next: Option<usize>,
}

impl Cursor<'_> {
    /// `block`, at `(offset, len)` in the basis, is what `data` holds at `pos`: what lies
    /// before it goes literal, the block is copied, and the search goes on after it.
    fn matched(&mut self, data: &[u8], pos: usize, block: usize, (offset, len): (u64, usize)) {
        self.delta.literal(&data[self.literal_from..pos]);
        self.delta.copy(offset, len as u64);
        self.pos = pos + len;
        self.literal_from = self.pos;
        self.next = Some(block + 1);
    }
}

/// Whether `block` of the basis is what `data` holds at `at`.
fn lines_up(index: &SignatureIndex<'_>, data: &[u8], at: usize, block: usize) -> bool {
    let signature = index.signature;
    if block >= signature.block_count() {
        return false;
    }
    let len = signature.extent(block).1;
    let strong_len = signature.plan().strong_len as usize;
    at.checked_add(len).is_some_and(|end| end <= data.len())
        && strong(&data[at..at + len])[..strong_len] == *signature.strong(block)
}
