//! See `ferry_fuzz::delta_checks::signature_parser` for what is checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferry_fuzz::delta_checks::signature_parser(data));
