//! See `ferry_fuzz::pairing_checks::enroll_wire` for what is checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferry_fuzz::pairing_checks::enroll_wire(data));
