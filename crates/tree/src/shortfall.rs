//! What one side cannot do with the capabilities it was given, in words a user can act
//! on. Said once, up front (stderr, and a `privileges` event on `--json`); what then
//! happens is counted in the summary as before (not applied, per-file errors).
//!
//! Only the consequences are here; the decisions themselves are made where the
//! syscalls are ([`crate::Privileges`], the walker), and the kernel has the last word.

use std::fmt;

use crate::caps::{Cap, Caps};

/// Which half of a transfer this process does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// Reads the tree (`push`, `serve` answering a pull).
    Source,
    /// Writes the tree (`serve` receiving a push, `pull`).
    Target,
}

impl Side {
    pub fn name(self) -> &'static str {
        match self {
            Side::Source => "source",
            Side::Target => "target",
        }
    }

    /// The capabilities this side uses, in the order they are reported.
    pub fn uses(self) -> &'static [Cap] {
        match self {
            Side::Source => &[Cap::DacReadSearch, Cap::SysAdmin],
            Side::Target => &[
                Cap::Chown,
                Cap::Fowner,
                Cap::Fsetid,
                Cap::DacOverride,
                Cap::Mknod,
                Cap::Setfcap,
                Cap::SysAdmin,
            ],
        }
    }
}

/// One capability this side lacks and what that costs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shortfall {
    pub cap: Cap,
    /// `owners will not be applied`.
    pub effect: &'static str,
}

/// Everything a side says up front about its privileges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrivilegeReport {
    pub side: Side,
    /// The effective uid.
    pub uid: u32,
    /// The capabilities Ferry uses that this process holds (effective set).
    pub held: Caps,
    pub missing: Vec<Shortfall>,
}

impl PrivilegeReport {
    /// The report for this process as it is now (call after any identity change).
    pub fn current(side: Side) -> PrivilegeReport {
        PrivilegeReport::new(side, rustix::process::geteuid().as_raw(), Caps::effective())
    }

    pub fn new(side: Side, uid: u32, held: Caps) -> PrivilegeReport {
        let missing = side
            .uses()
            .iter()
            .filter_map(|&cap| {
                let effect = effect(side, cap, held)?;
                Some(Shortfall { cap, effect })
            })
            .collect();
        PrivilegeReport {
            side,
            uid,
            held,
            missing,
        }
    }

    /// One line per shortfall: `running as uid 1001 without CAP_CHOWN: owners will not
    /// be applied; add it or run as root`.
    pub fn lines(&self) -> Vec<String> {
        self.missing.iter().map(|s| self.line(s)).collect()
    }

    pub fn line(&self, shortfall: &Shortfall) -> String {
        let remedy = if self.uid == 0 {
            "add it to the container's capabilities"
        } else {
            "add it or run as root"
        };
        format!(
            "{} running as uid {} without {}: {}; {remedy}",
            self.side.name(),
            self.uid,
            shortfall.cap,
            shortfall.effect
        )
    }
}

impl fmt::Display for PrivilegeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.lines().join("\n"))
    }
}

/// What lacking `cap` costs `side`, or `None` when nothing is lost (held, or another
/// capability held covers it).
fn effect(side: Side, cap: Cap, held: Caps) -> Option<&'static str> {
    if held.has(cap) {
        return None;
    }
    Some(match (side, cap) {
        // CAP_DAC_OVERRIDE also lets a process read and search anything.
        (Side::Source, Cap::DacReadSearch) if held.has(Cap::DacOverride) => return None,
        (Side::Source, Cap::DacReadSearch) => {
            "files and directories this uid may not read will be skipped and reported (exit 23)"
        }
        (Side::Source, Cap::SysAdmin) => "trusted.* xattrs are invisible and will not be copied",
        (Side::Target, Cap::Chown) => "owners will not be applied",
        (Side::Target, Cap::Fowner) => {
            "modes, set-id bits and times of entries owned by another user will not be applied"
        }
        (Side::Target, Cap::Fsetid) => {
            "setgid on files whose group this process is not in will not be applied"
        }
        (Side::Target, Cap::DacOverride) => {
            "directories owned by another user (from an earlier pass) cannot be filled or emptied"
        }
        (Side::Target, Cap::Mknod) => "device nodes will not be created",
        (Side::Target, Cap::Setfcap) => {
            "file capabilities (security.capability) will not be applied"
        }
        (Side::Target, Cap::SysAdmin) => "trusted.* xattrs will not be applied",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_with_dac_read_search_or_dac_override_reads_everything() {
        let caps = |list| Caps::parse_list(list).unwrap();
        for held in ["dac_read_search,sys_admin", "dac_override,sys_admin"] {
            let report = PrivilegeReport::new(Side::Source, 1001, caps(held));
            assert!(report.missing.is_empty(), "{held}: {report}");
        }
        let report = PrivilegeReport::new(Side::Source, 1001, caps("sys_admin"));
        assert_eq!(
            report.lines(),
            [
                "source running as uid 1001 without CAP_DAC_READ_SEARCH: files and directories \
              this uid may not read will be skipped and reported (exit 23); add it or run as root"
            ]
        );
    }

    #[test]
    fn a_target_names_each_missing_capability_and_a_root_without_it_is_told_to_add_it() {
        let report = PrivilegeReport::new(Side::Target, 1001, Caps::NONE);
        let missing: Vec<Cap> = report.missing.iter().map(|s| s.cap).collect();
        assert_eq!(missing, Side::Target.uses());
        assert_eq!(
            report.lines()[0],
            "target running as uid 1001 without CAP_CHOWN: owners will not be applied; \
             add it or run as root"
        );
        let held = Caps::parse_list("chown,fowner,fsetid,dac_override").unwrap();
        let root = PrivilegeReport::new(Side::Target, 0, held);
        let missing: Vec<Cap> = root.missing.iter().map(|s| s.cap).collect();
        assert_eq!(missing, [Cap::Mknod, Cap::Setfcap, Cap::SysAdmin]);
        assert!(root.lines()[0].ends_with("; add it to the container's capabilities"));
        assert!(PrivilegeReport::new(Side::Target, 0, Caps::ALL)
            .missing
            .is_empty());
    }
}
