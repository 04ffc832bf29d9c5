//! See `ferry_fuzz::session_checks::session` (and `ferry_engine::fuzzing`) for what is
//! checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferry_fuzz::session_checks::session(data));
