//! Extended attributes, read and written through whichever handle the caller has:
//! an open fd, or a path (followed or not). Shared by the source walk and the target.
//!
//! `security.selinux` is never read or written: each cluster labels its own volumes
//! (the SELinux policy of the target decides the label, and copying the source's
//! label would either fail or mislabel files for the target's pods). Leaving it out on
//! both sides also keeps a repeat pass from seeing a difference it can never fix.

use std::os::fd::BorrowedFd;

use ferry_proto::Xattr;
use rustix::fs::{self as rfs, XattrFlags};
use rustix::io::Errno;

/// Where to read or write attributes.
#[derive(Clone, Copy)]
pub(crate) enum On<'a> {
    Fd(BorrowedFd<'a>),
    /// A path whose final component is followed (`/proc/self/fd/N`, the source root).
    Follow(&'a std::path::Path),
    /// A path whose final component is not followed (`l*xattr`; the source walk).
    NoFollow(&'a std::path::Path),
}

/// Attribute names that Ferry neither sends nor touches (see the module doc).
pub(crate) fn is_ignored(name: &[u8]) -> bool {
    name == b"security.selinux"
}

/// Names on `on`, in the kernel's order. `ENOTSUP` (a filesystem without xattrs)
/// is an empty list.
pub(crate) fn list(on: On<'_>) -> Result<Vec<Vec<u8>>, Errno> {
    let mut buf = Vec::new();
    loop {
        let size = match on {
            On::Fd(fd) => rfs::flistxattr_query(fd),
            On::Follow(p) => rfs::listxattr_query(p),
            On::NoFollow(p) => rfs::llistxattr_query(p),
        };
        let size = match size {
            Ok(n) => n,
            Err(Errno::NOTSUP) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        if size == 0 {
            return Ok(Vec::new());
        }
        buf.resize(size, 0);
        let got = match on {
            On::Fd(fd) => rfs::flistxattr(fd, &mut buf[..]),
            On::Follow(p) => rfs::listxattr(p, &mut buf[..]),
            On::NoFollow(p) => rfs::llistxattr(p, &mut buf[..]),
        };
        match got {
            Ok(n) => {
                buf.truncate(n);
                break;
            }
            // The list grew between the two calls: ask again.
            Err(Errno::RANGE) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(buf
        .split(|&b| b == 0)
        .filter(|n| !n.is_empty())
        .map(<[u8]>::to_vec)
        .collect())
}

/// The value of `name`, or `None` if it is gone (`ENODATA`).
pub(crate) fn get(on: On<'_>, name: &[u8]) -> Result<Option<Vec<u8>>, Errno> {
    let name = cname(name)?;
    let mut buf = Vec::new();
    loop {
        let size = match on {
            On::Fd(fd) => rfs::fgetxattr_query(fd, &name),
            On::Follow(p) => rfs::getxattr_query(p, &name),
            On::NoFollow(p) => rfs::lgetxattr_query(p, &name),
        };
        let size = match size {
            Ok(n) => n,
            Err(Errno::NODATA) => return Ok(None),
            Err(e) => return Err(e),
        };
        if size == 0 {
            return Ok(Some(Vec::new()));
        }
        buf.resize(size, 0);
        let got = match on {
            On::Fd(fd) => rfs::fgetxattr(fd, &name, &mut buf[..]),
            On::Follow(p) => rfs::getxattr(p, &name, &mut buf[..]),
            On::NoFollow(p) => rfs::lgetxattr(p, &name, &mut buf[..]),
        };
        match got {
            Ok(n) => {
                buf.truncate(n);
                return Ok(Some(buf));
            }
            Err(Errno::RANGE) => continue,
            Err(Errno::NODATA) => return Ok(None),
            Err(e) => return Err(e),
        }
    }
}

/// Every attribute except the ignored ones, sorted by name. Attributes that vanish
/// while being read are left out.
pub(crate) fn read_all(on: On<'_>) -> Result<Vec<Xattr>, Errno> {
    let mut names = list(on)?;
    names.retain(|n| !is_ignored(n));
    names.sort();
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        if let Some(value) = get(on, &name)? {
            out.push(Xattr { name, value });
        }
    }
    Ok(out)
}

/// Sets `name` to `value` (creating or replacing).
pub(crate) fn set(on: On<'_>, name: &[u8], value: &[u8]) -> Result<(), Errno> {
    let name = cname(name)?;
    match on {
        On::Fd(fd) => rfs::fsetxattr(fd, &name, value, XattrFlags::empty()),
        On::Follow(p) => rfs::setxattr(p, &name, value, XattrFlags::empty()),
        On::NoFollow(p) => rfs::lsetxattr(p, &name, value, XattrFlags::empty()),
    }
}

/// Removes `name`; already absent is fine.
pub(crate) fn remove(on: On<'_>, name: &[u8]) -> Result<(), Errno> {
    let name = cname(name)?;
    let r = match on {
        On::Fd(fd) => rfs::fremovexattr(fd, &name),
        On::Follow(p) => rfs::removexattr(p, &name),
        On::NoFollow(p) => rfs::lremovexattr(p, &name),
    };
    match r {
        Err(Errno::NODATA) => Ok(()),
        other => other,
    }
}

/// Attribute names are C strings: an embedded NUL can only come from a confused or
/// hostile peer and is refused like any name the kernel rejects.
fn cname(name: &[u8]) -> Result<std::ffi::CString, Errno> {
    std::ffi::CString::new(name).map_err(|_| Errno::INVAL)
}
