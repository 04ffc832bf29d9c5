//! Checks on pairing's parsers of untrusted input (`ferry_net::pairing`): the two
//! enrollment messages a peer sends, and the join code a person pastes. Shared by the
//! fuzz target `enroll_wire` and by `crates/net/tests/fuzz_corpus.rs` (which includes this
//! file with `#[path]`, so it may use only `ferry_net` and std).
//!
//! Every check panics on a violation; a panic is what libFuzzer reports as a crash.

use ferry_net::pairing::wire::{Request, Response, MAX_REQUEST, MAX_RESPONSE};
use ferry_net::pairing::JoinCode;

/// `data` as a request, as a response, and (if UTF-8) as a join code.
///
/// * No decoder panics. A decoded message took at most its limit of bytes, encodes back
///   to exactly those bytes, and every shorter prefix of them is "need more" (`Ok(None)`).
/// * Bytes that decode to "need more" are shorter than the limit: a peer cannot make a
///   reader wait for (and buffer) more than one whole message.
/// * A parsed join code writes back as a text that parses to the same code.
pub fn enroll_wire(data: &[u8]) {
    let data = &data[..data.len().min(2 * MAX_RESPONSE)];
    match Request::decode(data) {
        Ok(Some((request, used))) => {
            assert!(used <= MAX_REQUEST, "a request of {used} bytes");
            assert_eq!(request.encode(), &data[..used], "not canonical");
            for cut in 0..used {
                assert!(
                    matches!(Request::decode(&data[..cut]), Ok(None)),
                    "prefix {cut}"
                );
            }
        }
        Ok(None) => assert!(data.len() < MAX_REQUEST, "waits past {MAX_REQUEST} bytes"),
        Err(_) => {}
    }
    match Response::decode(data) {
        Ok(Some((response, used))) => {
            assert!(used <= MAX_RESPONSE, "a response of {used} bytes");
            assert_eq!(response.encode(), &data[..used], "not canonical");
        }
        Ok(None) => assert!(data.len() < MAX_RESPONSE, "waits past {MAX_RESPONSE} bytes"),
        Err(_) => {}
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(code) = text.parse::<JoinCode>() {
            assert_eq!(code.reveal().parse::<JoinCode>().ok(), Some(code));
        }
    }
}
