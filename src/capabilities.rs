//! Capabilities at start: `--keep-caps` across `--run-as`, raising what a non-root
//! process was permitted (file capabilities on the binary, as the `least` pods use)
//! into its effective set, and saying once, up front, what a side cannot do.
//!
//! ```text
//! root + --run-as U [--keep-caps L] (L = ∅ without --keep-caps):
//!   drop ∁L from the bounding set ─▶ [PR_SET_KEEPCAPS] ─▶ setresuid(U) ─▶ capset(P = E = L, I = ∅)
//!   ─▶ keepcaps off, ambient cleared ─▶ PR_SET_NO_NEW_PRIVS
//!   ─▶ verify (E = P = L, I = A = ∅, bounding ⊆ L, no new privileges)
//! any uid, at start: E |= P ∩ {the capabilities Ferry uses}
//! ```
//!
//! Like `privileges`, this runs in `main` while the process is one thread: capability
//! sets belong to a thread, and every thread the runtime starts later inherits them.
//! Uses rustix's raw `capget`/`capset`/`prctl`; nothing here touches a volume.

use anyhow::{bail, Context, Result};
use ferry_engine::{Cap, Caps, PrivilegeReport, Side};
use rustix::io::Errno;
use rustix::thread::{self as rthread, CapabilitySet, CapabilitySets};

/// `--keep-caps LIST`: the capabilities to keep; unknown names are refused with the
/// known ones.
pub fn parse_keep(list: &str) -> Result<Caps> {
    Caps::parse_list(list).map_err(|e| anyhow::anyhow!("--keep-caps {list:?}: {e}"))
}

/// As root, before `setresuid`: take every capability not in `keep` out of the
/// bounding set (needs `CAP_SETPCAP`, which root still has), so that nothing the process
/// later runs can gain one back, and, when `keep` was asked for (`across`), ask the
/// kernel to keep the permitted set across the uid change.
pub fn prepare_keep(keep: Caps, across: bool) -> Result<()> {
    let keep = keep.to_set();
    for cap in every_capability() {
        if keep.contains(cap) {
            continue;
        }
        match rthread::remove_capability_from_bounding_set(cap) {
            // EINVAL: a capability this kernel does not know.
            Ok(()) | Err(Errno::INVAL) => {}
            Err(e) => {
                return Err(e).context("dropping a capability from the bounding set (--keep-caps)")
            }
        }
    }
    if !across {
        return Ok(());
    }
    rthread::set_keep_capabilities(true).context("prctl(PR_SET_KEEPCAPS) for --keep-caps")
}

/// After `--run-as`, last: no `execve` can grant privileges again (set-id bits and file
/// capabilities of whatever the process might run are ignored), for good.
pub fn no_new_privs() -> Result<()> {
    rthread::set_no_new_privs(true).context("prctl(PR_SET_NO_NEW_PRIVS)")
}

/// Checks [`no_new_privs`] took.
pub fn verify_no_new_privs() -> Result<()> {
    match rthread::no_new_privs() {
        Ok(true) => Ok(()),
        Ok(false) => bail!("--run-as did not take: PR_SET_NO_NEW_PRIVS is not set"),
        Err(e) => Err(e).context("prctl(PR_GET_NO_NEW_PRIVS)"),
    }
}

/// After `setresuid`: exactly `keep` permitted and effective, nothing inheritable or
/// ambient, and keep-caps off again (a later uid change would drop them).
pub fn finish_keep(keep: Caps) -> Result<()> {
    let set = keep.to_set();
    rthread::set_capabilities(
        None,
        CapabilitySets {
            effective: set,
            permitted: set,
            inheritable: CapabilitySet::empty(),
        },
    )
    .with_context(|| format!("capset to keep {keep}"))?;
    rthread::set_keep_capabilities(false).context("prctl(PR_SET_KEEPCAPS, 0)")?;
    rthread::clear_ambient_capability_set().context("clearing the ambient capabilities")
}

/// Checks that the process holds exactly `keep` (permitted and effective), nothing
/// inheritable or ambient, and, when `bounded`, nothing else in its bounding set.
pub fn verify_kept(keep: Caps, bounded: bool) -> Result<()> {
    let sets = rthread::capabilities(None).context("capget")?;
    let want = keep.to_set();
    if sets.effective != want || sets.permitted != want || !sets.inheritable.is_empty() {
        bail!(
            "--keep-caps {keep} did not take: the process holds effective {}, permitted {}, \
             inheritable {} (capability names from Ferry's list; others shown as bits {:#x})",
            Caps::from_set(sets.effective),
            Caps::from_set(sets.permitted),
            Caps::from_set(sets.inheritable),
            (sets.permitted - want).bits()
        );
    }
    for cap in every_capability() {
        if rthread::capability_is_in_ambient_set(cap).unwrap_or(false) {
            bail!("--keep-caps {keep} did not take: a capability is still ambient ({cap:?})");
        }
        if bounded && !want.contains(cap) {
            match rthread::capability_is_in_bounding_set(cap) {
                Ok(false) | Err(Errno::INVAL) => {}
                Ok(true) => {
                    bail!("--keep-caps {keep} did not take: {cap:?} is still in the bounding set")
                }
                Err(e) => return Err(e).context("reading the bounding set"),
            }
        }
    }
    Ok(())
}

/// Not root, `--keep-caps` given: nothing can be gained, so keep means "drop the rest"
/// and every listed capability must already be held (a pod's `capabilities.add`).
pub fn restrict_to(keep: Caps) -> Result<()> {
    let sets = rthread::capabilities(None).context("capget")?;
    let held = Caps::from_set(sets.permitted);
    let missing: Vec<String> = keep
        .iter()
        .filter(|c| !held.has(*c))
        .map(|c| c.to_string())
        .collect();
    if !missing.is_empty() {
        bail!(
            "--keep-caps {keep}: this process (uid {}) does not hold {}, so it cannot keep it; \
             grant it in the pod spec (securityContext.capabilities.add) or start ferry as root",
            rustix::process::geteuid().as_raw(),
            missing.join(", ")
        );
    }
    finish_keep(keep)?;
    verify_kept(keep, false)
}

/// Raises into the effective set what `sides` use of what the process is permitted but
/// does not have effective: a binary with file capabilities `+p` (not `+ep`, so that
/// `execve` never fails when the pod grants fewer) starts with them permitted only.
/// A non-root process also gives up every other capability it is permitted (a push, a
/// source, keeps DAC_READ_SEARCH and nothing that writes): file capabilities are the
/// binary's, whoever runs it. Root keeps what it has, as before. A failure leaves the
/// sets as they were; what is then missing is said by the up-front report.
pub fn raise_effective(sides: &[Side]) {
    let Ok(sets) = rthread::capabilities(None) else {
        return;
    };
    let needed = sides
        .iter()
        .flat_map(|side| side_caps(*side).iter().copied())
        .collect::<Caps>()
        .to_set();
    let wanted = sets.permitted & needed;
    let root = rustix::process::geteuid().is_root();
    let narrowed = if root {
        CapabilitySets {
            effective: sets.effective | wanted,
            ..sets
        }
    } else {
        CapabilitySets {
            effective: wanted,
            permitted: wanted,
            inheritable: CapabilitySet::empty(),
        }
    };
    if narrowed == sets {
        return;
    }
    let raised = narrowed;
    if let Err(e) = rthread::set_capabilities(None, raised) {
        tracing::debug!("cannot raise permitted capabilities to effective: {e}");
    }
}

/// Says on stderr, once and before anything is transferred, what each of `sides`
/// cannot do with the capabilities this process holds now.
pub fn warn_up_front(sides: &[Side], quiet: bool) {
    if quiet {
        return;
    }
    for side in sides {
        for line in PrivilegeReport::current(*side).lines() {
            eprintln!("ferry: warning: {line}");
        }
    }
}

/// What a side needs to do what root would, as Kubernetes names them
/// (`capabilities.add` of a `least` pod, and the image's file capabilities):
/// the source reads everything; the target applies owners, modes, set-id bits and
/// times, and fills directories it gave away. Device nodes (`MKNOD`), file
/// capabilities (`SETFCAP`) and `trusted.*` xattrs (`SYS_ADMIN`) are left out: rare
/// in application volumes, and counted as not applied when met.
pub fn least_caps(side: Side) -> Vec<String> {
    side_caps(side).iter().map(|c| c.k8s_name()).collect()
}

/// What each side uses: the source reads every file, the target applies owners,
/// modes and set-id bits.
fn side_caps(side: Side) -> &'static [Cap] {
    match side {
        Side::Source => &[Cap::DacReadSearch],
        Side::Target => &[Cap::Chown, Cap::DacOverride, Cap::Fowner, Cap::Fsetid],
    }
}

/// Every capability number the kernel may know, one bit each (those it does not know
/// answer `EINVAL`).
fn every_capability() -> impl Iterator<Item = CapabilitySet> {
    (0..u64::BITS).map(|bit| CapabilitySet::from_bits_retain(1 << bit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_lists_are_parsed_and_unknown_names_refused_with_the_known_ones() {
        let keep = parse_keep("dac_read_search,chown,fowner").unwrap();
        assert!(keep.has(Cap::DacReadSearch) && keep.has(Cap::Chown) && keep.has(Cap::Fowner));
        assert_eq!(keep.iter().count(), 3);
        let err = parse_keep("chown,net_admin").unwrap_err().to_string();
        assert!(
            err.contains("--keep-caps \"chown,net_admin\": unknown capability \"net_admin\"; known: dac_read_search, dac_override, chown, fowner, fsetid, mknod, setfcap, sys_admin"),
            "{err}"
        );
    }

    #[test]
    fn every_capability_the_kernel_may_know_is_visited_once() {
        let all: Vec<CapabilitySet> = every_capability().collect();
        assert_eq!(all.len(), 64);
        assert!(all.iter().all(|c| c.bits().count_ones() == 1));
        assert!(all.contains(&CapabilitySet::CHOWN));
        assert!(all.contains(&CapabilitySet::CHECKPOINT_RESTORE));
    }
}
