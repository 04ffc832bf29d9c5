//! See `ferry_fuzz::net_checks::proxy_reply` for what is checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferry_fuzz::net_checks::proxy_reply(data));
