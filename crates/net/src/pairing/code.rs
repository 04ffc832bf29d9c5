//! The join code: what `ferry serve --pair` prints and `--join` takes.
//!
//! It carries the SHA-256 of the server's CA (the joiner accepts only a server whose chain
//! ends there) and a one-time secret of 128 bits (the joiner proves it holds it). Written as
//! ten groups of eight base32 letters and digits (RFC 4648 alphabet, lower case), e.g.
//! `k3x7…-…`: 50 bytes, `secret (16) || ca_sha256 (32) || check (2)`, where `check` is the
//! first two bytes of SHA-256(`"ferry join code v1"` || secret || ca_sha256). The check
//! catches a mistyped code before anything is sent, and names the format's version.
//!
//! Owns the format only; must not import TLS or the filesystem.

use std::fmt;
use std::str::FromStr;

use super::digest::{random, sha256_parts};

/// Bytes of the one-time secret.
pub const SECRET_LEN: usize = 16;
const CHECK_LEN: usize = 2;
const PAYLOAD_LEN: usize = SECRET_LEN + 32 + CHECK_LEN;
/// Base32 characters of a code, without the dashes.
const CODE_CHARS: usize = PAYLOAD_LEN * 8 / 5;
const GROUP: usize = 8;
const CHECK_DOMAIN: &[u8] = b"ferry join code v1";
const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// A join code. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct JoinCode {
    secret: [u8; SECRET_LEN],
    ca_sha256: [u8; 32],
}

/// Why a string is not a join code.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    #[error("it has {got} letters and digits, a join code has {CODE_CHARS}: copy the whole code printed by `ferry serve --pair`")]
    Length { got: usize },
    #[error("it holds {0:?}, which is not in a join code (letters a-z and digits 2-7, in groups joined by '-')")]
    Character(char),
    #[error("its check digits do not match: a letter was mistyped or the code is from another ferry version; copy the code printed by `ferry serve --pair` again")]
    Check,
}

impl JoinCode {
    /// A fresh code for the CA whose certificate hashes to `ca_sha256`.
    pub fn generate(ca_sha256: [u8; 32]) -> Result<JoinCode, crate::NetError> {
        let mut secret = [0u8; SECRET_LEN];
        random(&mut secret)?;
        Ok(JoinCode { secret, ca_sha256 })
    }

    pub fn new(secret: [u8; SECRET_LEN], ca_sha256: [u8; 32]) -> JoinCode {
        JoinCode { secret, ca_sha256 }
    }

    pub fn secret(&self) -> &[u8; SECRET_LEN] {
        &self.secret
    }

    pub fn ca_sha256(&self) -> &[u8; 32] {
        &self.ca_sha256
    }

    fn check(&self) -> [u8; CHECK_LEN] {
        let hash = sha256_parts(&[CHECK_DOMAIN, &self.secret, &self.ca_sha256]);
        [hash[0], hash[1]]
    }

    /// The code as the user types it; holds the secret, so only for the one line that
    /// `serve --pair` prints.
    pub fn reveal(&self) -> String {
        let mut payload = Vec::with_capacity(PAYLOAD_LEN);
        payload.extend_from_slice(&self.secret);
        payload.extend_from_slice(&self.ca_sha256);
        payload.extend_from_slice(&self.check());
        let chars = encode(&payload);
        chars
            .as_bytes()
            .chunks(GROUP)
            .map(|group| std::str::from_utf8(group).expect("base32 is ASCII"))
            .collect::<Vec<_>>()
            .join("-")
    }
}

impl fmt::Debug for JoinCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinCode")
            .field("ca_sha256", &super::digest::hex(&self.ca_sha256))
            .field("secret", &"***")
            .finish()
    }
}

impl FromStr for JoinCode {
    type Err = CodeError;

    /// Accepts either case, and ignores dashes and white space (a code split over lines).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut values = Vec::with_capacity(CODE_CHARS);
        for c in s.chars() {
            if c == '-' || c.is_whitespace() {
                continue;
            }
            let lower = c.to_ascii_lowercase();
            match ALPHABET.iter().position(|&a| char::from(a) == lower) {
                Some(v) => values.push(v as u8),
                None => return Err(CodeError::Character(c)),
            }
        }
        if values.len() != CODE_CHARS {
            return Err(CodeError::Length { got: values.len() });
        }
        let payload = decode(&values);
        let mut secret = [0u8; SECRET_LEN];
        let mut ca_sha256 = [0u8; 32];
        secret.copy_from_slice(&payload[..SECRET_LEN]);
        ca_sha256.copy_from_slice(&payload[SECRET_LEN..SECRET_LEN + 32]);
        let code = JoinCode { secret, ca_sha256 };
        if code.check()[..] != payload[SECRET_LEN + 32..] {
            return Err(CodeError::Check);
        }
        Ok(code)
    }
}

/// Base32 of `bytes`, whose bit length is a multiple of 5 (50 bytes here): no padding.
fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 8 / 5);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((acc >> bits) & 31) as usize]));
        }
    }
    out
}

/// The bytes of [`CODE_CHARS`] base32 values (each below 32).
fn decode(values: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(PAYLOAD_LEN);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &v in values {
        acc = (acc << 5) | u32::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> JoinCode {
        let mut secret = [0u8; SECRET_LEN];
        let mut ca = [0u8; 32];
        for (i, b) in secret.iter_mut().enumerate() {
            *b = i as u8 * 17;
        }
        for (i, b) in ca.iter_mut().enumerate() {
            *b = 255 - i as u8;
        }
        JoinCode::new(secret, ca)
    }

    #[test]
    fn a_code_reads_back_as_written_in_either_case_and_split_over_lines() {
        let code = sample();
        let text = code.reveal();
        assert_eq!(text.len(), CODE_CHARS + CODE_CHARS / GROUP - 1, "{text}");
        assert_eq!(text.split('-').count(), 10, "{text}");
        assert_eq!(text.parse::<JoinCode>().unwrap(), code);
        assert_eq!(text.to_uppercase().parse::<JoinCode>().unwrap(), code);
        let split = format!(" {}\n  {} ", &text[..40], &text[40..]);
        assert_eq!(split.parse::<JoinCode>().unwrap(), code);
    }

    #[test]
    fn a_mistyped_code_is_refused_by_its_check_digits() {
        let text = sample().reveal();
        // Every single-letter change, at every position.
        for (i, c) in text.char_indices().filter(|(_, c)| *c != '-') {
            let other = if c == 'a' { 'b' } else { 'a' };
            let typo = format!("{}{other}{}", &text[..i], &text[i + 1..]);
            assert_eq!(typo.parse::<JoinCode>(), Err(CodeError::Check), "{typo}");
        }
    }

    #[test]
    fn wrong_lengths_and_characters_are_named() {
        let text = sample().reveal();
        assert_eq!(
            text[..text.len() - 1].parse::<JoinCode>(),
            Err(CodeError::Length {
                got: CODE_CHARS - 1
            })
        );
        assert_eq!(
            format!("{text}a").parse::<JoinCode>(),
            Err(CodeError::Length {
                got: CODE_CHARS + 1
            })
        );
        // 0, 1, 8 and 9 are not base32 (they look like o, l, b and g).
        assert_eq!(
            text.replacen(|c: char| c.is_ascii_alphabetic(), "0", 1)
                .parse::<JoinCode>(),
            Err(CodeError::Character('0'))
        );
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let code = sample();
        let shown = format!("{code:?}");
        assert!(shown.contains("***"), "{shown}");
        assert!(!shown.contains(&code.reveal()[..8]), "{shown}");
    }
}
