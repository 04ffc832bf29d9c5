//! See `ferry_fuzz::proto_checks::list_entry` for what is checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferry_fuzz::proto_checks::list_entry(data));
