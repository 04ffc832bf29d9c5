//! Delta: the target's signature of its basis, the source's search of new content
//! against it, and the target's apply, on a 16 MiB file.

use criterion::{criterion_group, Criterion, Throughput};
use ferry_delta::{
    apply_segment, check_segment, diff_segment, plan, segment_len, signature, PeerSignature,
    MAX_SEGMENT,
};
use ferry_proto::Limits;

use crate::data;

const FILE: usize = 16 << 20;

/// Signature, search and apply over one basis and two kinds of new content: 1% of it
/// rewritten in place (blocks stay aligned: one XXH3 per block) and 16 bytes inserted
/// near the start (every block shifted: the rolling search finds them).
fn delta(c: &mut Criterion) {
    let max_signature = Limits::default().max_signature;
    let basis = data::bytes(FILE, 2);
    let plan = plan(FILE as u64, max_signature).expect("16 MiB gets a plan");
    let sig = signature(&basis, plan);
    let peer = PeerSignature::parse(sig.clone(), max_signature).expect("our own signature");
    let index = peer.index();
    let segment = segment_len(plan);

    let mut group = c.benchmark_group("delta");
    group.throughput(Throughput::Bytes(FILE as u64));
    group.bench_function("signature", |b| b.iter(|| signature(&basis, plan)));
    group.bench_function("index", |b| b.iter(|| peer.index()));

    // 1% of the bytes in place: 64-byte edits every 6.4 KiB, which dirty about a third
    // of the 2 KiB blocks, so about a third of the delta is literal.
    let edited = data::edited(&basis, FILE / 100 / 64);
    let shifted = data::shifted(&basis);
    for (name, new, most_literal) in [
        ("in place 1%", &edited, FILE / 2),
        ("shifted", &shifted, 64 * 1024),
    ] {
        let search = |out: &mut Vec<u8>| {
            let mut literal = 0;
            for piece in new.chunks(segment) {
                out.clear();
                literal += diff_segment(&index, piece, out).expect("valid").literal;
            }
            literal
        };
        let literal = search(&mut Vec::new());
        assert!(
            literal <= most_literal as u64,
            "{name}: {literal} bytes literal"
        );
        group.bench_function(format!("search {name}"), |b| {
            let mut out = Vec::with_capacity(MAX_SEGMENT);
            b.iter(|| search(&mut out));
        });
    }

    let deltas: Vec<(Vec<u8>, usize)> = edited
        .chunks(segment)
        .map(|piece| {
            let mut out = Vec::new();
            diff_segment(&index, piece, &mut out).expect("valid");
            (out, piece.len())
        })
        .collect();
    let mut rebuilt = Vec::with_capacity(FILE);
    for (delta, len) in &deltas {
        apply_segment(&basis, delta, *len, &mut rebuilt).expect("valid");
    }
    assert!(rebuilt == edited, "the deltas rebuild the edited file");
    // What the target does: check each delta, gather its pieces into 128 KiB runs and
    // hash them (the write left out).
    group.bench_function("check+runs in place 1%", |b| {
        let mut buf = Vec::new();
        b.iter(|| {
            let mut hasher = blake3::Hasher::new();
            for (delta, len) in &deltas {
                let checked = check_segment(&basis[..], delta, *len).expect("valid");
                let done = checked.for_each_run(&mut buf, 128 * 1024, |run| {
                    hasher.update(run);
                    Ok::<(), ()>(())
                });
                assert!(matches!(done, Ok(n) if n == *len as u64));
            }
            hasher.finalize()
        });
    });
    // The pieces as they come, for comparison: small updates starve BLAKE3's SIMD.
    group.bench_function("check+pieces in place 1%", |b| {
        b.iter(|| {
            let mut hasher = blake3::Hasher::new();
            for (delta, len) in &deltas {
                let checked = check_segment(&basis[..], delta, *len).expect("valid");
                checked.pieces().for_each(|piece| {
                    hasher.update(piece);
                });
            }
            hasher.finalize()
        });
    });
    group.bench_function("apply into a buffer in place 1%", |b| {
        let mut out = Vec::with_capacity(MAX_SEGMENT);
        b.iter(|| {
            for (delta, len) in &deltas {
                out.clear();
                apply_segment(&basis, delta, *len, &mut out).expect("valid");
            }
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = crate::config();
    targets = delta
}
