//! Bringing attributes to what the source sent, in the one order that works:
//! owner first (a chown clears setuid/setgid), then xattrs, then mode, then the
//! modification time last.
//!
//! Xattrs go before the mode because without privilege `user.*` attributes need
//! write permission, which a read-only final mode (0o444) would take away; and a
//! POSIX ACL (`system.posix_acl_access`) rewrites the group bits, which the final
//! chmod then brings back to the source's mode, as rsync does.

use std::os::fd::AsFd;

use ferry_proto::{check_name, Limits, Meta, RelPath};
use rustix::fs::{self as rfs, Mode, OFlags};
use rustix::io::Errno;

use super::existing::{kind_of, mtime_of, ExistingKind, NotApplied};
use super::node::Node;
use super::{Dir, Privileges};
use crate::caps::Cap;
use crate::error::{io_err, shown, TreeError};
use crate::xattr;

/// How much of the current state `apply` may assume.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fresh {
    /// Just created by us: no attributes to remove, data just written (set mtime).
    Yes,
    /// Already there: change only what differs.
    No,
}

/// Applies `meta` to `node`. `dir`/`name` are only for messages.
pub(crate) fn apply(
    node: &Node<'_>,
    meta: &Meta,
    privileges: Privileges,
    fresh: Fresh,
    dir: &RelPath,
    name: &[u8],
) -> Result<NotApplied, TreeError> {
    let err = |op: &'static str, e: Errno| io_err(op, shown(dir, name), e);
    let mut not_applied = NotApplied::default();
    let st = node.stat().map_err(|e| err("stat", e))?;
    let is_link = kind_of(st.st_mode) == ExistingKind::Symlink;

    let mut chowned = false;
    if privileges.applies_owners() {
        if st.st_uid != meta.uid || st.st_gid != meta.gid {
            match node.chown(Some(meta.uid), Some(meta.gid)) {
                Ok(()) => chowned = true,
                // No CAP_CHOWN, an id unmapped in this user namespace, root-squashed NFS.
                Err(Errno::PERM | Errno::INVAL) => not_applied.owner = true,
                Err(e) => return Err(err("chown", e)),
            }
        }
    } else {
        // Without privilege only the group can change, and only to a group we are in;
        // the kernel is the judge, so just try.
        let mut gid = st.st_gid;
        if st.st_gid != meta.gid {
            match node.chown(None, Some(meta.gid)) {
                Ok(()) => {
                    gid = meta.gid;
                    chowned = true;
                }
                Err(Errno::PERM | Errno::INVAL) => {}
                Err(e) => return Err(err("chown", e)),
            }
        }
        not_applied.owner = st.st_uid != meta.uid || gid != meta.gid;
    }

    let mode = meta.mode & 0o7777;
    // An entry made fresh has the mode it was made with (0o600, or a file's permission
    // bits under the umask): no chmod when that already is the source's. Xattrs set on a
    // fresh entry may change it (an ACL rewrites the group bits): then always.
    let mut chmod =
        chowned || st.st_mode & 0o7777 != mode || (fresh == Fresh::Yes && !meta.xattrs.is_empty());

    let set_xattrs = |on: xattr::On<'_>| apply_xattrs(on, meta, privileges, fresh);
    if let Some(outcome) = node.with_xattrs(set_xattrs) {
        let mut outcome = outcome.map_err(|e| err("xattr", e))?;
        let read_only = !privileges.has(Cap::DacOverride) && st.st_mode & 0o200 == 0;
        // Our own file, but read-only for us: allow writing, retry, and let the chmod
        // below restore the final mode. (Someone else's file: the refusals stand.)
        if outcome.denied && read_only && node.chmod((st.st_mode & 0o7777) | 0o200).is_ok() {
            chmod = true;
            outcome = node
                .with_xattrs(set_xattrs)
                .expect("same node")
                .map_err(|e| err("xattr", e))?;
        }
        not_applied.xattrs = outcome.refused;
    }

    // Only an entry's owner may set its mode and times. A target without privileges
    // meets entries owned by someone else (typically a volume root owned by root and
    // shared by group): what it cannot set there is reported with the ownership it
    // could not apply, not as a file error.
    let foreign = |e: Errno| e == Errno::PERM && st.st_uid != rustix::process::geteuid().as_raw();
    if !is_link && chmod {
        match node.chmod(mode) {
            // Without CAP_FSETID the kernel silently drops setgid from an entry whose
            // group this process is not in: look, so that it is counted, not lost.
            Ok(()) if mode & 0o2000 != 0 && !privileges.has(Cap::Fsetid) => {
                let now = node.stat().map_err(|e| err("stat", e))?;
                if now.st_mode & 0o2000 == 0 {
                    not_applied.owner = true;
                }
            }
            Ok(()) => {}
            Err(e) if foreign(e) => not_applied.owner = true,
            Err(e) => return Err(err("chmod", e)),
        }
    }

    if fresh == Fresh::Yes || mtime_of(&st) != meta.mtime {
        match node.set_mtime(meta.mtime) {
            Ok(()) => {}
            Err(e) if foreign(e) => not_applied.owner = true,
            Err(e) => return Err(err("utimes", e)),
        }
    }
    Ok(not_applied)
}

/// Sets the attributes that differ and removes the ones the source does not have,
/// but only in namespaces the source could have sent: `user.*`, and `trusted.*`
/// with `CAP_SYS_ADMIN` (without it a source cannot see them, nor a target set them). `security.*` and `system.*` on the target belong to the target (labels,
/// capabilities, ACLs set by its admins) unless the source sent a value.
fn apply_xattrs(
    on: xattr::On<'_>,
    meta: &Meta,
    privileges: Privileges,
    fresh: Fresh,
) -> Result<XattrOutcome, Errno> {
    let mut outcome = XattrOutcome::default();
    if fresh == Fresh::Yes && meta.xattrs.is_empty() {
        return Ok(outcome);
    }
    let current = match fresh {
        Fresh::Yes => Vec::new(),
        Fresh::No => xattr::read_all(on)?,
    };
    for x in &meta.xattrs {
        if xattr::is_ignored(&x.name) {
            continue;
        }
        if current
            .iter()
            .any(|c| c.name == x.name && c.value == x.value)
        {
            continue;
        }
        match xattr::set(on, &x.name, &x.value) {
            Ok(()) => {}
            Err(e) if is_refusal(e) => outcome.refuse(e),
            Err(e) => return Err(e),
        }
    }
    for c in &current {
        let ours = c.name.starts_with(b"user.")
            || (privileges.has(Cap::SysAdmin) && c.name.starts_with(b"trusted."));
        if !ours || meta.xattrs.iter().any(|x| x.name == c.name) {
            continue;
        }
        match xattr::remove(on, &c.name) {
            Ok(()) => {}
            Err(e) if is_refusal(e) => outcome.refuse(e),
            Err(e) => return Err(e),
        }
    }
    Ok(outcome)
}

#[derive(Default)]
struct XattrOutcome {
    /// How many attributes could not be set or removed.
    refused: u32,
    /// Whether some of them failed for lack of write permission (`EACCES`).
    denied: bool,
}

impl XattrOutcome {
    fn refuse(&mut self, e: Errno) {
        self.refused += 1;
        self.denied |= e == Errno::ACCESS;
    }
}

/// Errors that mean "this attribute cannot be had here" rather than "the volume is
/// broken": counted, not fatal. `ENOSPC` is deliberately not among them.
fn is_refusal(e: Errno) -> bool {
    matches!(
        e,
        Errno::PERM | Errno::NOTSUP | Errno::ACCESS | Errno::TOOBIG | Errno::RANGE | Errno::INVAL
    )
}

impl Dir {
    /// Brings the attributes of the existing entry `name` (file, directory, special) to
    /// `meta` in place, without following symlinks. A symlink found at `name` gets only
    /// what [`Dir::set_link_meta`] applies: its target is never touched.
    pub fn set_meta(&self, name: &[u8], meta: &Meta) -> Result<NotApplied, TreeError> {
        check_name(name, &Limits::default())?;
        let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rfs::openat(self.fd(), name, flags, Mode::empty())
            .map_err(|e| io_err("open", shown(self.path(), name), e))?;
        let node = Node::path(fd.as_fd());
        let st = node
            .stat()
            .map_err(|e| io_err("stat", shown(self.path(), name), e))?;
        if kind_of(st.st_mode) == ExistingKind::Symlink {
            return self.set_link_meta(name, meta);
        }
        apply(&node, meta, self.privileges(), Fresh::No, self.path(), name)
    }

    /// Ownership and modification time of the symlink `name` itself.
    pub fn set_link_meta(&self, name: &[u8], meta: &Meta) -> Result<NotApplied, TreeError> {
        check_name(name, &Limits::default())?;
        let node = Node::Link {
            dir: self.fd(),
            name,
        };
        apply(&node, meta, self.privileges(), Fresh::No, self.path(), name)
    }

    /// Applies `meta` to this directory itself through its fd: owner, mode (with
    /// setgid and sticky), xattrs as [`Dir::set_meta`], mtime last. Called when a
    /// directory is finalized after its contents.
    pub fn set_own_meta(&self, meta: &Meta) -> Result<NotApplied, TreeError> {
        apply(
            &Node::Fd(self.fd()),
            meta,
            self.privileges(),
            Fresh::No,
            self.path(),
            b"",
        )
    }

    /// Applies `meta` to a just-created special file or symlink at temp name `temp`.
    pub(crate) fn apply_fresh(
        &self,
        temp: &[u8],
        meta: &Meta,
        link: bool,
    ) -> Result<NotApplied, TreeError> {
        let priv_ = self.privileges();
        if link {
            let node = Node::Link {
                dir: self.fd(),
                name: temp,
            };
            return apply(&node, meta, priv_, Fresh::Yes, self.path(), temp);
        }
        let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rfs::openat(self.fd(), temp, flags, Mode::empty())
            .map_err(|e| io_err("open", shown(self.path(), temp), e))?;
        apply(
            &Node::path(fd.as_fd()),
            meta,
            priv_,
            Fresh::Yes,
            self.path(),
            temp,
        )
    }
}
