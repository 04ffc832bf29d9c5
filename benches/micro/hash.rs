//! Hashing: the BLAKE3 each side computes over every byte of a file it sends or rebuilds,
//! fed as the engine feeds it (one data chunk at a time).

use criterion::{criterion_group, Criterion, Throughput};
use ferry_proto::Limits;

use crate::data;

fn file_hash(c: &mut Criterion) {
    let chunk = Limits::default().data_chunk;
    let file = data::bytes(16 << 20, 3);
    let mut group = c.benchmark_group("hash");
    group.throughput(Throughput::Bytes(file.len() as u64));
    group.bench_function("blake3 by data chunk", |b| {
        b.iter(|| {
            let mut hasher = blake3::Hasher::new();
            for piece in file.chunks(chunk) {
                hasher.update(piece);
            }
            hasher.finalize()
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = crate::config();
    targets = file_hash
}
