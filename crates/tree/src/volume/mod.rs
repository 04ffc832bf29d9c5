//! The receiving volume. Every operation goes through held directory fds: directories
//! are opened with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`, final components
//! with `*at` calls that never follow symlinks, and attributes are set on an open fd.
//! Nothing outside the volume root can be created, written, chmod-ed, chowned,
//! renamed or removed, whatever names the caller passes.

mod basis;
mod create;
mod dir;
mod existing;
mod in_place;
mod meta;
mod node;
mod partial;
mod remove;
pub(crate) mod root;
mod space;
mod temp;

pub use basis::Basis;
pub use dir::Dir;
pub use existing::{Existing, ExistingKind, NotApplied};
pub use partial::{is_partial_name, partial_name};
pub use root::{Privileges, Volume};
pub use temp::TempFile;
