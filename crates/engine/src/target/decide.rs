//! What to do with one listed entry, given what the target has under its name. Pure:
//! no filesystem here, so every rule is a unit test away.

use ferry_proto::{Content, Meta, SpecialKind};
use ferry_tree::{Existing, ExistingKind};

/// The decision for one entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Content and attributes match.
    Keep,
    /// Content matches; attributes must be updated in place.
    FixMeta,
    /// Nothing of this kind is there (missing, or another kind to replace).
    Create,
    /// Same kind, other content: replace it (files: `basis` says a delta is worth asking).
    Update { basis: bool },
}

/// Inputs that cost a syscall, fetched only when a rule needs them.
pub trait Probe {
    fn link_target(&mut self) -> Option<Vec<u8>>;
    fn checksum(&mut self) -> Option<[u8; 32]>;
    fn xattrs_differ(&mut self, wanted: &Meta) -> bool;
}

/// Decides for `content`/`meta` against `existing`. `root` says whether ownership is
/// ours to apply (and so to compare: `CAP_CHOWN`, whatever the uid); `min_basis` is the
/// smallest file worth a delta.
pub fn decide(
    content: &Content,
    meta: &Meta,
    existing: Option<&Existing>,
    root: bool,
    min_basis: u64,
    probe: &mut impl Probe,
) -> Action {
    let Some(existing) = existing else {
        return Action::Create;
    };
    match (content, existing.kind) {
        (Content::File { size, checksum }, ExistingKind::File) => {
            let same_content = match checksum {
                Some(sum) => existing.size == *size && probe.checksum() == Some(*sum),
                None => existing.size == *size && existing.mtime == meta.mtime,
            };
            if !same_content {
                return Action::Update {
                    basis: existing.size >= min_basis,
                };
            }
            if existing.mtime != meta.mtime || attrs_differ(existing, meta, root, probe) {
                match fix_in_place_is_safe(existing, meta, root, probe) {
                    true => Action::FixMeta,
                    false => Action::Update {
                        basis: existing.size >= min_basis,
                    },
                }
            } else {
                Action::Keep
            }
        }
        (Content::Dir, ExistingKind::Dir) => Action::Keep,
        (Content::Symlink { target }, ExistingKind::Symlink) => {
            if probe.link_target().as_deref() != Some(target.as_slice()) {
                return Action::Update { basis: false };
            }
            let owner_differs = root && (existing.uid != meta.uid || existing.gid != meta.gid);
            if existing.mtime != meta.mtime || owner_differs {
                Action::FixMeta
            } else {
                Action::Keep
            }
        }
        (Content::Special { kind, rdev }, ExistingKind::Special(have)) => {
            let same_node = *kind == have
                && (!matches!(kind, SpecialKind::CharDevice | SpecialKind::BlockDevice)
                    || existing.rdev == *rdev);
            if !same_node {
                return Action::Update { basis: false };
            }
            if existing.mtime != meta.mtime || attrs_differ(existing, meta, root, probe) {
                Action::FixMeta
            } else {
                Action::Keep
            }
        }
        _ => Action::Create,
    }
}

/// Whether a regular file's attributes may be changed on its inode as it is. Not when
/// that would hand the inode privilege or reach beyond this name: a local user may have
/// put their own file there with the source's size and mtime, or a hard link to a file
/// outside the volume. So a second link, an owner to change, set-id bits to add or
/// xattrs to set (`security.capability` is one) make it a rewrite into a fresh inode
/// instead (a delta against the file as it is, so it costs little).
fn fix_in_place_is_safe(
    existing: &Existing,
    meta: &Meta,
    root: bool,
    probe: &mut impl Probe,
) -> bool {
    let gains_set_id = meta.mode & !existing.mode & 0o6000 != 0;
    let owner_changes = root && (existing.uid != meta.uid || existing.gid != meta.gid);
    let xattrs_change = !meta.xattrs.is_empty() && probe.xattrs_differ(meta);
    existing.nlink == 1 && !gains_set_id && !owner_changes && !xattrs_change
}

/// Whether mode, ownership (when ours to apply) or xattrs (when the source has any:
/// reading them costs a syscall per file) differ.
fn attrs_differ(existing: &Existing, meta: &Meta, root: bool, probe: &mut impl Probe) -> bool {
    existing.mode != meta.mode
        || (root && (existing.uid != meta.uid || existing.gid != meta.gid))
        || (!meta.xattrs.is_empty() && probe.xattrs_differ(meta))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_proto::{Timestamp, Xattr};

    struct Fixed {
        target: Option<Vec<u8>>,
        sum: Option<[u8; 32]>,
        xattrs_differ: bool,
    }

    impl Probe for Fixed {
        fn link_target(&mut self) -> Option<Vec<u8>> {
            self.target.clone()
        }
        fn checksum(&mut self) -> Option<[u8; 32]> {
            self.sum
        }
        fn xattrs_differ(&mut self, _: &Meta) -> bool {
            self.xattrs_differ
        }
    }

    fn probe() -> Fixed {
        Fixed {
            target: None,
            sum: None,
            xattrs_differ: false,
        }
    }

    fn meta() -> Meta {
        Meta {
            mode: 0o644,
            uid: 10,
            gid: 20,
            mtime: Timestamp { sec: 100, nsec: 5 },
            xattrs: Vec::new(),
        }
    }

    fn file(size: u64) -> Existing {
        Existing {
            kind: ExistingKind::File,
            size,
            mode: 0o644,
            uid: 10,
            gid: 20,
            mtime: Timestamp { sec: 100, nsec: 5 },
            dev: 1,
            ino: 2,
            nlink: 1,
            rdev: 0,
            allocated: size,
        }
    }

    fn content(size: u64) -> Content {
        Content::File {
            size,
            checksum: None,
        }
    }

    #[test]
    fn missing_is_created() {
        assert_eq!(
            decide(&content(1), &meta(), None, true, 64, &mut probe()),
            Action::Create
        );
    }

    #[test]
    fn quick_check_keeps_same_size_and_mtime() {
        let e = file(1000);
        assert_eq!(
            decide(&content(1000), &meta(), Some(&e), true, 64, &mut probe()),
            Action::Keep
        );
    }

    #[test]
    fn nanoseconds_count() {
        let mut e = file(1000);
        e.mtime.nsec = 6;
        assert_eq!(
            decide(&content(1000), &meta(), Some(&e), true, 64, &mut probe()),
            Action::Update { basis: true }
        );
    }

    #[test]
    fn small_basis_goes_whole() {
        let e = file(10);
        assert_eq!(
            decide(&content(11), &meta(), Some(&e), true, 64, &mut probe()),
            Action::Update { basis: false }
        );
    }

    #[test]
    fn a_mode_change_fixes_meta_only() {
        let mut e = file(1000);
        e.mode = 0o600;
        assert_eq!(
            decide(&content(1000), &meta(), Some(&e), true, 64, &mut probe()),
            Action::FixMeta
        );
        let mut e = file(1000);
        e.uid = 0;
        // Not root: ownership is not ours to apply, so it does not make a change.
        assert_eq!(
            decide(&content(1000), &meta(), Some(&e), false, 64, &mut probe()),
            Action::Keep
        );
    }

    /// A file someone else may have put there (another owner, a second link) is never
    /// given an owner, set-id bits or xattrs in place: it is rewritten into a fresh inode.
    #[test]
    fn privileges_are_never_handed_to_an_inode_in_place() {
        let rewrite = Action::Update { basis: true };
        let mut other_owner = file(1000);
        other_owner.uid = 4242;
        assert_eq!(
            decide(
                &content(1000),
                &meta(),
                Some(&other_owner),
                true,
                64,
                &mut probe()
            ),
            rewrite
        );
        let mut linked = file(1000);
        linked.nlink = 2;
        linked.mode = 0o600;
        assert_eq!(
            decide(
                &content(1000),
                &meta(),
                Some(&linked),
                true,
                64,
                &mut probe()
            ),
            rewrite
        );
        let mut setuid = meta();
        setuid.mode |= 0o4000;
        assert_eq!(
            decide(
                &content(1000),
                &setuid,
                Some(&file(1000)),
                true,
                64,
                &mut probe()
            ),
            rewrite
        );
        // Set-id bits kept (not added) with another mode change: in place.
        let mut had = file(1000);
        had.mode = setuid.mode & !0o004;
        assert_eq!(
            decide(&content(1000), &setuid, Some(&had), true, 64, &mut probe()),
            Action::FixMeta
        );
    }

    #[test]
    fn xattrs_are_compared_only_when_the_source_has_some() {
        let e = file(1000);
        let mut p = probe();
        p.xattrs_differ = true;
        assert_eq!(
            decide(&content(1000), &meta(), Some(&e), true, 64, &mut p),
            Action::Keep
        );
        let mut m = meta();
        m.xattrs.push(Xattr {
            name: b"user.a".to_vec(),
            value: b"1".to_vec(),
        });
        assert_eq!(
            decide(&content(1000), &m, Some(&e), true, 64, &mut p),
            Action::Update { basis: true },
            "xattrs are set on a fresh inode"
        );
    }

    #[test]
    fn checksum_mode_compares_content_not_mtime() {
        let mut e = file(1000);
        e.mtime.sec = 1;
        let c = Content::File {
            size: 1000,
            checksum: Some([7; 32]),
        };
        let mut p = probe();
        p.sum = Some([7; 32]);
        assert_eq!(
            decide(&c, &meta(), Some(&e), true, 64, &mut p),
            Action::FixMeta
        );
        p.sum = Some([8; 32]);
        assert_eq!(
            decide(&c, &meta(), Some(&e), true, 64, &mut p),
            Action::Update { basis: true }
        );
    }

    #[test]
    fn other_kinds_are_replaced() {
        let mut e = file(0);
        e.kind = ExistingKind::Dir;
        assert_eq!(
            decide(&content(1), &meta(), Some(&e), true, 64, &mut probe()),
            Action::Create
        );
        let e = file(0);
        assert_eq!(
            decide(&Content::Dir, &meta(), Some(&e), true, 64, &mut probe()),
            Action::Create
        );
    }

    #[test]
    fn symlinks_compare_their_target_bytes() {
        let mut e = file(0);
        e.kind = ExistingKind::Symlink;
        let c = Content::Symlink {
            target: b"../x".to_vec(),
        };
        let mut p = probe();
        p.target = Some(b"../x".to_vec());
        assert_eq!(
            decide(&c, &meta(), Some(&e), true, 64, &mut p),
            Action::Keep
        );
        p.target = Some(b"../y".to_vec());
        assert_eq!(
            decide(&c, &meta(), Some(&e), true, 64, &mut p),
            Action::Update { basis: false }
        );
    }
}
