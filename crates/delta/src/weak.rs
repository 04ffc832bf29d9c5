//! The weak rolling checksum: rsync's, so a window can slide one byte in O(1).
//!
//! `s1 = Σ (x + 31)` and `s2 = Σ s1` over the window, each mod 2^16; the checksum is
//! `s2 << 16 | s1`. It only nominates candidates: every match is confirmed with the
//! block's strong hash.

/// Added to every byte, as rsync does, so runs of zeros do not all sum to 0.
const CHAR_OFFSET: u32 = 31;

/// The checksum of a window of bytes, able to slide forward.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rolling {
    s1: u32,
    s2: u32,
    len: u32,
}

impl Rolling {
    /// The checksum of `window` (at most 4 GiB long).
    pub(crate) fn new(window: &[u8]) -> Rolling {
        let len = window.len() as u32;
        let (mut s1, mut s2) = (0u32, 0u32);
        for &x in window {
            s1 = s1.wrapping_add(u32::from(x) + CHAR_OFFSET);
            s2 = s2.wrapping_add(s1);
        }
        Rolling { s1, s2, len }
    }

    pub(crate) fn digest(&self) -> u32 {
        (self.s2 & 0xffff) << 16 | (self.s1 & 0xffff)
    }

    /// Slides the window one byte: `out` leaves at the front, `into` enters at the back.
    pub(crate) fn roll(&mut self, out: u8, into: u8) {
        let (out, into) = (u32::from(out) + CHAR_OFFSET, u32::from(into) + CHAR_OFFSET);
        self.s1 = self.s1.wrapping_add(into).wrapping_sub(out);
        self.s2 = self
            .s2
            .wrapping_add(self.s1)
            .wrapping_sub(self.len.wrapping_mul(out));
    }
}

/// The weak checksum of one whole block, as [`Rolling::new`] computes it but in a form
/// the compiler vectorizes (the signature computes one per block of every basis).
///
/// `s2 = Σ (n - i)(x_i + 31) = n Σ x_i - Σ i x_i + 31 n(n + 1)/2`. The data is read as
/// `R` rows of [`LANES`] bytes; lane `j` of row `r` holds `x_{32r + j}`, so
/// `Σ i x_i = 32 Σ_j Σ_r r x_rj + Σ_j j Σ_r x_rj`. Lane `j` keeps its running sum
/// `S_j` and the sum of `S_j` as it stood before each row, `P_j = Σ_r (R - 1 - r) x_rj`,
/// so `Σ_r r x_rj = (R - 1) S_j - P_j`: two adds per byte, no multiply, no dependency
/// between lanes. The checksum keeps 16 bits of `s1` and of `s2`, and every step is a
/// sum or product, so the lanes can wrap at 16 bits too: 32 lanes of each sum fill four
/// SSE2 registers, eight for the two. About 20 GB/s on a block in cache here, where 16
/// lanes of u32 with a multiply per byte managed 10 and the one-byte-at-a-time form 1.4.
pub(crate) fn weak(block: &[u8]) -> u32 {
    const LANES: usize = 32;
    let mut sums = [0u16; LANES];
    let mut before = [0u16; LANES];
    let rows = block.chunks_exact(LANES);
    let tail = rows.remainder();
    let row_count = rows.len() as u16;
    for row in rows {
        for j in 0..LANES {
            before[j] = before[j].wrapping_add(sums[j]);
            sums[j] = sums[j].wrapping_add(u16::from(row[j]));
        }
    }
    let (mut sum, mut weighted) = (0u16, 0u16);
    for j in 0..LANES {
        let row_weighted = row_count
            .wrapping_sub(1)
            .wrapping_mul(sums[j])
            .wrapping_sub(before[j]);
        sum = sum.wrapping_add(sums[j]);
        weighted = weighted
            .wrapping_add((LANES as u16).wrapping_mul(row_weighted))
            .wrapping_add((j as u16).wrapping_mul(sums[j]));
    }
    let base = (block.len() - tail.len()) as u16;
    for (j, &x) in tail.iter().enumerate() {
        sum = sum.wrapping_add(u16::from(x));
        weighted = weighted.wrapping_add(base.wrapping_add(j as u16).wrapping_mul(u16::from(x)));
    }
    let n = block.len() as u32;
    let (sum, weighted) = (u32::from(sum), u32::from(weighted));
    let s1 = sum.wrapping_add(n.wrapping_mul(CHAR_OFFSET));
    let triangle = (u64::from(n) * (u64::from(n) + 1) / 2) as u32;
    let s2 = n
        .wrapping_mul(sum)
        .wrapping_sub(weighted)
        .wrapping_add(triangle.wrapping_mul(CHAR_OFFSET));
    (s2 & 0xffff) << 16 | (s1 & 0xffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rolling_agrees_with_computing_afresh() {
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 7919 % 251) as u8).collect();
        for window in [1, 2, 31, 1024] {
            let mut r = Rolling::new(&data[..window]);
            for start in 1..data.len() - window {
                r.roll(data[start - 1], data[start + window - 1]);
                let fresh = Rolling::new(&data[start..start + window]).digest();
                assert_eq!(r.digest(), fresh, "{window} {start}");
            }
        }
    }

    #[test]
    fn block_form_agrees_with_the_rolling_form() {
        let data: Vec<u8> = (0..70_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for len in [0, 1, 31, 32, 33, 100, 2048, 4095, 65_536, 70_000] {
            assert_eq!(
                weak(&data[..len]),
                Rolling::new(&data[..len]).digest(),
                "{len}"
            );
        }
        assert_eq!(
            weak(&[0xff; 70_000]),
            Rolling::new(&[0xff; 70_000]).digest()
        );
        // More than 65,535 rows: the u16 row count wraps, which mod 2^16 is harmless;
        // with a tail of 17 bytes after the last whole row.
        let big: Vec<u8> = (0..(3u32 << 20) + 17)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        assert_eq!(weak(&big), Rolling::new(&big).digest());
        assert_eq!(
            weak(&[0xfe; 3 << 20]),
            Rolling::new(&[0xfe; 3 << 20]).digest()
        );
    }

    #[test]
    fn zero_runs_of_different_lengths_differ() {
        assert_ne!(weak(&[0; 2048]), weak(&[0; 4096]));
    }
}
