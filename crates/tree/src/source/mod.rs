//! The sending side: a walk of the source tree as a stream of per-directory listings,
//! and reading file data. The source is trusted (it is the application's own volume),
//! so plain path-based calls are used, but never following a symlink inside the tree.

mod entry;
mod read;
mod walk;

pub use read::{open_source_file, regions, regions_allocated, stat_source, Region};
pub use walk::{Listing, SourceEntry, WalkOptions, Walker};
