//! The joiner's proof that it holds the join code's secret, bound to one TLS connection
//! and to the key it wants certified.
//!
//! ```text
//! exporter = TLS-Exporter(label "EXPORTER-ferry-enroll-v1", no context, 32 bytes)   (RFC 8446 7.5)
//! proof    = HMAC-SHA256(key = secret,
//!                        "ferry enroll v1" 0x00 || exporter || u16 len || public key || u8 len || name)
//! ```
//!
//! Both ends of one connection derive the same exporter value, and no other connection
//! does: a proof copied onto another connection (replayed, or relayed by a server that is
//! not the one pinned) does not verify there. The public key and name are covered, so a
//! proof cannot be moved to another key either.
//!
//! Owns the computation only; must not import sockets or the filesystem.

use super::digest::{constant_time_eq, hmac_sha256};
use super::SECRET_LEN;

/// RFC 5705 / RFC 8446 exporter label of the enrollment exchange.
pub const EXPORTER_LABEL: &[u8] = b"EXPORTER-ferry-enroll-v1";
/// Bytes taken from the exporter.
pub const EXPORTER_LEN: usize = 32;
const DOMAIN: &[u8] = b"ferry enroll v1\0";

/// The exporter value of a TLS connection (either end's view of it: they agree).
pub fn exporter<D>(
    conn: &rustls::ConnectionCommon<D>,
) -> Result<[u8; EXPORTER_LEN], rustls::Error> {
    conn.export_keying_material([0u8; EXPORTER_LEN], EXPORTER_LABEL, None)
}

/// The proof over `exporter`, the joiner's public key and its name. The lengths are
/// included so that no two (key, name) pairs hash the same input; callers bound them
/// (the key to 65535 bytes, the name to 255) before calling.
pub fn proof(
    secret: &[u8; SECRET_LEN],
    exporter: &[u8; EXPORTER_LEN],
    public_key: &[u8],
    name: &[u8],
) -> [u8; 32] {
    let key_len = u16::try_from(public_key.len())
        .unwrap_or(u16::MAX)
        .to_be_bytes();
    let name_len = [u8::try_from(name.len()).unwrap_or(u8::MAX)];
    hmac_sha256(
        secret,
        &[DOMAIN, exporter, &key_len, public_key, &name_len, name],
    )
}

/// Whether `presented` is the proof for these values, compared in constant time.
pub fn verify(
    secret: &[u8; SECRET_LEN],
    exporter: &[u8; EXPORTER_LEN],
    public_key: &[u8],
    name: &[u8],
    presented: &[u8; 32],
) -> bool {
    constant_time_eq(&proof(secret, exporter, public_key, name), presented)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: [u8; SECRET_LEN] = [7; SECRET_LEN];
    const EXPORTER: [u8; EXPORTER_LEN] = [1; EXPORTER_LEN];

    #[test]
    fn a_proof_verifies_for_exactly_what_it_was_made_for() {
        let key = [4u8; 65];
        let p = proof(&SECRET, &EXPORTER, &key, b"laptop");
        assert!(verify(&SECRET, &EXPORTER, &key, b"laptop", &p));
        // Another connection (its exporter), another secret, key or name: refused.
        assert!(!verify(&SECRET, &[2; EXPORTER_LEN], &key, b"laptop", &p));
        assert!(!verify(&[8; SECRET_LEN], &EXPORTER, &key, b"laptop", &p));
        assert!(!verify(&SECRET, &EXPORTER, &[5u8; 65], b"laptop", &p));
        assert!(!verify(&SECRET, &EXPORTER, &key, b"laptoq", &p));
        let mut flipped = p;
        flipped[31] ^= 1;
        assert!(!verify(&SECRET, &EXPORTER, &key, b"laptop", &flipped));
    }

    #[test]
    fn the_boundary_between_key_and_name_is_part_of_the_proof() {
        let a = proof(&SECRET, &EXPORTER, b"ab", b"c");
        let b = proof(&SECRET, &EXPORTER, b"a", b"bc");
        assert_ne!(a, b);
    }
}
