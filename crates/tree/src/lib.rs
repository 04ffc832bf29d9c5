//! Ferry's filesystem, on both sides.
//!
//! * [`source`] walks the source tree as a stream of per-directory listings (parents
//!   before children, names sorted, entries numbered) and reads file data and holes.
//!   The source is the application's own volume, but it changes while it is read (a
//!   stage pass beside the live application, a served volume answering pulls): every
//!   open goes through its root fd and never crosses a symlink inside it
//!   ([`SourceRoot`]), so a swapped directory cannot make Ferry send a file from outside.
//! * [`volume`] performs every operation on the receiving volume, **confined**: it
//!   holds directory fds opened with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
//!   RESOLVE_NO_MAGICLINKS)`, handles final components with `*at` calls that never
//!   follow symlinks, creates everything at a temp name and renames it into place, and
//!   sets metadata on an open fd. A symlink already on the target is replaced, never
//!   followed. Names are re-checked with [`ferry_proto::check_name`] whoever passes
//!   them. This is the structural cure for rsync's symlink-race CVEs.
//!
//! Not here: the protocol, the network, and deciding what to transfer. The engine
//! compares a source [`Listing`] with what [`Dir::stat`] reports and plans; this crate
//! only executes.
//!
//! ```text
//!  source volume                                           target volume
//!  Walker ──Listing──▶ engine ──plan──▶ Volume::open_dir ─▶ Dir
//!  SourceRoot::open_file                                    ├ ensure_dir / remove
//!  regions ──data──────────────▶ (wire) ──────────────────▶ ├ create_temp ─▶ TempFile
//!                                                           │   write_at, apply_meta, commit
//!                                                           ├ symlink / hard_link / special
//!                                                           └ set_meta / set_own_meta
//! ```

mod caps;
mod device;
mod error;
mod link_fd;
mod proc_fd;
mod shortfall;
pub mod source;
pub mod volume;
mod xattr;

pub use caps::{Cap, Caps};
pub use device::{Device, DeviceKind};
pub use error::TreeError;
pub use shortfall::{PrivilegeReport, Shortfall, Side};
pub use source::{
    regions, regions_allocated, regions_within, Listing, OpenedFile, Region, SourceEntry,
    SourceRoot, WalkOptions, Walker,
};
pub use volume::{
    is_partial_name, partial_name, Basis, Dir, Existing, ExistingKind, NotApplied, Privileges,
    TempFile, Volume,
};
