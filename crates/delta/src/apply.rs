//! Bounded application of a peer's delta.

use crate::error::DeltaError;
use crate::plan::MAX_SEGMENT;
use crate::scan::{scan, Command, Commands, DeltaStats};

/// A peer's delta for one segment, checked whole against a basis: its output is
/// exactly the promised number of bytes, and every COPY lies inside the basis.
/// [`CheckedDelta::pieces`] gives that output as slices of the basis and of the delta,
/// so the caller can write and hash it without copying it into a buffer first.
#[derive(Clone, Copy, Debug)]
pub struct CheckedDelta<'a> {
    basis: &'a [u8],
    delta: &'a [u8],
    stats: DeltaStats,
}

/// Checks one segment's delta from the peer against `basis` before a byte of it is
/// used: every command must be well formed, every COPY must lie inside `basis`, and
/// the output must come to exactly `expected_len` bytes, which may not exceed
/// [`MAX_SEGMENT`]. The result still has to pass the engine's whole-file check: a
/// delta can be valid and wrong.
pub fn check_segment<'a>(
    basis: &'a [u8],
    delta: &'a [u8],
    expected_len: usize,
) -> Result<CheckedDelta<'a>, DeltaError> {
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
    Ok(CheckedDelta {
        basis,
        delta,
        stats: scan.stats,
    })
}

impl<'a> CheckedDelta<'a> {
    /// What the delta contains.
    pub fn stats(&self) -> DeltaStats {
        self.stats
    }

    /// The output, in order: literal bytes from the delta, copied ranges from the
    /// basis. Together exactly `expected_len` bytes.
    pub fn pieces(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let basis = self.basis;
        // Checked whole, so neither the reader nor a range can fail here; if one did,
        // the output would come up short, which every caller counts.
        let mut commands = Commands::new(self.delta).ok();
        std::iter::from_fn(move || match commands.as_mut()?.next_command().ok()?? {
            Command::Literal(bytes) => Some(bytes),
            Command::Copy { offset, len } => {
                let start = usize::try_from(offset).ok()?;
                basis.get(start..start.checked_add(usize::try_from(len).ok()?)?)
            }
        })
    }
}

/// Applies one segment's delta from the peer to `basis`, appending exactly
/// `expected_len` bytes to `out`, and returns what the delta contained: the checks of
/// [`check_segment`], then its pieces copied out. On error `out` is left as it was.
pub fn apply_segment(
    basis: &[u8],
    delta: &[u8],
    expected_len: usize,
    out: &mut Vec<u8>,
) -> Result<DeltaStats, DeltaError> {
    let checked = check_segment(basis, delta, expected_len)?;
    let start = out.len();
    out.reserve(expected_len);
    for piece in checked.pieces() {
        out.extend_from_slice(piece);
    }
    let written = out.len() - start;
    if written != expected_len {
        out.truncate(start);
        return Err(DeltaError::delta(format!(
            "produced {written} bytes, expected {expected_len}"
        )));
    }
    Ok(checked.stats())
}
