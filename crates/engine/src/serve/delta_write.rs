//! Writing a delta's output: its pieces (ranges of the mapped basis, literal bytes of the
//! frame) are gathered into runs in one small buffer, and each run is written and hashed.
//!
//! Why a buffer at all: the hash must cover exactly the bytes written, so each byte is
//! read from the basis once (written and hashed from the same copy, even if something on
//! the target changed the basis meanwhile); a delta of many small pieces, honest or
//! hostile (a frame fits a million one-byte copies), costs a write per run, not per
//! piece; and BLAKE3 only reaches its speed on updates of many KiB (1.4 GB/s fed the
//! pieces of a 1%-changed file, 4.7 fed whole runs: `cargo bench --bench micro`). Why a
//! small one: it stays in the CPU cache, where the write and the hash read it.

use ferry_delta::CheckedDelta;
use ferry_tree::{TempFile, TreeError};

/// Bytes written and hashed at a time.
const RUN: usize = 128 * 1024;

/// Writes `delta`'s output to `file` from `offset` on and feeds it to `hasher`, through
/// `buf` (one per receiver thread, reused).
pub fn write_delta(
    file: &mut TempFile,
    hasher: &mut blake3::Hasher,
    offset: u64,
    delta: &CheckedDelta<'_>,
    buf: &mut Vec<u8>,
) -> Result<(), TreeError> {
    let mut at = offset;
    delta.for_each_run(buf, RUN, |run| {
        file.write_at(at, run)?;
        hasher.update(run);
        at += run.len() as u64;
        Ok::<(), TreeError>(())
    })?;
    Ok(())
}
