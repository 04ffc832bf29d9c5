//! Replays `fuzz/corpus/session/` (and `fuzz/crashes/session/`) through the fuzz target's
//! own check: the target session over each recorded peer byte stream, so a regression on
//! a known input fails `cargo test`. Fuzzing itself is not part of the tests: see
//! fuzz/README.md.

#[path = "../../../fuzz/src/session_checks.rs"]
mod checks;
#[path = "../../../fuzz/src/replay.rs"]
mod replay;

#[test]
fn session_corpus() {
    replay::replay("session", checks::session);
}
