//! Every number the peer sends is bounded before it is used. The bounds live here, in one
//! place, with the reason for each default.

/// Bounds on what a peer may send. Both sides use the same defaults; a receiver
/// refuses anything larger with a protocol error before allocating for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest frame body. Data frames carry at most [`Limits::data_chunk`] bytes and a
    /// delta frame at most one literal segment plus its command overhead.
    pub max_frame: usize,
    /// Longest single path component (Linux `NAME_MAX`).
    pub max_name: usize,
    /// Longest relative path (Linux `PATH_MAX`).
    pub max_path: usize,
    /// Longest symlink target.
    pub max_link_target: usize,
    /// Most entries in one listing frame.
    pub max_entries_per_frame: usize,
    /// Most extended attributes on one entry, and the most bytes of one value
    /// (Linux allows 64 KiB).
    pub max_xattrs: usize,
    pub max_xattr_value: usize,
    /// Largest serialized block signature the target may send for one file (it travels
    /// in pieces of at most [`Limits::data_chunk`] bytes).
    pub max_signature: usize,
    /// Bytes of file data per data frame; also the size of the sender's reads.
    pub data_chunk: usize,
    /// Bytes of new file content one delta frame may produce.
    pub delta_segment: usize,
    /// Longest human-readable message (errors, refusals).
    pub max_message: usize,
    /// The listing window: a `List` frame may reach at most this many entries past the
    /// watermark of the receiver's last `Ack` (entry `first + count <= through + window`).
    /// A source waits for an `Ack` before it lists further; a receiver refuses a frame
    /// past the window with a protocol error. So whatever a receiver keeps per listed,
    /// unresolved entry (wanted files, hard links waiting for their leader, entries
    /// in flight) is bounded by the window, however large the tree or hostile the peer.
    pub window: u64,
    /// Most directories announced in a listing and not yet listed themselves. A walker
    /// lists each directory before descending, so an honest tree reaches this only with
    /// more than a million sibling directories waiting at once; the receiver keeps a path
    /// and attributes for each.
    pub max_pending_dirs: usize,
    /// Most bytes those directories may hold in paths and attributes (xattrs included),
    /// counted as the receiver keeps them: the count alone would let long paths and large
    /// xattrs cost gigabytes. An honest million pending directories with short paths
    /// hold about 150 MiB.
    pub max_pending_dir_bytes: usize,
    /// Bytes of block signatures a receiver may have sent for files whose content it has
    /// not had yet (their `FileEnd` or `FileFailed`): it waits before sending more. A
    /// source holds what it was sent until it has answered, so this bounds its memory
    /// (plus one signature per sender thread finishing as the next one arrives). At least
    /// [`Limits::max_signature`].
    pub signature_window: usize,
    /// Most streams (connections) one session may have, stream 0 included: a client
    /// refuses a `Welcome` that offers more, and every per-stream table either side keeps
    /// is bounded by it. 16 fills a 100 Gbit/s link or a long window-bound path (tools
    /// that do so use 8-16 connections); more would only multiply buffers and handshakes.
    pub max_streams: u16,
    /// Most files one `Wants` frame asks for: 4096 indices are 32 KiB, and as many asks as
    /// one listing frame can bring, so a target never needs more than one per frame.
    pub max_wants_per_frame: usize,
    /// Most files in one `Files` frame (each within [`Limits::data_chunk`], the whole
    /// frame within [`Limits::max_frame`]). A receiver checks and tracks each like a file
    /// of its own; 1024 makes the per-file cost of a frame ~0.1% of a small file's.
    pub max_files_per_frame: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame: 4 * 1024 * 1024 + 64 * 1024,
            max_name: 255,
            max_path: 4096,
            max_link_target: 4096,
            max_entries_per_frame: 4096,
            max_xattrs: 256,
            max_xattr_value: 64 * 1024,
            max_signature: 32 * 1024 * 1024,
            data_chunk: 256 * 1024,
            delta_segment: 2 * 1024 * 1024,
            max_message: 4096,
            window: 16 * 1024,
            max_pending_dirs: 1024 * 1024,
            max_pending_dir_bytes: 256 * 1024 * 1024,
            signature_window: 64 * 1024 * 1024,
            max_streams: 16,
            max_wants_per_frame: 4096,
            max_files_per_frame: 1024,
        }
    }
}
