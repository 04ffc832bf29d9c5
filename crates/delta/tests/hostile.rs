//! Hostile signatures and deltas are refused with an error, never a panic, a huge
//! allocation or a hang.

mod support;

use ferry_delta::{
    apply_segment, check_segment, diff_segment, signature, signature_on, BasisRead, BlockPlan,
    DeltaError, PeerSignature, RunError, MAX_BLOCK, MAX_SEGMENT, MIN_BLOCK, SPLIT_SIGNATURE_MIN,
};
use proptest::prelude::*;
use support::{bytes, parse, MAX_SIG};

const MAGIC: u32 = 0x4652_5958;
/// Protocol 2-3's signatures (BLAKE3 block hashes): refused, not misread.
const BLAKE3_MAGIC: u32 = 0x4652_5942;
/// fast_rsync's MD4 signature magic: Ferry's signatures are not fast_rsync's.
const MD4_MAGIC: u32 = 0x7273_0136;
const DELTA_MAGIC: u32 = 0x7273_0236;

fn header(magic: u32, block_size: u32, strong_len: u32, basis_len: u64) -> Vec<u8> {
    let mut h: Vec<u8> = [magic, block_size, strong_len]
        .iter()
        .flat_map(|w| w.to_be_bytes())
        .collect();
    h.extend_from_slice(&basis_len.to_be_bytes());
    h
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
    assert!(sig_reason(header(MAGIC, 4096, 8, 0)[..19].to_vec(), MAX_SIG).contains("shorter"));
    assert!(sig_reason(header(MD4_MAGIC, 4096, 8, 0), MAX_SIG).contains("magic"));
    assert!(sig_reason(header(DELTA_MAGIC, 4096, 8, 0), MAX_SIG).contains("magic"));
    assert!(sig_reason(header(BLAKE3_MAGIC, 4096, 8, 0), MAX_SIG).contains("magic"));
    for block in [0, 1, MIN_BLOCK - 1, MAX_BLOCK + 1, 1 << 30, u32::MAX] {
        assert!(sig_reason(header(MAGIC, block, 8, 0), MAX_SIG).contains("block size"));
    }
    for strong in [0, 3, 17, 32, u32::MAX] {
        assert!(sig_reason(header(MAGIC, 4096, strong, 0), MAX_SIG).contains("strong"));
    }
    // Entries must be exactly one per block of the declared basis.
    let mut ragged = header(MAGIC, 4096, 8, 4096);
    ragged.extend_from_slice(&[0; 13]);
    assert!(sig_reason(ragged, MAX_SIG).contains("needs 1 entries"));
    let mut short = header(MAGIC, 4096, 8, 3 * 4096 + 1);
    short.extend_from_slice(&[0; 3 * 12]);
    assert!(sig_reason(short, MAX_SIG).contains("needs 4 entries"));
    let huge = header(MAGIC, 4096, 8, u64::MAX);
    assert!(sig_reason(huge, MAX_SIG).contains("entries"));
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

/// rsync's rolling checksum, as the signature carries it.
fn weak(window: &[u8]) -> u32 {
    let (mut s1, mut s2) = (0u32, 0u32);
    for &x in window {
        s1 = s1.wrapping_add(u32::from(x) + 31);
        s2 = s2.wrapping_add(s1);
    }
    (s2 & 0xffff) << 16 | (s1 & 0xffff)
}

#[test]
fn weak_checksums_matching_every_window_with_false_strong_hashes_end_all_literal() {
    // A peer that knows our data names the weak checksum of every window of it, with
    // strong hashes that never match: every byte is a candidate. The search must end
    // (its failed strong hashes are budgeted) with a correct, all-literal delta.
    let block = MIN_BLOCK as usize;
    let data = bytes(9, 6 * block);
    let windows = data.len() - block + 1;
    let mut sig = header(MAGIC, MIN_BLOCK, 8, (windows * block) as u64);
    for start in 0..windows {
        sig.extend_from_slice(&weak(&data[start..start + block]).to_be_bytes());
        sig.extend_from_slice(&[0x5a; 8]);
    }
    let peer = PeerSignature::parse(sig, MAX_SIG).expect("well formed");
    let mut delta = Vec::new();
    let stats = diff_segment(&peer.index(), &data, &mut delta).expect("diff");
    assert_eq!((stats.literal, stats.copied), (data.len() as u64, 0));
    let mut rebuilt = Vec::new();
    apply_segment(&[], &delta, data.len(), &mut rebuilt).expect("apply");
    assert_eq!(rebuilt, data);
}

#[test]
fn parse_accepts_the_bounds() {
    for (block, strong) in [(MIN_BLOCK, 4), (MAX_BLOCK, 16)] {
        let mut sig = header(MAGIC, block, strong, 3 * u64::from(block) - 1);
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
    let peer = PeerSignature::parse(header(MAGIC, 4096, 8, 0), MAX_SIG).expect("valid");
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
fn a_valid_delta_applies_as_fast_rsync_applies_it() {
    let (basis, delta, len) = valid_delta();
    let pieces = check_segment(&basis[..], &delta, len)
        .expect("valid")
        .pieces()
        .count();
    assert!(
        pieces > 2,
        "a copy, the inserted literal and copies after it: {pieces}"
    );
    check_apply(&basis, &delta, len);
}

#[test]
fn runs_are_the_output_in_full_sized_runs_and_stop_at_a_sink_error() {
    let (basis, delta, len) = valid_delta();
    let checked = check_segment(&basis[..], &delta, len).expect("valid");
    let mut applied = Vec::new();
    apply_segment(&basis, &delta, len, &mut applied).expect("valid");
    for run in [1, 7, 1000, len, 10 * len] {
        let (mut out, mut sizes, mut buf) = (Vec::new(), Vec::new(), Vec::new());
        let total = checked.for_each_run(&mut buf, run, |r| {
            out.extend_from_slice(r);
            sizes.push(r.len());
            Ok::<(), ()>(())
        });
        assert!(matches!(total, Ok(n) if n == len as u64), "run {run}");
        assert!(out == applied, "run {run}: different bytes");
        let (last, full) = sizes.split_last().expect("some output");
        assert!(
            full.iter().all(|&n| n == run) && *last <= run,
            "run {run}: {sizes:?}"
        );
    }
    let mut calls = 0;
    let stopped = checked.for_each_run(&mut Vec::new(), 1000, |_| {
        calls += 1;
        if calls == 2 {
            Err("disk full")
        } else {
            Ok(())
        }
    });
    assert!(matches!(stopped, Err(RunError::Sink("disk full"))));
    assert_eq!(calls, 2);
}

#[test]
fn a_delta_of_many_tiny_copies_is_refused() {
    // Each COPY is a read of the basis at the target: 1 MiB in one-byte copies would be a
    // million reads. A search copies whole blocks (and a short last block after one).
    let basis = bytes(9, 64 << 10);
    let len = 64 << 10;
    let tiny: Vec<Vec<u8>> = (0..len as u64).map(|i| copy(i % 1000, 1)).collect();
    let mut parts: Vec<&[u8]> = tiny.iter().map(Vec::as_slice).collect();
    parts.push(&[0]);
    assert!(apply_reason(&basis, &delta_of(&parts), len).contains("COPY commands"));
    // As many as a search could make is fine: for 4 bytes, a short copy after a block's.
    let few: Vec<Vec<u8>> = (0..4u64).map(|i| copy(i, 1)).collect();
    let mut parts: Vec<&[u8]> = few.iter().map(Vec::as_slice).collect();
    parts.push(&[0]);
    let mut out = Vec::new();
    apply_segment(&basis, &delta_of(&parts), 4, &mut out).expect("4 copies for 4 bytes");
}

/// A basis that says it is longer than it is, as a file truncated after it was opened.
struct Shrunk<'a> {
    bytes: &'a [u8],
    claimed: u64,
}

impl BasisRead for Shrunk<'_> {
    fn basis_len(&self) -> u64 {
        self.claimed
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self.bytes.read_exact_at(offset, buf)
    }
}

#[test]
fn runs_stop_with_a_basis_error_where_the_basis_shrank() {
    let (basis, delta, len) = valid_delta();
    let shrunk = Shrunk {
        bytes: &basis[..basis.len() / 2],
        claimed: basis.len() as u64,
    };
    let checked = check_segment(&shrunk, &delta, len).expect("checked against the claimed length");
    let mut handed = 0;
    let stopped = checked.for_each_run(&mut Vec::new(), 64, |r| {
        handed += r.len();
        Ok::<(), ()>(())
    });
    assert!(
        matches!(stopped, Err(RunError::Basis(_))),
        "a read past the real end must fail, not come back short: {stopped:?}"
    );
    assert!(handed < len, "{handed} of {len} bytes handed over");
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

/// An `Ok` must have produced exactly `expected_len` bytes, the same bytes fast_rsync's
/// own apply makes of that delta (the format is fast_rsync's; the applier is Ferry's).
fn check_apply(basis: &[u8], delta: &[u8], expected_len: usize) {
    let mut out = vec![1, 2, 3];
    match apply_segment(basis, delta, expected_len, &mut out) {
        Ok(stats) => {
            assert_eq!(out.len(), 3 + expected_len);
            assert_eq!(stats.literal + stats.copied, expected_len as u64);
            let mut theirs = Vec::new();
            fast_rsync::apply_limited(basis, delta, &mut theirs, expected_len)
                .expect("fast_rsync applies a delta Ferry accepted");
            assert_eq!(
                out[3..],
                theirs[..],
                "Ferry and fast_rsync rebuilt different bytes"
            );
        }
        Err(DeltaError::BadDelta { .. }) => assert_eq!(out, [1, 2, 3]),
        Err(e) => panic!("unexpected {e:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn parse_never_panics(
        magic in prop_oneof![Just(MAGIC), any::<u32>()],
        block in prop_oneof![MIN_BLOCK - 2..MIN_BLOCK + 2, MAX_BLOCK - 2..MAX_BLOCK + 2, any::<u32>()],
        strong in prop_oneof![0..36u32, any::<u32>()],
        body in proptest::collection::vec(any::<u8>(), 0..400),
        basis_len in prop_oneof![Just(None), any::<u64>().prop_map(Some)],
        short_by in 0..4096u64,
        cut in 0..16usize,
        max in prop_oneof![Just(MAX_SIG), 0..500usize],
    ) {
        // Mostly a basis length that fits the body, so parsing gets past the header.
        let blocks = body.len() as u64 / u64::from(strong.saturating_add(4)).max(1);
        let fitting = (blocks * u64::from(block)).saturating_sub(short_by % u64::from(block.max(1)));
        let mut sig = header(magic, block, strong, basis_len.unwrap_or(fitting));
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

#[test]
fn a_basis_that_shrank_fails_its_signature_on_any_thread() {
    let bytes = vec![3u8; SPLIT_SIGNATURE_MIN + 4096];
    let plan = BlockPlan {
        block_size: 4096,
        strong_len: 8,
    };
    for (real, threads) in [
        (1000, 1),
        (bytes.len() - 1, 1),
        (bytes.len() - 1, 3),
        (4096, 3),
    ] {
        let shrunk = Shrunk {
            bytes: &bytes[..real],
            claimed: bytes.len() as u64,
        };
        assert!(
            signature_on(&shrunk, plan, threads).is_err(),
            "{real} of {} bytes, {threads} threads",
            bytes.len()
        );
    }
}
