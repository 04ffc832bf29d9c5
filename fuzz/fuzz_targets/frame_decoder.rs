//! See `ferry_fuzz::proto_checks::frame_decoder` for what is checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferry_fuzz::proto_checks::frame_decoder(data));
