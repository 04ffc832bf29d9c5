//! The fixed-size counts `Done` and `SourceDone` carry, as the u64 fields they are on
//! the wire (in this order; changing it is a new protocol version).

use crate::message::{SourceStats, TargetStats};

pub(super) const STATS_FIELDS: usize = 17;

pub(super) fn stats_fields(s: &TargetStats) -> [u64; STATS_FIELDS] {
    [
        s.files_transferred,
        s.bytes_written,
        s.entries_created,
        s.meta_updated,
        s.deleted,
        u64::from(s.delete_skipped),
        s.resent,
        s.file_errors,
        s.not_applied_owner,
        s.not_applied_xattrs,
        s.not_applied_special,
        s.space_free,
        s.space_reserved,
        s.inodes_free,
        s.space_needed,
        s.inodes_needed,
        s.files_inplace,
    ]
}

pub(super) fn stats_from(f: [u64; STATS_FIELDS]) -> Option<TargetStats> {
    Some(TargetStats {
        files_transferred: f[0],
        bytes_written: f[1],
        entries_created: f[2],
        meta_updated: f[3],
        deleted: f[4],
        delete_skipped: match f[5] {
            0 => false,
            1 => true,
            _ => return None,
        },
        resent: f[6],
        file_errors: f[7],
        not_applied_owner: f[8],
        not_applied_xattrs: f[9],
        not_applied_special: f[10],
        space_free: f[11],
        space_reserved: f[12],
        inodes_free: f[13],
        space_needed: f[14],
        inodes_needed: f[15],
        files_inplace: f[16],
    })
}

pub(super) const SOURCE_STATS_FIELDS: usize = 10;

pub(super) fn source_stats_fields(s: &SourceStats) -> [u64; SOURCE_STATS_FIELDS] {
    [
        s.files_total,
        s.bytes_total,
        s.entries_total,
        s.files_unchanged,
        s.files_delta,
        s.bytes_literal,
        s.bytes_matched,
        s.bytes_resumed,
        s.vanished,
        s.read_errors,
    ]
}

pub(super) fn source_stats_from(f: [u64; SOURCE_STATS_FIELDS]) -> SourceStats {
    SourceStats {
        files_total: f[0],
        bytes_total: f[1],
        entries_total: f[2],
        files_unchanged: f[3],
        files_delta: f[4],
        bytes_literal: f[5],
        bytes_matched: f[6],
        bytes_resumed: f[7],
        vanished: f[8],
        read_errors: f[9],
    }
}
