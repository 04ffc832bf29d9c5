//! What one planned entry takes of the target volume, for the session core's pre-flight
//! space check (`ferry_proto::session::target::FrameSpace`): the planner reports it per
//! entry, the core counts and decides. Pure: no filesystem access, no protocol rule.

use ferry_proto::session::target::Write;
use ferry_proto::Content;
use ferry_tree::{Existing, ExistingKind};

use super::decide::Action;

/// What writing `content` as `action` takes of the volume: nothing for an unchanged
/// entry, an attribute fix or a hard link. A file later chosen for an update in place is
/// marked so by the planner (`Write::in_place`).
pub fn space_taken(
    content: &Content,
    action: Action,
    existing: Option<&Existing>,
) -> Option<Write> {
    if matches!(action, Action::Keep | Action::FixMeta) {
        return None;
    }
    let inode = existing.is_none();
    Some(match content {
        Content::File { size, .. } => {
            // Written beside the old file, which is free again after the rename (unless
            // another name still holds it).
            let old = existing.filter(|e| e.kind == ExistingKind::File);
            let replaces = old.filter(|e| e.nlink == 1).map_or(0, |e| e.allocated);
            write(*size, replaces, old.is_none())
        }
        // One block for a new directory; a symlink of up to 60 bytes lives in its inode.
        Content::Dir => write(1, 0, inode),
        Content::Symlink { target } if target.len() > 60 => write(target.len() as u64, 0, inode),
        Content::Symlink { .. } | Content::Special { .. } => write(0, 0, inode),
        Content::HardLink { .. } => return None,
    })
}

fn write(size: u64, replaces: u64, inode: bool) -> Write {
    Write {
        size,
        replaces,
        inode,
        in_place: false,
    }
}
