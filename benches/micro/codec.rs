//! Framing: what each data chunk and each listed entry costs to encode and decode.

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use ferry_proto::{decode, encode, Content, Entry, Limits, Message, Meta, Timestamp};

use crate::data;

/// A data frame of the default chunk size, encoded into a batch and decoded back.
fn data_frames(c: &mut Criterion) {
    let limits = Limits::default();
    let chunk = Bytes::from(data::bytes(limits.data_chunk, 1));
    let message = Message::Data {
        index: 7,
        offset: 1 << 30,
        bytes: chunk.clone(),
    };
    let mut group = c.benchmark_group("codec/data");
    group.throughput(Throughput::Bytes(chunk.len() as u64));
    group.bench_function("encode+decode 256 KiB", |b| {
        let mut buf = BytesMut::with_capacity(2 * limits.data_chunk);
        b.iter(|| {
            encode(&message, &mut buf);
            let decoded = decode(&mut buf, &limits).expect("valid").expect("whole");
            assert!(decoded == message, "a data frame decodes as it was encoded");
        });
    });
    group.finish();
}

/// One listing frame of small files, as a push sends for every directory.
fn list_frames(c: &mut Criterion) {
    let limits = Limits::default();
    let mut group = c.benchmark_group("codec/list");
    for count in [64usize, 1024] {
        let message = Message::List {
            dir: b"var/lib/app/data".to_vec(),
            first: 1000,
            entries: (0..count).map(small_file).collect(),
            dir_done: true,
            dir_complete: true,
        };
        group.throughput(Throughput::Elements(count as u64));
        group.bench_with_input(
            BenchmarkId::new("encode+decode", count),
            &message,
            |b, m| {
                let mut buf = BytesMut::new();
                b.iter(|| {
                    encode(m, &mut buf);
                    decode(&mut buf, &limits).expect("valid").expect("whole")
                });
            },
        );
    }
    group.finish();
}

fn small_file(i: usize) -> Entry {
    Entry {
        name: format!("file-{i:06}.dat").into_bytes(),
        meta: Meta {
            mode: 0o644,
            uid: 1000,
            gid: 1000,
            mtime: Timestamp {
                sec: 1_790_000_000 + i as i64,
                nsec: 123_456_789,
            },
            xattrs: Vec::new(),
        },
        content: Content::File {
            size: 8 * 1024 + i as u64,
            checksum: None,
        },
    }
}

criterion_group! {
    name = benches;
    config = crate::config();
    targets = data_frames, list_frames
}
