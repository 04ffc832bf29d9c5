//! The sending side: a walk of the source tree as a stream of per-directory listings,
//! and reading file data. Every open goes through the root's fd and never crosses a
//! symlink inside the tree ([`SourceRoot`]): the tree may change while it is read.

mod entry;
mod read;
mod root;
mod walk;

pub use read::{regions, regions_allocated, regions_within, Region};
pub use root::{OpenedFile, SourceRoot};
pub use walk::{Listing, SourceEntry, WalkOptions, Walker};
