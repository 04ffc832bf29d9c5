//! What `decide` may need to look at in the target directory besides an entry's
//! `stat`: a symlink's target, a file's BLAKE3 (`--checksum`), its xattrs.

use ferry_proto::Meta;
use ferry_tree::Dir;

use crate::target::decide::Probe;

/// Fetches what `decide` asks for from the target directory.
pub(super) struct DirProbe<'a> {
    pub dir: Option<&'a Dir>,
    pub name: &'a [u8],
}

impl Probe for DirProbe<'_> {
    fn link_target(&mut self) -> Option<Vec<u8>> {
        self.dir?.read_link(self.name).ok()
    }

    fn checksum(&mut self) -> Option<[u8; 32]> {
        let file = self.dir?.open_basis(self.name).ok()??;
        let mut hasher = blake3::Hasher::new();
        hasher.update_reader(file).ok()?;
        Some(*hasher.finalize().as_bytes())
    }

    fn xattrs_differ(&mut self, wanted: &Meta) -> bool {
        let Some(dir) = self.dir else { return true };
        match dir.xattrs(self.name) {
            Ok(mut have) => {
                have.retain(|x| x.name != b"security.selinux");
                let mut want = wanted.xattrs.clone();
                want.sort_by(|a, b| a.name.cmp(&b.name));
                have.sort_by(|a, b| a.name.cmp(&b.name));
                have != want
            }
            Err(_) => true,
        }
    }
}
