//! See `ferry_fuzz::filter_checks::filter` for what is checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferry_fuzz::filter_checks::filter(data));
