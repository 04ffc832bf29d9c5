//! Replays `fuzz/corpus/{proxy_reply,proxy_config,enroll_wire}/` (and `fuzz/crashes/`) through the fuzz
//! targets' own checks, so a regression on a known input fails `cargo test`. Fuzzing itself
//! is not part of the tests: see fuzz/README.md.

#[allow(dead_code)]
#[path = "../../../fuzz/src/net_checks.rs"]
mod checks;
#[path = "../../../fuzz/src/pairing_checks.rs"]
mod pairing_checks;
#[path = "../../../fuzz/src/replay.rs"]
mod replay;

#[test]
fn proxy_reply_corpus() {
    replay::replay("proxy_reply", checks::proxy_reply);
}

#[test]
fn proxy_config_corpus() {
    replay::replay("proxy_config", checks::proxy_config);
}

#[test]
fn enroll_wire_corpus() {
    replay::replay("enroll_wire", pairing_checks::enroll_wire);
}
