//! Ferry's fuzz checks. Each module holds the property checks of one crate's parsers; the
//! fuzz targets in `fuzz_targets/` call them on libFuzzer's input, and each crate's
//! `tests/fuzz_corpus.rs` includes the same module with `#[path]` and replays
//! `fuzz/corpus/<target>/` through it under `cargo test`.

pub mod delta_checks;
pub mod filter_checks;
pub mod net_checks;
pub mod pairing_checks;
pub mod proto_checks;
pub mod session_checks;
