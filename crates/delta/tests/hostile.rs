//! Hostile signatures and deltas are refused with an error, never a panic, a huge
//! allocation or a hang.

mod support;

use ferry_delta::{
    apply_segment, diff_segment, signature, BlockPlan, DeltaError, PeerSignature, MAX_BLOCK,
    MAX_SEGMENT, MIN_BLOCK,
};
use proptest::prelude::*;
use support::{bytes, parse, MAX_SIG};

const MD4_MAGIC: u32 = 0x7273_0136;
const BLAKE2_MAGIC: u32 = 0x7273_0137;
const DELTA_MAGIC: u32 = 0x7273_0236;

fn header(magic: u32, block_size: u32, strong_len: u32) -> Vec<u8> {
    [magic, block_size, strong_len]
        .iter()
        .flat_map(|w| w.to_be_bytes())
        .collect()
}

fn sig_reason(bytes: Vec<u8>, max: usize) -> String {
    match PeerSignature::parse(bytes, max) {
        Err(DeltaError::BadSignature { reason }) => reason,
        other => panic!("expected BadSignature, got {other:?}"),
    }
}

#[test]
fn parse_refuses_bad_signatures() {
    assert!(sig_reason(Vec::new(), MAX_SIG).contains("shorter"));
    assert!(sig_reason(header(MD4_MAGIC, 4096, 8)[..11].to_vec(), MAX_SIG).contains("shorter"));
    assert!(sig_reason(header(BLAKE2_MAGIC, 4096, 8), MAX_SIG).contains("magic"));
    assert!(sig_reason(header(DELTA_MAGIC, 4096, 8), MAX_SIG).contains("magic"));
    for block in [0, 1, MIN_BLOCK - 1, MAX_BLOCK + 1, 1 << 30, u32::MAX] {
        assert!(sig_reason(header(MD4_MAGIC, block, 8), MAX_SIG).contains("block size"));
    }
    for strong in [0, 3, 17, u32::MAX] {
        assert!(sig_reason(header(MD4_MAGIC, 4096, strong), MAX_SIG).contains("strong"));
    }
    let mut ragged = header(MD4_MAGIC, 4096, 8);
    ragged.extend_from_slice(&[0; 13]);
    assert!(sig_reason(ragged, MAX_SIG).contains("whole number"));
    let real = signature(
        &bytes(1, 100_000),
        BlockPlan {
            block_size: 2048,
            strong_len: 8,
        },
    );
    let len = real.len();
    assert!(sig_reason(real.clone(), len - 1).contains("limit"));
    assert!(PeerSignature::parse(real, len).is_ok());
}

#[test]
fn parse_accepts_the_bounds() {
    for (block, strong) in [(MIN_BLOCK, 4), (MAX_BLOCK, 16)] {
        let mut sig = header(MD4_MAGIC, block, strong);
        sig.extend(std::iter::repeat_n(0xab, 3 * (4 + strong as usize)));
        let peer = PeerSignature::parse(sig, MAX_SIG).expect("valid");
        assert_eq!(peer.block_count(), 3);
        assert_eq!(
            peer.plan(),
            BlockPlan {
                block_size: block,
                strong_len: strong
            }
        );
    }
    // An empty basis has no blocks: every delta is literal.
    let peer = PeerSignature::parse(header(MD4_MAGIC, 4096, 8), MAX_SIG).expect("valid");
    assert_eq!(peer.block_count(), 0);
    let mut delta = Vec::new();
    let stats = diff_segment(&peer.index(), &bytes(2, 10_000), &mut delta).expect("diff");
    assert_eq!((stats.literal, stats.copied), (10_000, 0));
}

fn delta_of(commands: &[&[u8]]) -> Vec<u8> {
    let mut d = DELTA_MAGIC.to_be_bytes().to_vec();
    for c in commands {
        d.extend_from_slice(c);
    }
    d
}

/// COPY with an 8-byte offset and an 8-byte length.
fn copy(offset: u64, len: u64) -> Vec<u8> {
    let mut c = vec![0x54];
    c.extend_from_slice(&offset.to_be_bytes());
    c.extend_from_slice(&len.to_be_bytes());
    c
}

fn apply_reason(basis: &[u8], delta: &[u8], expected_len: usize) -> String {
    let mut out = b"kept".to_vec();
    let reason = match apply_segment(basis, delta, expected_len, &mut out) {
        Err(DeltaError::BadDelta { reason }) => reason,
        other => panic!("expected BadDelta, got {other:?}"),
    };
    assert_eq!(out, b"kept", "out must be left as it was");
    reason
}

#[test]
fn apply_refuses_bad_deltas() {
    let basis = bytes(3, 10_000);
    let ok = delta_of(&[&copy(100, 50), &[0x03, 1, 2, 3], &[0]]);
    let mut out = Vec::new();
    let stats = apply_segment(&basis, &ok, 53, &mut out).expect("valid");
    assert_eq!((stats.literal, stats.copied), (3, 50));
    assert_eq!(&out[..50], &basis[100..150]);
    assert_eq!(&out[50..], &[1, 2, 3]);

    assert!(apply_reason(&basis, b"definitely not a delta", 0).contains("magic"));
    assert!(apply_reason(&basis, &[], 0).contains("magic"));
    for cut in 0..ok.len() {
        apply_reason(&basis, &ok[..cut], 53);
    }
    assert!(apply_reason(&basis, &ok, 52).contains("expected 52"));
    assert!(apply_reason(&basis, &ok, 54).contains("expected 54"));
    assert!(apply_reason(&basis, &ok, 0).contains("expected 0"));
    assert!(apply_reason(&basis, &delta_of(&[&copy(9_990, 11), &[0]]), 11).contains("basis"));
    assert!(apply_reason(&basis, &delta_of(&[&copy(u64::MAX, 1), &[0]]), 1).contains("2^64"));
    assert!(apply_reason(&[], &delta_of(&[&copy(0, 1), &[0]]), 1).contains("basis"));
    let endless_literal = [0x44, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
    assert!(apply_reason(&basis, &delta_of(&[&endless_literal, &[0]]), 10).contains("truncated"));
    let long_literal = [0x43, 0x00, 0x10, 0x00, 0x00, 1, 2, 3];
    assert!(apply_reason(&basis, &delta_of(&[&long_literal, &[0]]), 10).contains("truncated"));
    let twice = copy(0, 1 << 63);
    assert!(apply_reason(&basis, &delta_of(&[&twice, &twice, &[0]]), 10).contains("overflow"));
    assert!(apply_reason(&basis, &delta_of(&[&[0x45, 0, 0], &[0]]), 0).contains("empty copy"));
    assert!(apply_reason(&basis, &delta_of(&[&[0x41, 0], &[0]]), 0).contains("empty literal"));
    assert!(apply_reason(&basis, &delta_of(&[&[0x99], &[0]]), 0).contains("unknown"));
    assert!(apply_reason(&basis, &delta_of(&[&[0], &[0]]), 0).contains("after the end"));
    // Amplification: many copies of a large basis are bounded by MAX_SEGMENT.
    let big = vec![7u8; MAX_SEGMENT];
    let whole = copy(0, MAX_SEGMENT as u64);
    let amplified = delta_of(&[&whole, &whole, &[0]]);
    assert!(apply_reason(&big, &amplified, 2 * MAX_SEGMENT).contains("limit"));
    assert!(apply_reason(&big, &amplified, MAX_SEGMENT).contains("expected"));
}

#[test]
fn empty_segment_applies() {
    let mut out = Vec::new();
    let stats = apply_segment(&[], &delta_of(&[&[0]]), 0, &mut out).expect("valid");
    assert_eq!((stats.literal, stats.copied, out.len()), (0, 0, 0));
}

fn valid_delta() -> (Vec<u8>, Vec<u8>, usize) {
    let basis = bytes(4, 40_000);
    let mut data = basis.clone();
    data.splice(5000..5000, bytes(5, 300));
    data.truncate(30_000);
    let peer = parse(signature(
        &basis,
        BlockPlan {
            block_size: 2048,
            strong_len: 8,
        },
    ));
    let mut delta = Vec::new();
    diff_segment(&peer.index(), &data, &mut delta).expect("diff");
    (basis, delta, data.len())
}

/// An `Ok` must have produced exactly `expected_len` bytes.
fn check_apply(basis: &[u8], delta: &[u8], expected_len: usize) {
    let mut out = vec![1, 2, 3];
    match apply_segment(basis, delta, expected_len, &mut out) {
        Ok(stats) => {
            assert_eq!(out.len(), 3 + expected_len);
            assert_eq!(stats.literal + stats.copied, expected_len as u64);
        }
        Err(DeltaError::BadDelta { .. }) => assert_eq!(out, [1, 2, 3]),
        Err(e) => panic!("unexpected {e:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn parse_never_panics(
        magic in prop_oneof![Just(MD4_MAGIC), any::<u32>()],
        block in prop_oneof![MIN_BLOCK - 2..MIN_BLOCK + 2, MAX_BLOCK - 2..MAX_BLOCK + 2, any::<u32>()],
        strong in prop_oneof![0..20u32, any::<u32>()],
        body in proptest::collection::vec(any::<u8>(), 0..400),
        cut in 0..16usize,
        max in prop_oneof![Just(MAX_SIG), 0..500usize],
    ) {
        let mut sig = header(magic, block, strong);
        sig.extend_from_slice(&body);
        sig.truncate(sig.len().saturating_sub(cut));
        if let Ok(peer) = PeerSignature::parse(sig.clone(), max) {
            prop_assert!(sig.len() <= max);
            // A signature that parsed must be usable.
            let mut delta = Vec::new();
            let data = bytes(u64::from(block), 3 * block.min(MAX_BLOCK) as usize / 2);
            diff_segment(&peer.index(), &data, &mut delta).expect("diff on a valid signature");
        }
    }

    #[test]
    fn random_bytes_never_panic_apply(
        magic in any::<bool>(),
        body in proptest::collection::vec(any::<u8>(), 0..200),
        basis_len in 0..5000usize,
        expected_len in prop_oneof![0..5000usize, any::<usize>()],
    ) {
        let mut delta = if magic { DELTA_MAGIC.to_be_bytes().to_vec() } else { Vec::new() };
        delta.extend_from_slice(&body);
        check_apply(&bytes(6, basis_len), &delta, expected_len);
    }

    #[test]
    fn mutated_deltas_never_panic_apply(
        flips in proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>()), 1..4),
        cut in proptest::option::of(any::<proptest::sample::Index>()),
        expected_delta in -2..=2isize,
    ) {
        let (basis, mut delta, len) = valid_delta();
        for (at, byte) in &flips {
            let i = at.index(delta.len());
            delta[i] = *byte;
        }
        if let Some(cut) = cut {
            delta.truncate(cut.index(delta.len() + 1));
        }
        check_apply(&basis, &delta, len.saturating_add_signed(expected_delta));
    }
}
