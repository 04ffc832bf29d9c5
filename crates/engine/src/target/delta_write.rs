//! Writing a delta's output: its pieces (ranges of the basis, read with positioned
//! reads, and literal bytes of the frame) are gathered into runs in one small buffer, and
//! each run is written and hashed.
//!
//! Why a buffer at all: the hash must cover exactly the bytes written, so each byte is
//! read from the basis once (written and hashed from the same copy, even if something on
//! the target changed the basis meanwhile); a delta of many small pieces, honest or
//! hostile (a frame fits a million one-byte copies), costs a write per run, not per
//! piece; and BLAKE3 only reaches its speed on updates of many KiB (1.4 GB/s fed the
//! pieces of a 1%-changed file, 4.7 fed whole runs: `cargo bench --bench micro`). Why a
//! small one: it stays in the CPU cache, where the write and the hash read it. The
//! session's stop flag is looked at between runs.

use ferry_delta::{CheckedDelta, RunError};
use ferry_tree::{TempFile, TreeError};

use crate::cancel::Cancel;
use ferry_tree::Basis;

/// Bytes written and hashed at a time.
const RUN: usize = 128 * 1024;

/// Why a delta's output was not all written.
pub enum DeltaWriteError {
    /// The basis could not be read where the delta copies from (another process
    /// truncated it): the file cannot be rebuilt from it.
    Basis(std::io::Error),
    /// Writing the temp file failed.
    Write(TreeError),
    /// The session ended.
    Cancelled,
}

/// Writes `delta`'s output to `file` from `offset` on and feeds it to `hasher`, through
/// `buf` (one per apply worker, reused).
pub fn write_delta(
    file: &mut TempFile,
    hasher: &mut blake3::Hasher,
    offset: u64,
    delta: &CheckedDelta<'_, Basis>,
    buf: &mut Vec<u8>,
    cancel: &Cancel,
) -> Result<(), DeltaWriteError> {
    let mut at = offset;
    let written = delta.for_each_run(buf, RUN, |run| {
        cancel.check().map_err(|_| DeltaWriteError::Cancelled)?;
        file.write_at(at, run).map_err(DeltaWriteError::Write)?;
        hasher.update(run);
        at += run.len() as u64;
        Ok(())
    });
    match written {
        Ok(_) => Ok(()),
        // A basis read fails with `Interrupted` once the session ended.
        Err(RunError::Basis(_)) if cancel.is_cancelled() => Err(DeltaWriteError::Cancelled),
        Err(RunError::Basis(e)) => Err(DeltaWriteError::Basis(e)),
        Err(RunError::Sink(e)) => Err(e),
    }
}
