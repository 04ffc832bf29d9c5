//! The target's current version of a file, read with positioned reads for its signature
//! and the delta's COPY ranges.
//!
//! Not mapped: another process may truncate the file while a delta is applied, and a
//! map of it would then raise SIGBUS, killing the process and every session in it. A
//! read instead comes back short, which is an error for that one file (the session asks
//! for it again, whole). Reads also keep the basis out of the process's resident memory.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ferry_delta::BasisRead;

/// A basis file and the length it had when opened, which its signature and every
/// check of a delta against it use.
pub struct Basis {
    file: File,
    len: u64,
    /// The caller's stop flag (its session ended): a read after it is set fails, which
    /// stops a signature of a large basis within one read.
    stop: Arc<AtomicBool>,
}

impl Basis {
    /// `file` as a basis (from [`crate::Dir::open_basis`]); reads fail once `stop` is set.
    pub fn open(file: File, stop: Arc<AtomicBool>) -> std::io::Result<Basis> {
        let len = file.metadata()?.len();
        Ok(Basis { file, len, stop })
    }
}

impl BasisRead for Basis {
    fn basis_len(&self) -> u64 {
        self.len
    }

    fn read_exact_at(&self, mut offset: u64, mut buf: &mut [u8]) -> std::io::Result<()> {
        if self.stop.load(Ordering::Relaxed) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::Interrupted,
                "the session ended",
            ));
        }
        while !buf.is_empty() {
            match self.file.read_at(buf, offset) {
                Ok(0) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        format!(
                            "the basis ends at byte {offset}, but was {} bytes when opened: \
                             another process changed it",
                            self.len
                        ),
                    ))
                }
                Ok(n) => {
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basis_of(bytes: &[u8]) -> (tempfile::NamedTempFile, Basis) {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut f, bytes).unwrap();
        let basis = Basis::open(f.reopen().unwrap(), Arc::default()).unwrap();
        (f, basis)
    }

    #[test]
    fn reads_ranges_of_the_file() {
        let (_f, basis) = basis_of(b"0123456789");
        assert_eq!(basis.basis_len(), 10);
        let mut buf = [0u8; 3];
        basis.read_exact_at(4, &mut buf).unwrap();
        assert_eq!(&buf, b"456");
    }

    #[test]
    fn a_basis_truncated_after_it_was_opened_reads_short_as_an_error() {
        let (f, basis) = basis_of(&[7u8; 8192]);
        f.as_file().set_len(100).unwrap();
        let mut buf = [0u8; 200];
        let e = basis.read_exact_at(0, &mut buf).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof);
        assert!(e.to_string().contains("another process changed it"), "{e}");
        assert!(basis.read_exact_at(8000, &mut buf[..10]).is_err());
        basis
            .read_exact_at(50, &mut buf[..50])
            .expect("still inside");
    }

    #[test]
    fn a_read_after_the_session_ended_fails() {
        let (_f, basis) = basis_of(b"abc");
        basis.stop.store(true, Ordering::Relaxed);
        let e = basis.read_exact_at(0, &mut [0u8; 1]).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::Interrupted);
    }
}
