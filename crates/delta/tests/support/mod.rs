//! Helpers shared by the integration tests.
#![allow(dead_code)]

use ferry_delta::{apply_segment, diff_segment, DeltaStats, PeerSignature, SignatureIndex};

/// Deterministic pseudo-random bytes (splitmix64), so large inputs cost no proptest
/// generation time and shrink by seed.
pub fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&splitmix(&mut state).to_le_bytes());
    }
    out.truncate(len);
    out
}

pub fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

pub const MAX_SIG: usize = 32 * 1024 * 1024;

/// Runs the engine's loop: diff `data` segment by segment against `index`, apply every
/// delta against `basis`, and return the rebuilt data with per-segment stats.
pub fn sync(
    index: &SignatureIndex<'_>,
    basis: &[u8],
    data: &[u8],
    segment: usize,
) -> (Vec<u8>, Vec<DeltaStats>) {
    let mut rebuilt = b"prefix".to_vec();
    let mut all = Vec::new();
    let segments: Vec<&[u8]> = if data.is_empty() {
        vec![&[]]
    } else {
        data.chunks(segment).collect()
    };
    let mut delta = Vec::new();
    for seg in segments {
        delta.clear();
        delta.extend_from_slice(b"frame header");
        let diffed = diff_segment(index, seg, &mut delta).expect("diff");
        assert_eq!(diffed.literal + diffed.copied, seg.len() as u64);
        let applied = apply_segment(basis, &delta[12..], seg.len(), &mut rebuilt).expect("apply");
        assert_eq!(applied, diffed);
        all.push(diffed);
    }
    assert_eq!(&rebuilt[..6], b"prefix");
    (rebuilt.split_off(6), all)
}

pub fn parse(sig: Vec<u8>) -> PeerSignature {
    PeerSignature::parse(sig, MAX_SIG).expect("own signature parses")
}
