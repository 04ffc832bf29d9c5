//! The target's current version of a file, mapped read-only so its signature and the
//! delta's COPY commands read it without copying it into memory.

use std::fs::File;

use memmap2::Mmap;

/// A read-only mapping of a basis file. Empty files are not mapped.
pub struct Basis {
    map: Option<Mmap>,
}

impl Basis {
    pub fn map(file: &File) -> std::io::Result<Basis> {
        if file.metadata()?.len() == 0 {
            return Ok(Basis { map: None });
        }
        // SAFETY: the mapping is read-only and private to this session, which holds the
        // volume's lock; Ferry never writes a basis in place (new content goes to a temp
        // file that is renamed over it, leaving this inode unchanged). Another process
        // truncating the file concurrently could raise SIGBUS; that is the same exposure
        // every mmap-based reader (rsync included) accepts.
        #[allow(unsafe_code)]
        let map = unsafe { Mmap::map(file)? };
        Ok(Basis { map: Some(map) })
    }

    pub fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }
}
