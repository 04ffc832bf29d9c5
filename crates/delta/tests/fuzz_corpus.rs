//! Replays `fuzz/corpus/{signature_parser,delta_apply}/` (and `fuzz/crashes/`) through the
//! fuzz targets' own checks, so a regression on a known input fails `cargo test`. Fuzzing
//! itself is not part of the tests: see fuzz/README.md.

#[allow(dead_code)]
#[path = "../../../fuzz/src/delta_checks.rs"]
mod checks;
#[path = "../../../fuzz/src/replay.rs"]
mod replay;

#[test]
fn signature_parser_corpus() {
    replay::replay("signature_parser", checks::signature_parser);
}

#[test]
fn delta_apply_corpus() {
    replay::replay("delta_apply", checks::delta_apply);
}
