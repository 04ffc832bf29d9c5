//! Deterministic inputs: incompressible bytes, and the same with scattered edits.

/// `len` pseudo-random bytes (xorshift64*), the same for the same `seed`.
pub fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// `basis` with `edits` runs of 64 overwritten bytes spread evenly: an in-place change
/// of about `edits * 64` bytes, like a database page or a log rewritten in place.
pub fn edited(basis: &[u8], edits: usize) -> Vec<u8> {
    let mut out = basis.to_vec();
    let stride = out.len() / edits.max(1);
    for (i, at) in (0..out.len())
        .step_by(stride.max(1))
        .take(edits)
        .enumerate()
    {
        let end = (at + 64).min(out.len());
        out[at..end].fill(i as u8 ^ 0xa5);
    }
    out
}

/// `basis` with 16 bytes inserted near its start: everything after the insertion shifts,
/// so only the rolling search finds it.
pub fn shifted(basis: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(basis.len() + 16);
    out.extend_from_slice(&basis[..100]);
    out.extend_from_slice(&[0x5a; 16]);
    out.extend_from_slice(&basis[100..]);
    out
}
