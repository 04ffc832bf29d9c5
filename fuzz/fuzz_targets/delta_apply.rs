//! See `ferry_fuzz::delta_checks::delta_apply` for what is checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferry_fuzz::delta_checks::delta_apply(data));
