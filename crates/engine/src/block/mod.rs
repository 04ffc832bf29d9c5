//! The two roles of a block session (a device or disk image synced block by block, see
//! `ferry_proto::session::block`): [`source`] answers the target's block hashes with the
//! blocks that differ, [`target`] hashes its device, writes in place and verifies. The
//! commands (`push`, `pull`, `serve`) connect and hand a session to one of them.
//!
//! ```text
//! source::run ── BlockBegin, BlockData/BlockZero, BlockEnd ──▶ target::run ─▶ Device (tree)
//!      ▲                                                            │
//!      └──────────────── BlockSums, BlockDone ◀─────────────────────┘
//! ```
//!
//! Must not import: a command (`push`, `pull`, `serve`), the file-tree roles.

pub mod hash;
pub mod source;
pub mod target;

use ferry_proto::session::block::BlockError;

use crate::error::EngineError;

impl From<BlockError> for EngineError {
    fn from(e: BlockError) -> Self {
        match e {
            BlockError::Session(e) => e.into(),
            other => EngineError::file_io(other.to_string()),
        }
    }
}
