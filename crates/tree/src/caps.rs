//! The Linux capabilities Ferry's filesystem work depends on, and which of them this
//! process holds. "Is root" is the wrong question: a root process without `CAP_CHOWN`
//! cannot chown, and a uid-1001 process with `CAP_DAC_READ_SEARCH` reads every file.
//! Each decision asks for the one capability its syscall needs, as the kernel will.
//!
//! ```text
//! capget(effective) ─▶ Caps ─▶ Privileges (target decisions)
//!                          └─▶ limits(side) ─▶ what cannot be done, in words (said once, up front)
//! ```
//!
//! Reads the calling thread's sets only (`capget`); changing them is the binary's
//! business (`--run-as --keep-caps`), before any other thread exists.

use std::fmt;

use rustix::thread::CapabilitySet;

/// One capability Ferry uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cap {
    /// Source: read every file and search every directory, whatever its owner and mode.
    DacReadSearch,
    /// Target: write into directories and files owned by others (a later pass, xattrs).
    DacOverride,
    /// Target: give entries their numeric owner and group.
    Chown,
    /// Target: set mode, times and xattrs of entries it no longer owns after the chown;
    /// link an unnamed file it gave away.
    Fowner,
    /// Target: keep setgid on a file whose group this process is not in.
    Fsetid,
    /// Target: create character and block devices.
    Mknod,
    /// Target: set file capabilities (`security.capability`).
    Setfcap,
    /// Both: see and set `trusted.*` xattrs.
    SysAdmin,
}

impl Cap {
    /// Every capability Ferry uses, in the order they are shown.
    pub const ALL: [Cap; 8] = [
        Cap::DacReadSearch,
        Cap::DacOverride,
        Cap::Chown,
        Cap::Fowner,
        Cap::Fsetid,
        Cap::Mknod,
        Cap::Setfcap,
        Cap::SysAdmin,
    ];

    /// The name `--keep-caps` takes: `dac_read_search`.
    pub fn name(self) -> &'static str {
        match self {
            Cap::DacReadSearch => "dac_read_search",
            Cap::DacOverride => "dac_override",
            Cap::Chown => "chown",
            Cap::Fowner => "fowner",
            Cap::Fsetid => "fsetid",
            Cap::Mknod => "mknod",
            Cap::Setfcap => "setfcap",
            Cap::SysAdmin => "sys_admin",
        }
    }

    /// The name Kubernetes' `capabilities.add` takes: `DAC_READ_SEARCH`.
    pub fn k8s_name(self) -> String {
        self.name().to_ascii_uppercase()
    }

    /// `dac_read_search`, `DAC_READ_SEARCH`, `cap_dac_read_search` or `CAP_DAC_READ_SEARCH`.
    pub fn parse(text: &str) -> Option<Cap> {
        let lower = text.trim().to_ascii_lowercase();
        let bare = lower.strip_prefix("cap_").unwrap_or(&lower);
        Cap::ALL.into_iter().find(|c| c.name() == bare)
    }

    fn set(self) -> CapabilitySet {
        match self {
            Cap::DacReadSearch => CapabilitySet::DAC_READ_SEARCH,
            Cap::DacOverride => CapabilitySet::DAC_OVERRIDE,
            Cap::Chown => CapabilitySet::CHOWN,
            Cap::Fowner => CapabilitySet::FOWNER,
            Cap::Fsetid => CapabilitySet::FSETID,
            Cap::Mknod => CapabilitySet::MKNOD,
            Cap::Setfcap => CapabilitySet::SETFCAP,
            Cap::SysAdmin => CapabilitySet::SYS_ADMIN,
        }
    }

    fn bit(self) -> u8 {
        1 << Cap::ALL.iter().position(|c| *c == self).expect("listed")
    }
}

impl fmt::Display for Cap {
    /// `CAP_DAC_READ_SEARCH`, as the kernel's documentation names it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CAP_{}", self.k8s_name())
    }
}

/// A set of the capabilities Ferry uses.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct Caps(u8);

impl Caps {
    pub const NONE: Caps = Caps(0);
    pub const ALL: Caps = Caps(u8::MAX);

    /// What the calling thread holds in its effective set: what the kernel checks.
    /// A failing `capget` (a seccomp profile that forbids it) counts as holding none.
    pub fn effective() -> Caps {
        rustix::thread::capabilities(None).map_or(Caps::NONE, |s| Caps::from_set(s.effective))
    }

    /// What the calling thread may raise into its effective set.
    pub fn permitted() -> Caps {
        rustix::thread::capabilities(None).map_or(Caps::NONE, |s| Caps::from_set(s.permitted))
    }

    pub fn from_set(set: CapabilitySet) -> Caps {
        Cap::ALL
            .into_iter()
            .filter(|c| set.contains(c.set()))
            .collect()
    }

    pub fn to_set(self) -> CapabilitySet {
        self.iter()
            .fold(CapabilitySet::empty(), |set, c| set | c.set())
    }

    pub fn has(self, cap: Cap) -> bool {
        self.0 & cap.bit() != 0
    }

    pub fn with(self, cap: Cap) -> Caps {
        Caps(self.0 | cap.bit())
    }

    pub fn is_empty(self) -> bool {
        self.iter().next().is_none()
    }

    pub fn iter(self) -> impl Iterator<Item = Cap> {
        Cap::ALL.into_iter().filter(move |c| self.has(*c))
    }

    /// A comma-separated list (`dac_read_search,chown`); an unknown name is refused
    /// with the list of known ones.
    pub fn parse_list(list: &str) -> Result<Caps, String> {
        let mut caps = Caps::NONE;
        for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match Cap::parse(part) {
                Some(cap) => caps = caps.with(cap),
                None => {
                    let known: Vec<&str> = Cap::ALL.iter().map(|c| c.name()).collect();
                    return Err(format!(
                        "unknown capability {part:?}; known: {}",
                        known.join(", ")
                    ));
                }
            }
        }
        Ok(caps)
    }
}

impl FromIterator<Cap> for Caps {
    fn from_iter<I: IntoIterator<Item = Cap>>(iter: I) -> Caps {
        iter.into_iter().fold(Caps::NONE, Caps::with)
    }
}

impl fmt::Debug for Caps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for Caps {
    /// `dac_read_search,chown`, or `none`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("none");
        }
        let names: Vec<&str> = self.iter().map(Cap::name).collect();
        f.write_str(&names.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_in_every_spelling() {
        for cap in Cap::ALL {
            assert_eq!(Cap::parse(cap.name()), Some(cap));
            assert_eq!(Cap::parse(&cap.k8s_name()), Some(cap));
            assert_eq!(Cap::parse(&cap.to_string()), Some(cap));
        }
        assert_eq!(Cap::parse("setuid"), None);
        assert_eq!(Cap::to_string(&Cap::DacReadSearch), "CAP_DAC_READ_SEARCH");
    }

    #[test]
    fn lists_parse_and_refuse_unknown_names_with_the_known_ones() {
        let caps = Caps::parse_list("dac_read_search, CHOWN,cap_fowner,chown").unwrap();
        assert_eq!(caps.to_string(), "dac_read_search,chown,fowner");
        assert_eq!(Caps::parse_list("").unwrap(), Caps::NONE);
        let err = Caps::parse_list("chown,setuid").unwrap_err();
        assert!(err.contains("\"setuid\""), "{err}");
        assert!(
            err.contains("dac_read_search, dac_override, chown"),
            "{err}"
        );
    }

    #[test]
    fn sets_convert_both_ways() {
        let caps = Caps::NONE.with(Cap::Chown).with(Cap::SysAdmin);
        let set = caps.to_set();
        assert_eq!(set, CapabilitySet::CHOWN | CapabilitySet::SYS_ADMIN);
        assert_eq!(Caps::from_set(set | CapabilitySet::SETUID), caps);
        assert_eq!(Caps::from_set(CapabilitySet::all()), Caps::ALL);
        assert_eq!(Caps::ALL.iter().count(), Cap::ALL.len());
        assert!(!Caps::NONE.has(Cap::Chown) && Caps::NONE.is_empty());
    }
}
