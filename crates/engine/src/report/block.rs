//! What a block session did (`ferry_proto::session::block`), as the side that ran it
//! counts it, and how the summary shows it.

use ferry_proto::{BlockStats, TargetStats};

use super::summary::{BlockSummary, SourceCounts};

/// What a block session did, as the side that ran it counts it.
#[derive(Clone, Debug, Default)]
pub struct BlockOutcome {
    /// The source's size.
    pub size: u64,
    /// Bytes sent as content.
    pub literal: u64,
    /// Bytes sent as a zero run.
    pub zeros: u64,
    /// The target's account.
    pub target: BlockStats,
}

impl BlockOutcome {
    /// The counts a summary shows for it.
    pub fn counts(&self) -> SourceCounts {
        SourceCounts {
            files_total: 1,
            entries_total: 1,
            bytes_total: self.size,
            bytes_literal: self.literal,
            bytes_matched: self.size.saturating_sub(self.literal + self.zeros),
            files_unchanged: u64::from(self.literal + self.zeros == 0),
            ..SourceCounts::default()
        }
    }

    /// The target's counts in the summary's terms.
    pub fn target_stats(&self) -> TargetStats {
        TargetStats {
            files_transferred: u64::from(self.literal + self.zeros > 0),
            bytes_written: self.target.bytes_written,
            resent: self.target.resent_rounds,
            ..TargetStats::default()
        }
    }

    pub fn summary(&self) -> BlockSummary {
        BlockSummary {
            device_size: self.target.device_size,
            bytes_zeroed: self.target.bytes_zeroed,
            tail_kept: self.target.device_size.saturating_sub(self.size),
        }
    }
}
