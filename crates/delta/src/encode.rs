//! Writing deltas in the format [`crate::scan`] reads (fast_rsync's, librsync's): the
//! magic, then LITERAL and COPY commands, then END. Adjacent literals and contiguous
//! copies are merged, so a long unchanged run costs one command.

use crate::scan::{DeltaStats, COPY_N1_N1, DELTA_MAGIC, END, LITERAL_1, LITERAL_64, LITERAL_N1};

/// Appends one delta to a buffer, command by command.
pub(crate) struct DeltaWriter<'a> {
    out: &'a mut Vec<u8>,
    /// A copy not yet written, to extend while the next one continues it.
    copy: Option<(u64, u64)>,
    pub(crate) stats: DeltaStats,
}

impl<'a> DeltaWriter<'a> {
    pub(crate) fn new(out: &'a mut Vec<u8>) -> Self {
        out.extend_from_slice(&DELTA_MAGIC.to_be_bytes());
        DeltaWriter {
            out,
            copy: None,
            stats: DeltaStats::default(),
        }
    }

    pub(crate) fn literal(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.flush_copy();
        let len = bytes.len() as u64;
        if len <= u64::from(LITERAL_64 - LITERAL_1 + 1) {
            self.out.push(LITERAL_1 + len as u8 - 1);
        } else {
            let width = width(len);
            self.out.push(LITERAL_N1 + width.trailing_zeros() as u8);
            put_uint(self.out, len, width);
        }
        self.out.extend_from_slice(bytes);
        self.stats.literal += len;
    }

    pub(crate) fn copy(&mut self, offset: u64, len: u64) {
        if len == 0 {
            return;
        }
        self.stats.copied += len;
        match &mut self.copy {
            Some((start, pending)) if *start + *pending == offset => *pending += len,
            _ => {
                self.flush_copy();
                self.copy = Some((offset, len));
            }
        }
    }

    /// Writes END and returns what the delta holds.
    pub(crate) fn finish(mut self) -> DeltaStats {
        self.flush_copy();
        self.out.push(END);
        self.stats
    }

    fn flush_copy(&mut self) {
        if let Some((offset, len)) = self.copy.take() {
            let (ow, lw) = (width(offset), width(len));
            let mode = 4 * ow.trailing_zeros() + lw.trailing_zeros();
            self.out.push(COPY_N1_N1 + mode as u8);
            put_uint(self.out, offset, ow);
            put_uint(self.out, len, lw);
        }
    }
}

/// The fewest of 1, 2, 4 or 8 bytes that hold `value`.
fn width(value: u64) -> u8 {
    match value {
        0..=0xff => 1,
        0x100..=0xffff => 2,
        0x1_0000..=0xffff_ffff => 4,
        _ => 8,
    }
}

fn put_uint(out: &mut Vec<u8>, value: u64, width: u8) {
    out.extend_from_slice(&value.to_be_bytes()[8 - usize::from(width)..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::scan;

    #[test]
    fn every_width_scans_back_to_the_same_counts() {
        let mut out = Vec::new();
        let mut w = DeltaWriter::new(&mut out);
        w.literal(b"a");
        w.literal(&[7; 64]);
        w.literal(&[8; 65]);
        w.literal(&[9; 70_000]);
        w.copy(0, 1);
        w.copy(300, 0x1_0000);
        w.copy(1 << 40, 5);
        let stats = w.finish();
        assert_eq!(stats.literal, 1 + 64 + 65 + 70_000);
        assert_eq!(stats.copied, 1 + 0x1_0000 + 5);
        let scanned = scan(&out).expect("valid delta");
        assert_eq!(scanned.stats, stats);
        assert_eq!(scanned.copy_end, (1 << 40) + 5);
    }

    #[test]
    fn contiguous_copies_become_one_command() {
        let mut out = Vec::new();
        let mut w = DeltaWriter::new(&mut out);
        for block in 0..100u64 {
            w.copy(block * 4096, 4096);
        }
        w.finish();
        // magic, one COPY (offset 1 byte, length 4 bytes), END
        assert_eq!(out.len(), 4 + 1 + 1 + 4 + 1);
    }
}
