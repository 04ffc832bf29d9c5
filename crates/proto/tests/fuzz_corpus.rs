//! Replays `fuzz/corpus/{frame_decoder,list_entry,filter}/` (and `fuzz/crashes/`) through the fuzz
//! targets' own checks, so a regression on a known input fails `cargo test`. Fuzzing itself
//! is not part of the tests: see fuzz/README.md.

#[allow(dead_code)]
#[path = "../../../fuzz/src/proto_checks.rs"]
mod checks;
#[allow(dead_code)]
#[path = "../../../fuzz/src/filter_checks.rs"]
mod filter_checks;
#[path = "../../../fuzz/src/replay.rs"]
mod replay;

#[test]
fn frame_decoder_corpus() {
    replay::replay("frame_decoder", checks::frame_decoder);
}

#[test]
fn list_entry_corpus() {
    replay::replay("list_entry", checks::list_entry);
}

#[test]
fn filter_corpus() {
    replay::replay("filter", filter_checks::filter);
}
