//! Bounded application of a peer's delta.

use crate::basis::{BasisRead, RunError};
use crate::error::DeltaError;
use crate::format::MIN_BLOCK;
use crate::plan::MAX_SEGMENT;
use crate::scan::{scan, Command, Commands, DeltaStats};

/// A peer's delta for one segment, checked whole against a basis: its output is
/// exactly the promised number of bytes, and every COPY lies inside the basis.
/// [`CheckedDelta::for_each_run`] writes that output in runs, reading COPY ranges from
/// the basis ([`BasisRead`]); over a byte slice, [`CheckedDelta::pieces`] also gives it
/// as slices of the basis and of the delta.
pub struct CheckedDelta<'a, B: ?Sized = [u8]> {
    basis: &'a B,
    delta: &'a [u8],
    stats: DeltaStats,
}

impl<B: ?Sized> std::fmt::Debug for CheckedDelta<'_, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckedDelta")
            .field("delta_len", &self.delta.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// Checks one segment's delta from the peer against `basis` before a byte of it is
/// used: every command must be well formed, every COPY must lie inside `basis` (as long
/// as [`BasisRead::basis_len`] says), there may be no more COPYs than a search makes
/// (about one per [`MIN_BLOCK`] of output), and the output must come to exactly
/// `expected_len` bytes, which may not exceed [`MAX_SEGMENT`]. The result still has to pass the
/// engine's whole-file check: a delta can be valid and wrong.
pub fn check_segment<'a, B: BasisRead + ?Sized>(
    basis: &'a B,
    delta: &'a [u8],
    expected_len: usize,
) -> Result<CheckedDelta<'a, B>, DeltaError> {
    if expected_len > MAX_SEGMENT {
        return Err(DeltaError::delta(format!(
            "segment of {expected_len} bytes, more than the limit of {MAX_SEGMENT}"
        )));
    }
    let scan = scan(delta)?;
    if scan.copy_end > basis.basis_len() {
        return Err(DeltaError::delta(format!(
            "copies up to byte {} of a {}-byte basis",
            scan.copy_end,
            basis.basis_len()
        )));
    }
    let total = scan.stats.literal + scan.stats.copied;
    if total != expected_len as u64 {
        return Err(DeltaError::delta(format!(
            "produces {total} bytes, expected {expected_len}"
        )));
    }
    let most = max_copies(expected_len);
    if scan.copies > most {
        return Err(DeltaError::delta(format!(
            "{} COPY commands for {expected_len} bytes, more than the {most} a search makes",
            scan.copies
        )));
    }
    Ok(CheckedDelta {
        basis,
        delta,
        stats: scan.stats,
    })
}

/// The most COPY commands a delta of `len` bytes from [`crate::diff_segment`] can hold:
/// each copies a whole block (at least [`MIN_BLOCK`] bytes) or, right after one, the
/// basis's short last block. Each COPY costs the target a read of its basis, so a
/// peer's delta of a million one-byte copies would cost a million reads for 1 MiB.
fn max_copies(len: usize) -> u64 {
    2 * (len as u64).div_ceil(u64::from(MIN_BLOCK)) + 2
}

impl<'a> CheckedDelta<'a, [u8]> {
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
}

/// One command of a checked delta: literal bytes, or a range of the basis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    /// Bytes of the delta itself.
    Literal(&'a [u8]),
    /// `len` bytes of the basis from `offset`.
    Copy {
        /// Where in the basis.
        offset: u64,
        /// How many bytes.
        len: u64,
    },
}

impl<'a, B: ?Sized> CheckedDelta<'a, B> {
    /// The delta's commands in order, for a caller that must know where each COPY reads
    /// from: one that writes the output over the basis itself (an in-place update), where
    /// a range already overwritten can no longer be read. Checked whole, so they cannot
    /// fail; if one did, they would stop there (and the file fail its whole-file hash).
    pub fn commands(&self) -> impl Iterator<Item = Piece<'a>> + 'a {
        let mut commands = Commands::new(self.delta).ok();
        std::iter::from_fn(move || {
            let piece = match commands.as_mut()?.next_command() {
                Ok(Some(Command::Literal(bytes))) => Some(Piece::Literal(bytes)),
                Ok(Some(Command::Copy { offset, len })) => Some(Piece::Copy { offset, len }),
                Ok(None) | Err(_) => None,
            };
            if piece.is_none() {
                commands = None;
            }
            piece
        })
    }
}

impl<B: BasisRead + ?Sized> CheckedDelta<'_, B> {
    /// What the delta contains.
    pub fn stats(&self) -> DeltaStats {
        self.stats
    }

    /// The output in runs of `run` bytes (the last one shorter), each assembled once in
    /// `buf` (literal bytes copied from the delta, COPY ranges read from the basis
    /// straight into it) and handed to `sink`; returns the bytes handed over. A delta of
    /// many small pieces then reaches `sink` as a few large runs (a write or a hash
    /// update per run, not per piece), and `sink` sees each byte exactly once even if
    /// the basis changes underneath. A basis that cannot be read where the checks said
    /// it could (it shrank) stops the runs with [`RunError::Basis`].
    pub fn for_each_run<E>(
        &self,
        buf: &mut Vec<u8>,
        run: usize,
        mut sink: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<u64, RunError<E>> {
        let run = run.max(1);
        // Sized once and kept: a run is filled by index, never zeroed again.
        if buf.len() != run {
            buf.clear();
            buf.resize(run, 0);
        }
        let mut fill = 0;
        let mut total = 0u64;
        let mut hand_over = |buf: &[u8]| {
            sink(buf).map_err(RunError::Sink)?;
            total += buf.len() as u64;
            Ok(())
        };
        // Checked whole, so the reader cannot fail here; if it did, the runs would stop
        // there (and the rebuilt file fail its whole-file hash).
        let Ok(mut commands) = Commands::new(self.delta) else {
            return Ok(0);
        };
        while let Ok(Some(command)) = commands.next_command() {
            match command {
                Command::Literal(mut bytes) => {
                    while !bytes.is_empty() {
                        let n = bytes.len().min(run - fill);
                        buf[fill..fill + n].copy_from_slice(&bytes[..n]);
                        bytes = &bytes[n..];
                        fill += n;
                        if fill == run {
                            hand_over(&buf[..])?;
                            fill = 0;
                        }
                    }
                }
                Command::Copy {
                    mut offset,
                    mut len,
                } => {
                    while len > 0 {
                        let n = (run - fill).min(usize::try_from(len).unwrap_or(usize::MAX));
                        self.basis
                            .read_exact_at(offset, &mut buf[fill..fill + n])
                            .map_err(RunError::Basis)?;
                        offset += n as u64;
                        len -= n as u64;
                        fill += n;
                        if fill == run {
                            hand_over(&buf[..])?;
                            fill = 0;
                        }
                    }
                }
            }
        }
        if fill > 0 {
            hand_over(&buf[..fill])?;
        }
        Ok(total)
    }
}

/// Applies one segment's delta from the peer to `basis`, appending exactly
/// `expected_len` bytes to `out`, and returns what the delta contained: the checks of
/// [`check_segment`], then its pieces copied out. On error `out` is left as it was (the
/// checks come first). The target writes [`CheckedDelta::for_each_run`] instead; this is for
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
