//! Delta: the target's signature of its basis, the source's search of new content
//! against it, and the target's apply, on a 16 MiB file.

use criterion::{criterion_group, Criterion, Throughput};
use ferry_delta::{
    apply_segment, diff_segment, plan, segment_len, signature, PeerSignature, MAX_SEGMENT,
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
    group.bench_function("index", |b| b.iter(|| peer.index().plan()));

    // 1% in place: 16 MiB / 64-byte edits.
    let edited = data::edited(&basis, FILE / 100 / 64);
    let shifted = data::shifted(&basis);
    for (name, new) in [("in place 1%", &edited), ("shifted", &shifted)] {
        group.bench_function(format!("search {name}"), |b| {
            let mut out = Vec::with_capacity(MAX_SEGMENT);
            b.iter(|| {
                let mut literal = 0;
                for piece in new.chunks(segment) {
                    out.clear();
                    literal += diff_segment(&index, piece, &mut out)
                        .expect("valid")
                        .literal;
                }
                literal
            });
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
    group.bench_function("apply in place 1%", |b| {
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
