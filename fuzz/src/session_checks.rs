//! Checks on the target's session logic, shared by the fuzz target `session` and by
//! `crates/engine/tests/fuzz_corpus.rs` (which includes this file with `#[path]`, so it
//! may use only `ferry_engine` with its `fuzzing` feature).
//!
//! The work is in `ferry_engine::fuzzing::fuzz_target_session`: it runs the real target
//! session in-process over the bytes, against a temporary volume with a sentinel beside
//! it, and panics if the session panics, does not end, or changes anything outside the
//! volume.

/// `data[0]` picks the session's options (see `fuzz_target_session`); the rest is the
/// peer's frames.
pub fn session(data: &[u8]) {
    ferry_engine::fuzzing::fuzz_target_session(data);
}
