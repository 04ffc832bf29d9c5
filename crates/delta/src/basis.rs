//! How the delta layer reads a basis it does not hold: the caller's [`BasisRead`], which
//! reads a range into a buffer. The target reads its basis file with positioned reads
//! (a map of a file another process can truncate is a SIGBUS waiting to happen); tests
//! and benchmarks hand in a byte slice, which reads the same way.

/// A basis of a fixed length, read by ranges.
///
/// `basis_len` is the length the signature and every check were made against; a read
/// of a range inside it that cannot be satisfied (the file shrank underneath) is an
/// error, never fewer bytes.
pub trait BasisRead: Sync {
    /// The basis's length, fixed for the life of the reader.
    fn basis_len(&self) -> u64;

    /// Fills `buf` with the basis's bytes from `offset` on, or fails.
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()>;
}

impl BasisRead for [u8] {
    fn basis_len(&self) -> u64 {
        self.len() as u64
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let range = usize::try_from(offset)
            .ok()
            .and_then(|start| Some(start..start.checked_add(buf.len())?))
            .and_then(|range| self.get(range));
        match range {
            Some(bytes) => {
                buf.copy_from_slice(bytes);
                Ok(())
            }
            None => Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!(
                    "bytes {offset}..+{} are not inside the {}-byte basis",
                    buf.len(),
                    self.len()
                ),
            )),
        }
    }
}

/// Why [`crate::CheckedDelta::for_each_run`] stopped: the basis could not be read (it
/// changed under the delta), or the caller's sink failed.
#[derive(Debug)]
pub enum RunError<E> {
    /// Reading a COPY's range of the basis failed.
    Basis(std::io::Error),
    /// The sink returned this error.
    Sink(E),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slice_reads_inside_itself_and_refuses_past_its_end() {
        let basis: &[u8] = b"0123456789";
        let mut buf = [0u8; 4];
        basis.read_exact_at(3, &mut buf).expect("inside");
        assert_eq!(&buf, b"3456");
        assert!(basis.read_exact_at(7, &mut buf).is_err());
        assert!(basis.read_exact_at(u64::MAX, &mut buf).is_err());
        basis.read_exact_at(10, &mut []).expect("empty at the end");
        assert_eq!(basis.basis_len(), 10);
    }
}
