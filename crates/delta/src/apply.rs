//! Bounded application of a peer's delta.

use crate::error::DeltaError;
use crate::plan::MAX_SEGMENT;
use crate::scan::{scan, DeltaStats};

/// Applies one segment's delta from the peer to `basis`, appending exactly
/// `expected_len` bytes to `out`, and returns what the delta contained.
///
/// The delta is hostile input. Before a byte is written it is scanned whole: every
/// command must be well formed, every COPY must lie inside `basis`, and the output must
/// come to exactly `expected_len` bytes, which may not exceed [`MAX_SEGMENT`]. Then
/// fast_rsync applies it with `expected_len` as its output limit, and the output length
/// is checked once more. On error `out` is left as it was. The result still has to pass
/// the engine's whole-file check: a delta can be valid and wrong.
pub fn apply_segment(
    basis: &[u8],
    delta: &[u8],
    expected_len: usize,
    out: &mut Vec<u8>,
) -> Result<DeltaStats, DeltaError> {
    if expected_len > MAX_SEGMENT {
        return Err(DeltaError::delta(format!(
            "segment of {expected_len} bytes, more than the limit of {MAX_SEGMENT}"
        )));
    }
    let scan = scan(delta)?;
    if scan.copy_end > basis.len() as u64 {
        return Err(DeltaError::delta(format!(
            "copies up to byte {} of a {}-byte basis",
            scan.copy_end,
            basis.len()
        )));
    }
    let total = scan.stats.literal + scan.stats.copied;
    if total != expected_len as u64 {
        return Err(DeltaError::delta(format!(
            "produces {total} bytes, expected {expected_len}"
        )));
    }
    let start = out.len();
    out.reserve(expected_len);
    let applied = fast_rsync::apply_limited(basis, delta, out, expected_len)
        .map_err(|e| DeltaError::delta(format!("fast_rsync refused it: {e}")));
    let written = out.len() - start;
    match applied {
        Ok(()) if written == expected_len => Ok(scan.stats),
        Ok(()) => {
            out.truncate(start);
            Err(DeltaError::delta(format!(
                "produced {written} bytes, expected {expected_len}"
            )))
        }
        Err(e) => {
            out.truncate(start);
            Err(e)
        }
    }
}
