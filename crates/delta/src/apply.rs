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
    /// basis. Together exactly the `expected_len` bytes [`check_segment`] counted.
    pub fn pieces(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let basis = self.basis;
        // Checked whole, so neither the reader nor a range can fail here; if one did,
        // the pieces would stop there (and the rebuilt file fail its whole-file hash).
        let mut commands = Commands::new(self.delta).ok();
        std::iter::from_fn(move || {
            let piece = match commands.as_mut()?.next_command() {
                Ok(Some(Command::Literal(bytes))) => Some(bytes),
                Ok(Some(Command::Copy { offset, len })) => usize::try_from(offset)
                    .ok()
                    .zip(usize::try_from(len).ok())
                    .and_then(|(start, len)| basis.get(start..start.checked_add(len)?)),
                Ok(None) | Err(_) => None,
            };
            if piece.is_none() {
                commands = None;
            }
            piece
        })
    }

    /// The output in runs of `run` bytes (the last one shorter), each assembled once in
    /// `buf` from the [`pieces`](CheckedDelta::pieces) and handed to `sink`; returns the
    /// bytes handed over. A delta of many small pieces then reaches `sink` as a few large
    /// runs (a write or a hash update per run, not per piece), and `sink` sees each byte
    /// exactly once even if the basis changes underneath.
    pub fn for_each_run<E>(
        &self,
        buf: &mut Vec<u8>,
        run: usize,
        mut sink: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<u64, E> {
        let run = run.max(1);
        let mut total = 0u64;
        let mut hand_over = |buf: &mut Vec<u8>| {
            sink(buf)?;
            total += buf.len() as u64;
            buf.clear();
            Ok(())
        };
        buf.clear();
        buf.reserve(run);
        for mut piece in self.pieces() {
            while !piece.is_empty() {
                let (now, rest) = piece.split_at(piece.len().min(run - buf.len()));
                buf.extend_from_slice(now);
                piece = rest;
                if buf.len() == run {
                    hand_over(buf)?;
                }
            }
        }
        if !buf.is_empty() {
            hand_over(buf)?;
        }
        Ok(total)
    }
}

/// Applies one segment's delta from the peer to `basis`, appending exactly
/// `expected_len` bytes to `out`, and returns what the delta contained: the checks of
/// [`check_segment`], then its pieces copied out. On error `out` is left as it was (the
/// checks come first). The target writes [`CheckedDelta::pieces`] instead; this is for
/// callers that want the segment in memory.
pub fn apply_segment(
    basis: &[u8],
    delta: &[u8],
    expected_len: usize,
    out: &mut Vec<u8>,
) -> Result<DeltaStats, DeltaError> {
    let checked = check_segment(basis, delta, expected_len)?;
    out.reserve(expected_len);
    let start = out.len();
    for piece in checked.pieces() {
        out.extend_from_slice(piece);
    }
    debug_assert_eq!(out.len() - start, expected_len, "check_segment counted it");
    Ok(checked.stats())
}
