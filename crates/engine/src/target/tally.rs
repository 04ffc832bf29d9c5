//! What the planner and finisher count as they go, folded into the session's
//! [`TargetStats`] at the end, and the first entries with attributes not applied, kept
//! as examples for the report.

use ferry_proto::{RelPath, TargetStats};
use ferry_tree::NotApplied;

/// Counts the planner and finisher keep, folded into [`TargetStats`] at the end.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    pub entries_created: u64,
    pub meta_updated: u64,
    pub file_errors: u64,
    pub not_applied_owner: u64,
    pub not_applied_xattrs: u64,
    pub not_applied_special: u64,
    /// The first entries with something not applied, to show as examples.
    pub examples: Vec<(Vec<u8>, NotApplied)>,
}

/// How many entries with attributes not applied are named in a session's report.
pub const NOT_APPLIED_EXAMPLES: usize = 10;

impl Tally {
    /// Counts what could not be applied to `path` (and keeps it as an example).
    pub fn not_applied(&mut self, path: &RelPath, n: NotApplied) {
        self.not_applied_owner += u64::from(n.owner);
        self.not_applied_xattrs += u64::from(n.xattrs);
        self.not_applied_special += u64::from(n.special);
        if n != NotApplied::default() && self.examples.len() < NOT_APPLIED_EXAMPLES {
            self.examples.push((path.as_bytes().to_vec(), n));
        }
    }

    pub fn add_to(&self, stats: &mut TargetStats) {
        stats.entries_created += self.entries_created;
        stats.meta_updated += self.meta_updated;
        stats.file_errors += self.file_errors;
        stats.not_applied_owner += self.not_applied_owner;
        stats.not_applied_xattrs += self.not_applied_xattrs;
        stats.not_applied_special += self.not_applied_special;
    }
}
