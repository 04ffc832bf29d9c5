//! The primitives pairing is built from: SHA-256, HMAC-SHA256, a constant-time compare,
//! the system's random bytes, and fingerprints as people read them (hex).
//!
//! Owns no policy; must not import TLS or the filesystem.

use aws_lc_rs::{digest, hmac};

use crate::error::NetError;

/// SHA-256 of the concatenation of `parts`.
pub fn sha256_parts(parts: &[&[u8]]) -> [u8; 32] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for part in parts {
        ctx.update(part);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// SHA-256 of `bytes`: a certificate's fingerprint when `bytes` is its DER.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    sha256_parts(&[bytes])
}

/// HMAC-SHA256 keyed by `key` over the concatenation of `parts`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let mut ctx = hmac::Context::with_key(&key);
    for part in parts {
        ctx.update(part);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.sign().as_ref());
    out
}

/// Whether `a == b`, in time that depends on their lengths only.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Fills `out` from the system's random number generator.
pub fn random(out: &mut [u8]) -> Result<(), NetError> {
    aws_lc_rs::rand::fill(out).map_err(|_| NetError::Setup {
        detail: "the system random number generator failed".to_owned(),
    })
}

/// Lower-case hex, as `sha256sum` prints.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A SHA-256 fingerprint as people write it: 64 hex digits, either case, optionally
/// with `sha256:` before and `:` between bytes (as `openssl x509 -fingerprint -sha256`
/// prints it).
pub fn parse_fingerprint(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    let text = text
        .strip_prefix("sha256:")
        .or_else(|| text.strip_prefix("SHA256:"))
        .or_else(|| text.strip_prefix("sha256 Fingerprint="))
        .or_else(|| text.strip_prefix("SHA256 Fingerprint="))
        .unwrap_or(text);
    let digits: Vec<u8> = text.bytes().filter(|&b| b != b':').collect();
    if digits.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in digits.chunks(2).enumerate() {
        let pair = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_and_hmac_match_known_answers() {
        // FIPS 180-2 "abc"; RFC 4231 test case 2.
        assert_eq!(
            hex(&sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            hex(&hmac_sha256(
                b"Jefe",
                &[b"what do ya want ", b"for nothing?"]
            )),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn compares_whole_values_only() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }

    #[test]
    fn fingerprints_parse_as_people_paste_them() {
        let fp = sha256(b"x");
        let plain = hex(&fp);
        let colons = fp
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":");
        for text in [
            plain.clone(),
            plain.to_uppercase(),
            format!("sha256:{plain}"),
            format!("SHA256 Fingerprint={colons}"),
            format!("  {colons}\n"),
        ] {
            assert_eq!(parse_fingerprint(&text), Some(fp), "{text}");
        }
        for bad in [
            "",
            "abc",
            &plain[1..],
            &format!("{plain}00"),
            &plain.replace('a', "g"),
        ] {
            assert_eq!(parse_fingerprint(bad), None, "{bad}");
        }
    }
}
