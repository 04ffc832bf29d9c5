//! Who Ferry runs as: supplemental groups for shared storage that grants access by group
//! (MTC's `src_supplemental_groups` / `target_supplemental_groups`), and `--run-as` to
//! drop from root to a plain identity.
//!
//! ```text
//! root:     read TLS, bind ─▶ setgroups(LIST) ─▶ setresgid(GID) ─▶ bounding set ⊆ kept
//!           [keep-caps: PR_SET_KEEPCAPS] ─▶ setresuid(UID) ─▶ capset (I = ∅) ─▶
//!           PR_SET_NO_NEW_PRIVS ─▶ verify ─▶ runtime (the capability steps are `capabilities`)
//! non-root: check LIST ⊆ the groups the process holds (kubelet's supplementalGroups) ─▶ runtime
//! ```
//!
//! Why raw syscalls (rustix) are correct here: on Linux, credentials belong to a thread;
//! glibc's `setgroups`/`setuid` broadcast the change to every thread, the raw syscalls do
//! not. Ferry changes credentials in `main` before the tokio runtime or any other thread
//! exists, and checks that it is alone, so the one thread is the whole process and every
//! thread started later inherits the new credentials. That needs no libc-broadcast crate
//! (`nix`) and works the same on musl and glibc.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{bail, Context, Result};
use rustix::fs::{accessat, Access, AtFlags, CWD};
use rustix::io::Errno;
use rustix::process::{getegid, geteuid, getgid, getgroups, getuid, Gid, Uid};
use rustix::thread::{set_thread_groups, set_thread_res_gid, set_thread_res_uid};

use crate::args::PrivilegeArgs;
use crate::capabilities::{self, parse_keep};
use ferry_engine::Caps;

/// The identity asked for on the command line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    /// Supplemental groups (`--supplemental-groups`, `FERRY_SUPPLEMENTAL_GROUPS`).
    pub groups: Vec<u32>,
    /// `--run-as UID:GID`.
    pub run_as: Option<(u32, u32)>,
    /// `--keep-caps LIST` (only with `--run-as`): kept across the change, all others dropped.
    pub keep: Option<Caps>,
}

impl Identity {
    pub fn from_args(args: &PrivilegeArgs) -> Result<Identity> {
        let groups = match &args.supplemental_groups {
            Some(list) => parse_groups(list)?,
            None => Vec::new(),
        };
        let run_as = args.run_as.as_deref().map(parse_run_as).transpose()?;
        let keep = args.keep_caps.as_deref().map(parse_keep).transpose()?;
        if keep.is_some() && run_as.is_none() {
            bail!("--keep-caps needs --run-as UID[:GID]: it says what to keep across that change");
        }
        Ok(Identity {
            groups,
            run_as,
            keep,
        })
    }

    /// Whether anything was asked for at all.
    pub fn is_requested(&self) -> bool {
        !self.groups.is_empty() || self.run_as.is_some()
    }

    /// Takes on this identity. Call while the process has a single thread (before the
    /// runtime starts) and after everything that needs root (TLS files, the port).
    pub fn apply(&self) -> Result<()> {
        if !self.is_requested() {
            return Ok(());
        }
        if geteuid().is_root() {
            self.apply_as_root()
        } else {
            self.check_held()
        }
    }

    fn apply_as_root(&self) -> Result<()> {
        ensure_single_threaded()?;
        let groups: Vec<Gid> = self.groups.iter().map(|&g| Gid::from_raw(g)).collect();
        match self.run_as {
            // Dropping to a plain user: the groups become exactly the list (root's own
            // supplemental groups, such as 0, must not come along).
            Some((uid, gid)) => {
                set_thread_groups(&groups).context("setgroups")?;
                let gid = Gid::from_raw(gid);
                set_thread_res_gid(gid, gid, gid).context("setresgid")?;
                // Without --keep-caps nothing is kept: the bounding and inheritable sets
                // are emptied all the same.
                let keep = self.keep.unwrap_or(Caps::NONE);
                capabilities::prepare_keep(keep, self.keep.is_some())?;
                let uid = Uid::from_raw(uid);
                set_thread_res_uid(uid, uid, uid).context("setresuid")?;
                capabilities::finish_keep(keep)?;
                capabilities::no_new_privs()?;
            }
            // Staying root: add the groups (a root without them may still be denied by
            // root-squashing NFS, where root counts as nobody plus its groups).
            None => set_thread_groups(&groups).context("setgroups")?,
        }
        self.verify()
    }

    /// Checks that the change took: ids, and the group list exactly.
    fn verify(&self) -> Result<()> {
        let mut held: Vec<u32> = getgroups()
            .context("getgroups")?
            .iter()
            .map(|g| g.as_raw())
            .collect();
        held.sort_unstable();
        held.dedup();
        let mut want = self.groups.clone();
        want.sort_unstable();
        want.dedup();
        if held != want {
            bail!(
                "setgroups did not take: the process holds groups {} instead of {}",
                show(&held),
                show(&want)
            );
        }
        if let Some((uid, gid)) = self.run_as {
            let now = (getuid().as_raw(), geteuid().as_raw());
            let now_gid = (getgid().as_raw(), getegid().as_raw());
            if now != (uid, uid) || now_gid != (gid, gid) {
                bail!(
                    "--run-as {uid}:{gid} did not take: running as uid {}/{} gid {}/{} (real/effective)",
                    now.0,
                    now.1,
                    now_gid.0,
                    now_gid.1
                );
            }
            // A dropped process must not be able to come back.
            if set_thread_res_uid(Uid::ROOT, Uid::ROOT, Uid::ROOT).is_ok() {
                bail!("--run-as {uid}:{gid} did not take: the process could become root again");
            }
            let keep = self.keep.unwrap_or(Caps::NONE);
            capabilities::verify_kept(keep, true)
                .with_context(|| format!("--run-as {uid}:{gid} did not drop capabilities"))?;
            capabilities::verify_no_new_privs()?;
        }
        tracing::debug!(identity = %describe(), "credentials applied");
        Ok(())
    }

    /// Not root: nothing can be changed, so every listed group must already be held
    /// (kubelet adds the pod's `securityContext.supplementalGroups`).
    fn check_held(&self) -> Result<()> {
        let uid = getuid().as_raw();
        let gid = getgid().as_raw();
        if let Some((want_uid, want_gid)) = self.run_as {
            if (want_uid, want_gid) != (uid, gid) {
                bail!(
                    "--run-as {want_uid}:{want_gid} needs root, but ferry runs as uid {uid} gid {gid}; \
                     drop --run-as (in a pod, the runtime chooses the user), or start ferry as root"
                );
            }
        }
        if let Some(keep) = self.keep {
            capabilities::restrict_to(keep)?;
        }
        if self.run_as.is_some() {
            capabilities::no_new_privs()?;
        }
        let held = held_groups()?;
        let missing: Vec<u32> = self
            .groups
            .iter()
            .copied()
            .filter(|g| !held.contains(g))
            .collect();
        if let Some(first) = missing.first() {
            bail!(
                "supplemental group {first} is not held by this process (uid {uid}, groups {}){}; \
                 a non-root process cannot add groups: grant them in the pod spec with \
                 `securityContext: {{supplementalGroups: [{}]}}` (MTC: src_supplemental_groups / \
                 target_supplemental_groups), or start ferry as root with --supplemental-groups \
                 and --run-as UID:GID",
                show(&held),
                if missing.len() > 1 {
                    format!("; also missing: {}", show(&missing[1..]))
                } else {
                    String::new()
                },
                self.groups
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        Ok(())
    }
}

/// Fails with a message that names the identity and the groups when `path` (a volume
/// or the source directory) cannot be used after the identity changed: the usual
/// cause is a missing group.
/// After `--run-as`, a server's revoked-fingerprints file (`--revoked-file`, or
/// `STATE/revoked`, read again whenever it changes) must stay readable as the new user,
/// its directory searchable: else a peer revoked while serving would still get in (the
/// server keeps the list it read as root). Refuses to start then.
pub fn check_revocations(config: &ferry_engine::ServeConfig) -> Result<()> {
    let path = match (&config.revoked_file, &config.identity) {
        (Some(file), _) => file.clone(),
        (None, ferry_engine::ServerIdentity::State { dir, .. }) => {
            dir.join(ferry_net::pairing::state::REVOKED)
        }
        (None, ferry_engine::ServerIdentity::Dir(_)) => return Ok(()),
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let readable = accessat(CWD, dir, Access::EXEC_OK, AtFlags::EACCESS).is_ok()
        && match accessat(CWD, &path, Access::READ_OK, AtFlags::EACCESS) {
            Ok(()) | Err(Errno::NOENT) => true,
            Err(_) => false,
        };
    if !readable {
        bail!(
            "the revoked-fingerprints file {} cannot be read as {}: peers revoked while \
             serving would still get in; make it and its directory readable by that user \
             (or give --revoked-file in a directory it can read, or --state-dir one it owns)",
            path.display(),
            describe()
        );
    }
    Ok(())
}

pub fn check_access(what: &str, path: &Path, write: bool) -> Result<()> {
    // Search permission only for a directory: a device or disk image (a block volume)
    // is opened, never searched, and has no execute bit.
    let mut mode = Access::READ_OK;
    if path.is_dir() {
        mode |= Access::EXEC_OK;
    }
    if write {
        mode |= Access::WRITE_OK;
    }
    // AT_EACCESS: as the process will open it, with its effective ids and capabilities
    // (plain access(2) clears the capabilities of a non-root real uid, and would call a
    // 0700 directory unreadable to a source that holds CAP_DAC_READ_SEARCH).
    match accessat(CWD, path, mode, AtFlags::EACCESS) {
        // A missing path is reported later, by the check that expects a directory.
        Ok(()) | Err(Errno::NOENT) => {}
        Err(e) => {
            let (how, cap) = if write {
                ("writable", "dac_override")
            } else {
                ("readable", "dac_read_search")
            };
            bail!(
                "{what} {} is not {how} as {}: {e}; if its storage grants access by group, \
             add the group with --supplemental-groups GID[,GID...] (in a pod: \
             securityContext.supplementalGroups); otherwise keep CAP_{} with \
             --keep-caps {cap}",
                path.display(),
                describe(),
                cap.to_ascii_uppercase()
            );
        }
    }
    Ok(())
}

/// `uid 1001 gid 1001 groups 2000` for messages.
pub fn describe() -> String {
    let mut out = format!("uid {} gid {}", geteuid().as_raw(), getegid().as_raw());
    match held_groups() {
        Ok(groups) => {
            let _ = write!(out, " groups {}", show(&groups));
        }
        Err(_) => out.push_str(" groups unknown"),
    }
    out
}

/// The groups this process holds: its supplemental groups and its effective gid.
fn held_groups() -> Result<Vec<u32>> {
    let mut held: Vec<u32> = getgroups()
        .context("getgroups")?
        .iter()
        .map(|g| g.as_raw())
        .collect();
    held.push(getegid().as_raw());
    held.sort_unstable();
    held.dedup();
    Ok(held)
}

fn show(groups: &[u32]) -> String {
    if groups.is_empty() {
        return "none".to_string();
    }
    groups
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Credentials are per thread on Linux and the syscalls here change only the calling
/// one, so a second thread would keep root. Refuse rather than leave one behind.
/// (Without /proc, e.g. a bare chroot, the check cannot run; `main` is single-threaded
/// by construction at this point, and the tests, which have /proc, keep it that way.)
fn ensure_single_threaded() -> Result<()> {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        tracing::debug!("no /proc/self/status: cannot count threads");
        return Ok(());
    };
    let threads = status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse::<u32>().ok());
    match threads {
        Some(1) => Ok(()),
        Some(n) => bail!("cannot change credentials: the process already runs {n} threads"),
        None => bail!("cannot change credentials: /proc/self/status shows no thread count"),
    }
}

/// `1000,2000` (spaces allowed; an empty list is no groups).
pub fn parse_groups(list: &str) -> Result<Vec<u32>> {
    let mut groups = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let gid = part
            .parse::<u32>()
            .ok()
            .filter(|g| *g != u32::MAX)
            .with_context(|| {
                format!(
                    "supplemental groups {list:?}: {part:?} is not a numeric group id; \
                 give a comma-separated list such as 1000,2000"
                )
            })?;
        if !groups.contains(&gid) {
            groups.push(gid);
        }
    }
    Ok(groups)
}

/// `UID[:GID]`; the GID defaults to the UID.
pub fn parse_run_as(spec: &str) -> Result<(u32, u32)> {
    let bad = || format!("--run-as {spec:?} is not UID[:GID] with numeric ids, e.g. 1001:1001");
    let id = |s: &str| s.trim().parse::<u32>().ok().filter(|i| *i != u32::MAX);
    let (uid, gid) = match spec.split_once(':') {
        Some((uid, gid)) => (id(uid).with_context(bad)?, id(gid).with_context(bad)?),
        None => {
            let uid = id(spec).with_context(bad)?;
            (uid, uid)
        }
    };
    if uid == 0 {
        bail!("--run-as {spec:?}: uid 0 is root; give the plain user to become");
    }
    Ok((uid, gid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_group_lists() {
        assert_eq!(parse_groups("1000,2000").unwrap(), vec![1000, 2000]);
        assert_eq!(
            parse_groups(" 1000 , 2000,1000,").unwrap(),
            vec![1000, 2000]
        );
        assert_eq!(parse_groups("").unwrap(), Vec::<u32>::new());
        for bad in ["staff", "1000;2000", "-1", "4294967295"] {
            assert!(parse_groups(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn parses_run_as() {
        assert_eq!(parse_run_as("1001:2000").unwrap(), (1001, 2000));
        assert_eq!(parse_run_as("1001").unwrap(), (1001, 1001));
        assert_eq!(parse_run_as("1001:0").unwrap(), (1001, 0));
        for bad in ["0", "0:0", "nobody", "1001:", ":1001", "1:2:3"] {
            assert!(parse_run_as(bad).is_err(), "{bad} accepted");
        }
    }
}
