//! A file that keeps a session on several streams long enough to see them carry files.
//!
//! The target asks on the live stream with the least outstanding while it has credit
//! (`STREAM_CREDIT`, 16 MiB), and streams join lazily once 4 MiB or 512 files are asked.
//! The bulk file is over both: listed before the rest of a tree (its name sorts first in
//! the root), it is asked on stream 0 and fills that stream's credit, so the files after
//! it wait for a joined stream; with [`BWLIMIT`] (shared by all streams) it takes far
//! longer than the joins' handshakes (about 0.1 s through the proxy and router).

use std::path::Path;

use crate::files::{random_bytes, write};

/// The bulk file's name: sorts before any name of the trees it goes into but `-` and space.
pub const BULK_NAME: &str = "0-bulk.bin";
/// Stream 0's whole credit, and then some.
pub const BULK_LEN: usize = (16 << 20) + 4096;
/// `--bwlimit` with the bulk: at least 0.6 s for it.
pub const BWLIMIT: &str = "26M";

/// Writes the bulk file into `root`.
pub fn write_bulk(root: &Path) {
    write(
        &root.join(BULK_NAME),
        &random_bytes("streams bulk", BULK_LEN),
        0o644,
    );
}
