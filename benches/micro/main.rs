//! Micro-benchmarks: the pieces every byte or every entry of a transfer goes through,
//! each alone, so a regression shows without the network, the proxy and the disk that
//! make `benches/bench.py`'s figures move by 20% from run to run.
//!
//! * [`codec`]: framing file data and directory listings, both ways.
//! * [`delta`]: a basis's signature, the search of new data against it (content that
//!   stayed in place, content that shifted) and the bounded apply.
//! * [`filter`]: a peer's include/exclude rules over a listing, the costliest the
//!   limits allow and a usual one.
//! * [`hash`]: the whole-file BLAKE3 both sides compute over every byte.
//!
//! `cargo bench --bench micro` measures (about a minute; `-- delta` picks a group);
//! `cargo test --bench micro`, which `.ci/run` runs, runs each benchmark once so they
//! cannot rot.

mod codec;
mod data;
mod delta;
mod filter;
mod hash;

/// Fewer, shorter samples than criterion's default: the project's machines are shared
/// 2-core VMs, where a longer run buys no precision, and the whole set stays near a minute.
fn config() -> criterion::Criterion {
    criterion::Criterion::default()
        .sample_size(20)
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2))
}

criterion::criterion_main!(
    codec::benches,
    delta::benches,
    filter::benches,
    hash::benches
);
