//! What a push reports at the end, for people (`--stats`-like text) and for controllers
//! (the `summary` JSON event, always the last line of `--json` output).

use std::time::Duration;

use ferry_proto::{SourceStats, TargetStats};
use serde::Serialize;

use crate::error::EngineError;
use crate::exit::ExitCode;

/// Version of the `--json` event schema. Adding a field keeps it; renaming, removing or
/// changing the meaning or type of one makes the next version.
pub const SCHEMA: u32 = 1;

/// Counts kept by the source during a push.
#[derive(Clone, Debug, Default)]
pub struct SourceCounts {
    /// Regular-file names listed (hard links included).
    pub files_total: u64,
    /// Bytes of the distinct regular files listed.
    pub bytes_total: u64,
    /// Entries of any kind listed.
    pub entries_total: u64,
    pub bytes_literal: u64,
    pub bytes_matched: u64,
    /// Files sent as a delta against a basis at the target.
    pub files_delta: u64,
    /// Source files that vanished or changed while being read.
    pub vanished: u64,
    /// Entries or directories the source could not read.
    pub read_errors: u64,
    /// Bytes not re-sent because the target resumed from a verified partial.
    pub bytes_resumed: u64,
    /// Regular files the target resolved without asking for their content.
    pub files_unchanged: u64,
    /// In a dry run: regular files the target said it would create or update.
    pub files_would_change: u64,
    /// The first entries whose attributes the target could not apply.
    pub not_applied_examples: Vec<NotAppliedExample>,
    /// `--compress`: frame bytes offered to zstd, and what was sent for them.
    pub bytes_before_compression: u64,
    pub bytes_after_compression: u64,
}

/// One entry whose attributes the target could not apply, and which.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct NotAppliedExample {
    pub path: String,
    /// Any of `owner`, `xattrs`, `special`.
    pub what: Vec<&'static str>,
}

impl SourceCounts {
    /// What a pulled session's source tells the puller (`SourceDone`).
    pub fn to_wire(&self) -> SourceStats {
        SourceStats {
            files_total: self.files_total,
            bytes_total: self.bytes_total,
            entries_total: self.entries_total,
            files_unchanged: self.files_unchanged,
            files_delta: self.files_delta,
            bytes_literal: self.bytes_literal,
            bytes_matched: self.bytes_matched,
            bytes_resumed: self.bytes_resumed,
            vanished: self.vanished,
            read_errors: self.read_errors,
        }
    }

    /// Takes in the counts a pulled session's source sent.
    pub fn add_wire(&mut self, s: &SourceStats) {
        self.files_total = s.files_total;
        self.bytes_total = s.bytes_total;
        self.entries_total = s.entries_total;
        self.files_unchanged = s.files_unchanged;
        self.vanished = s.vanished;
        self.read_errors = s.read_errors;
        self.files_delta += s.files_delta;
        self.bytes_literal += s.bytes_literal;
        self.bytes_matched += s.bytes_matched;
        self.bytes_resumed += s.bytes_resumed;
    }

    /// Folds in one attempt: what was listed is the last attempt's (each lists the
    /// whole tree), what was sent adds up.
    pub fn absorb(&mut self, attempt: &SourceCounts) {
        self.files_total = attempt.files_total;
        self.bytes_total = attempt.bytes_total;
        self.entries_total = attempt.entries_total;
        self.read_errors = attempt.read_errors;
        self.vanished = attempt.vanished;
        self.files_unchanged = attempt.files_unchanged;
        self.files_would_change = attempt.files_would_change;
        self.bytes_literal += attempt.bytes_literal;
        self.bytes_matched += attempt.bytes_matched;
        self.files_delta += attempt.files_delta;
        self.bytes_resumed += attempt.bytes_resumed;
        self.bytes_before_compression += attempt.bytes_before_compression;
        self.bytes_after_compression += attempt.bytes_after_compression;
        for example in &attempt.not_applied_examples {
            if self.not_applied_examples.len() < 10 && !self.not_applied_examples.contains(example)
            {
                self.not_applied_examples.push(example.clone());
            }
        }
    }
}

/// The `summary` event. Field names are a contract with users' scripts.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub event: &'static str,
    /// The `--json` schema version ([`SCHEMA`]).
    pub schema: u32,
    pub files_total: u64,
    pub files_transferred: u64,
    /// Regular files already in place (same size and mtime, or same BLAKE3 with
    /// `--checksum`); hard links are not counted here.
    pub files_unchanged: u64,
    pub files_deleted: u64,
    pub bytes_total: u64,
    pub bytes_transferred: u64,
    pub bytes_literal: u64,
    pub bytes_matched: u64,
    pub bytes_on_wire: u64,
    /// `bytes_total / bytes_on_wire`, like rsync's speedup (0 when nothing went over the
    /// wire).
    pub speedup: f64,
    pub entries_total: u64,
    pub entries_created: u64,
    pub meta_updated: u64,
    pub files_delta: u64,
    pub files_resent: u64,
    /// Files written into the existing file instead of a temp copy (`--inplace`, or no
    /// room on the target for a second copy).
    pub files_inplace: u64,
    pub file_errors: u64,
    pub source_read_errors: u64,
    pub source_vanished: u64,
    pub delete_skipped: bool,
    /// Sessions that failed on the network and were tried again (`--retries`).
    pub retries: u64,
    /// The most streams (connections) the last attempt ran at once: 1 unless streams
    /// joined (`--streams`).
    pub streams: u64,
    /// File bytes not re-sent after a retry because the target resumed them.
    pub bytes_resumed: u64,
    pub not_applied_owner: u64,
    pub not_applied_xattrs: u64,
    pub not_applied_special: u64,
    /// Up to ten entries whose attributes were not applied, and which ones.
    pub not_applied_examples: Vec<NotAppliedExample>,
    /// `--compress`: frame bytes offered to compression, and what went on the wire for
    /// them (incompressible frames are sent as they are and count the same on both).
    pub bytes_before_compression: u64,
    pub bytes_after_compression: u64,
    /// The target volume's free bytes when the session began (unprivileged writers'
    /// share), the bytes it reserves for root besides, and its free inodes; 0 if unknown.
    pub space_free: u64,
    pub space_reserved: u64,
    pub inodes_free: u64,
    /// The most the writes needed of the free space at any point (the pre-flight space
    /// check's count; in a dry run, what the real run would need).
    pub space_needed: u64,
    pub inodes_needed: u64,
    /// The writes need more than is free: in a dry run, the real run would stop with
    /// exit 11 (or, with `--no-space-check`, fill the volume).
    pub space_short: bool,
    pub duration_s: f64,
    pub exit_code: u8,
    /// The same, typed.
    #[serde(skip)]
    pub exit: ExitCode,
    /// The fatal error, if the run ended on one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Per-file errors for the text report (`side: path: message`, the first 100). Not
    /// in the JSON summary, which must stay small enough for a pod's termination message
    /// (4096 bytes); `--json` has a `file_error` event for each.
    #[serde(skip)]
    pub errors: Vec<String>,
    /// A block session's device (absent for a file tree).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub block: Option<BlockSummary>,
}

/// What a block session did to the target device, beyond the counts of a tree.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct BlockSummary {
    /// The target's size.
    pub device_size: u64,
    /// Bytes zeroed (holes punched or zeros written) where the target did not read zeros.
    pub bytes_zeroed: u64,
    /// Bytes of the target past the source's size, left as they were.
    pub tail_kept: u64,
}

/// A finished run's target stats, exit code and fatal error: the worst class wins
/// (fatal, then per-file errors on either side, then files that vanished or changed).
pub fn outcome(
    result: Result<TargetStats, EngineError>,
    counts: &SourceCounts,
) -> (TargetStats, ExitCode, Option<String>) {
    match result {
        Ok(stats) => {
            let exit = if stats.file_errors > 0 || counts.read_errors > 0 {
                ExitCode::Partial
            } else if counts.vanished > 0 {
                ExitCode::Vanished
            } else {
                ExitCode::Ok
            };
            (stats, exit, None)
        }
        Err(e) => (TargetStats::default(), e.exit, Some(e.message)),
    }
}

impl Summary {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        source: &SourceCounts,
        target: &TargetStats,
        retries: u64,
        bytes_on_wire: u64,
        duration: Duration,
        exit: ExitCode,
        error: Option<String>,
    ) -> Summary {
        let unchanged = source
            .files_unchanged
            .saturating_sub(source.files_would_change);
        Summary {
            event: "summary",
            schema: SCHEMA,
            files_total: source.files_total,
            files_transferred: target.files_transferred,
            files_unchanged: unchanged,
            files_deleted: target.deleted,
            bytes_total: source.bytes_total,
            bytes_transferred: target.bytes_written,
            bytes_literal: source.bytes_literal,
            bytes_matched: source.bytes_matched,
            bytes_on_wire,
            speedup: speedup(source.bytes_total, bytes_on_wire),
            entries_total: source.entries_total,
            entries_created: target.entries_created,
            meta_updated: target.meta_updated,
            files_delta: source.files_delta,
            files_resent: target.resent,
            files_inplace: target.files_inplace,
            file_errors: target.file_errors,
            source_read_errors: source.read_errors,
            source_vanished: source.vanished,
            delete_skipped: target.delete_skipped,
            retries,
            streams: 1,
            bytes_resumed: source.bytes_resumed,
            not_applied_owner: target.not_applied_owner,
            not_applied_xattrs: target.not_applied_xattrs,
            not_applied_special: target.not_applied_special,
            not_applied_examples: source.not_applied_examples.clone(),
            bytes_before_compression: source.bytes_before_compression,
            bytes_after_compression: source.bytes_after_compression,
            space_free: target.space_free,
            space_reserved: target.space_reserved,
            inodes_free: target.inodes_free,
            space_needed: target.space_needed,
            inodes_needed: target.inodes_needed,
            space_short: space_short(target),
            duration_s: duration.as_secs_f64(),
            exit_code: exit.code(),
            exit,
            error,
            errors: Vec::new(),
            block: None,
        }
    }

    /// The human-readable report, like rsync's `--stats`.
    pub fn to_text(&self) -> String {
        if self.error.is_some() && self.entries_total == 0 {
            return format!("exit code {}\n", self.exit_code);
        }
        let mut out = format!(
            "files: {} scanned, {} transferred ({} as delta, {} re-sent), {} unchanged, {} deleted\n\
             bytes: {} total, {} written, {} literal, {} matched, {} on the wire (speedup {:.1})\n\
             entries: {} scanned, {} created, {} attribute updates\n",
            self.files_total,
            self.files_transferred,
            self.files_delta,
            self.files_resent,
            self.files_unchanged,
            self.files_deleted,
            self.bytes_total,
            self.bytes_transferred,
            self.bytes_literal,
            self.bytes_matched,
            self.bytes_on_wire,
            self.speedup,
            self.entries_total,
            self.entries_created,
            self.meta_updated,
        );
        if self.streams > 1 {
            out.push_str(&format!("streams: over {} streams\n", self.streams));
        }
        if self.files_inplace > 0 {
            out.push_str(&format!(
                "in place: {} files written into the existing file (--inplace, or no room for a second copy)\n",
                self.files_inplace
            ));
        }
        if self.not_applied_owner + self.not_applied_xattrs + self.not_applied_special > 0 {
            out.push_str(&format!(
                "not applied (target lacks privileges): {} ownerships, {} xattrs, {} special files\n",
                self.not_applied_owner, self.not_applied_xattrs, self.not_applied_special
            ));
            for example in &self.not_applied_examples {
                out.push_str(&format!(
                    "  e.g. {}: {}\n",
                    example.path,
                    example.what.join(", ")
                ));
            }
        }
        if self.file_errors + self.source_read_errors + self.source_vanished > 0 {
            out.push_str(&format!(
                "problems: {} file errors at the target, {} read errors and {} vanished or changed files at the source\n",
                self.file_errors, self.source_read_errors, self.source_vanished
            ));
        }
        for error in &self.errors {
            out.push_str(&format!("  error at the {error}\n"));
        }
        let listed = self.errors.len() as u64;
        if self.file_errors > listed && listed > 0 {
            out.push_str(&format!("  ... and {} more\n", self.file_errors - listed));
        }
        out.push_str(&format!(
            "retries: {} (resumed {} bytes from partial files)\n",
            self.retries, self.bytes_resumed
        ));
        if self.bytes_before_compression > 0 {
            out.push_str(&format!(
                "compression: {} frame bytes sent as {}\n",
                self.bytes_before_compression, self.bytes_after_compression
            ));
        }
        if let Some(block) = &self.block {
            out.push_str(&format!(
                "device: {} bytes, {} zeroed, {} bytes past the source's end kept as they were\n",
                block.device_size, block.bytes_zeroed, block.tail_kept
            ));
        }
        if self.delete_skipped {
            out.push_str("deletions skipped because the source had read errors\n");
        }
        if self.space_free > 0 {
            out.push_str(&format!(
                "target space: {} bytes needed of {} free ({} reserved for root), {} inodes of {} free\n",
                self.space_needed,
                self.space_free,
                self.space_reserved,
                self.inodes_needed,
                self.inodes_free
            ));
        }
        if self.space_short {
            out.push_str(
                "warning: the target volume is too small for this transfer: the real run would \
                 stop with exit 11 before filling it; free space there or grow it (the PVC)\n",
            );
        }
        out.push_str(&format!(
            "done in {:.2} s, exit code {}\n",
            self.duration_s, self.exit_code
        ));
        out
    }
}

/// Whether the writes need more than the target had free (known only when it said what
/// it had: 0 free bytes reads as unknown).
fn space_short(target: &TargetStats) -> bool {
    target.space_free > 0
        && (target.space_needed > target.space_free
            || (target.inodes_free > 0 && target.inodes_needed > target.inodes_free))
}

fn speedup(total: u64, wire: u64) -> f64 {
    if wire == 0 {
        return 0.0;
    }
    (total as f64 / wire as f64 * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_has_every_count_and_the_errors() {
        let source = SourceCounts {
            files_total: 10,
            bytes_total: 4000,
            entries_total: 12,
            files_unchanged: 7,
            ..SourceCounts::default()
        };
        let target = TargetStats {
            files_transferred: 2,
            file_errors: 1,
            deleted: 3,
            not_applied_owner: 4,
            ..TargetStats::default()
        };
        let mut summary = Summary::new(
            &source,
            &target,
            1,
            1000,
            Duration::from_millis(1500),
            ExitCode::Partial,
            None,
        );
        summary.errors.push("target: a\\nb: no space".into());
        let text = summary.to_text();
        for expected in [
            "files: 10 scanned, 2 transferred (0 as delta, 0 re-sent), 7 unchanged, 3 deleted",
            "1000 on the wire (speedup 4.0)",
            "not applied (target lacks privileges): 4 ownerships",
            "  error at the target: a\\nb: no space",
            "retries: 1",
            "done in 1.50 s, exit code 23",
        ] {
            assert!(text.contains(expected), "{expected:?} missing from\n{text}");
        }
        let json = serde_json::to_value(&summary).unwrap();
        assert_eq!(json["schema"], 1);
        assert_eq!(json["speedup"], 4.0);
        assert!(json.get("errors").is_none());
        assert_eq!(json["streams"], 1);
        assert!(
            !text.contains("streams"),
            "one stream is not worth a line:\n{text}"
        );
    }

    #[test]
    fn several_streams_are_reported() {
        let mut summary = Summary::new(
            &SourceCounts::default(),
            &TargetStats::default(),
            0,
            0,
            Duration::from_secs(1),
            ExitCode::Ok,
            None,
        );
        summary.streams = 4;
        assert!(summary.to_text().contains("streams: over 4 streams\n"));
        assert_eq!(serde_json::to_value(&summary).unwrap()["streams"], 4);
    }
}
