//! The two messages of the enrollment exchange, as bytes (specified in docs/protocol.md, "Enrollment (pairing)").
//!
//! ```text
//! Request  (joiner -> server): "FEN1" | u16 key_len | key | u8 name_len | name | proof[32]
//! Response (server -> joiner): "FEN1" | 0x00 | u16 cert_len | cert DER | u16 ca_len | ca DER
//!                              "FEN1" | 0x01 | u8 reason | u16 msg_len | msg (UTF-8)
//! ```
//!
//! Integers are big-endian. Every length is bounded before anything is allocated for it.
//! Decoding is sans-IO: given the bytes received so far it returns `Ok(None)` while the
//! message is incomplete, the message and its length once it is whole, or an error.
//!
//! Must not import sockets, TLS or the filesystem.

use std::fmt;

pub const MAGIC: &[u8; 4] = b"FEN1";
/// An uncompressed P-256 point: 0x04 || X || Y.
pub const KEY_LEN: usize = 65;
/// Most bytes of the joiner's name.
pub const MAX_NAME: usize = 64;
/// Most bytes of a certificate in a response.
pub const MAX_CERT: usize = 16 * 1024;
/// Most bytes of a refusal's message.
pub const MAX_MESSAGE: usize = 1024;
/// The longest request: what a server reads at most before it answers.
pub const MAX_REQUEST: usize = 4 + 2 + KEY_LEN + 1 + MAX_NAME + 32;
/// The longest response.
pub const MAX_RESPONSE: usize = 4 + 1 + 2 + MAX_CERT + 2 + MAX_CERT;

/// What a joiner sends once TLS is up.
#[derive(Clone, PartialEq, Eq)]
pub struct Request {
    /// The joiner's new public key, an uncompressed P-256 point.
    pub public_key: Vec<u8>,
    /// The joiner's host name (letters, digits, `.`, `-`, `_`), for the log and the
    /// certificate's common name; may be empty.
    pub name: String,
    pub proof: [u8; 32],
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Why a server refused an enrollment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The proof did not verify: another secret, or a proof made on another connection.
    BadProof = 1,
    /// The request was not well formed.
    Malformed = 2,
    /// The pairing window closed (the code was used, expired, or too many proofs failed)
    /// between the handshake and the request.
    Closed = 3,
    /// The server could not issue the certificate.
    Internal = 4,
}

impl Reason {
    fn from_byte(b: u8) -> Option<Reason> {
        Some(match b {
            1 => Reason::BadProof,
            2 => Reason::Malformed,
            3 => Reason::Closed,
            4 => Reason::Internal,
            _ => return None,
        })
    }
}

/// What the server answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    Granted { cert_der: Vec<u8>, ca_der: Vec<u8> },
    Refused { reason: Reason, message: String },
}

/// A message that breaks the format.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("it does not start with FEN1 (not a ferry enrollment, or another version)")]
    Magic,
    #[error("{what} is {got} bytes, the limit is {max}")]
    TooLong {
        what: &'static str,
        got: usize,
        max: usize,
    },
    #[error(
        "the public key is not an uncompressed P-256 point ({got} bytes, first byte {first:#04x})"
    )]
    Key { got: usize, first: u8 },
    #[error("the name holds a byte other than letters, digits, '.', '-' and '_'")]
    Name,
    #[error("unknown response status {0}")]
    Status(u8),
    #[error("unknown refusal reason {0}")]
    Reason(u8),
    #[error("the refusal message is not UTF-8")]
    Message,
}

/// Whether `name` may be sent as a joiner's name.
pub fn valid_name(name: &str) -> bool {
    name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

impl Request {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(MAX_REQUEST);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(self.public_key.len() as u16).to_be_bytes());
        out.extend_from_slice(&self.public_key);
        out.push(self.name.len() as u8);
        out.extend_from_slice(self.name.as_bytes());
        out.extend_from_slice(&self.proof);
        out
    }

    pub fn decode(buf: &[u8]) -> Result<Option<(Request, usize)>, WireError> {
        let mut r = Reader { buf, at: 0 };
        let Some(magic) = r.take(4) else {
            return check_magic_prefix(buf).map(|()| None);
        };
        if magic != MAGIC {
            return Err(WireError::Magic);
        }
        let Some(key_len) = r.u16() else {
            return Ok(None);
        };
        if key_len != KEY_LEN {
            return Err(WireError::Key {
                got: key_len,
                first: 0,
            });
        }
        let Some(key) = r.take(key_len) else {
            return Ok(None);
        };
        if key[0] != 0x04 {
            return Err(WireError::Key {
                got: key_len,
                first: key[0],
            });
        }
        let Some(name_len) = r.u8() else {
            return Ok(None);
        };
        if name_len > MAX_NAME {
            return Err(WireError::TooLong {
                what: "the name",
                got: name_len,
                max: MAX_NAME,
            });
        }
        let Some(name) = r.take(name_len) else {
            return Ok(None);
        };
        let name = std::str::from_utf8(name).map_err(|_| WireError::Name)?;
        if !valid_name(name) {
            return Err(WireError::Name);
        }
        let Some(proof) = r.take(32) else {
            return Ok(None);
        };
        let request = Request {
            public_key: key.to_vec(),
            name: name.to_owned(),
            proof: proof.try_into().expect("32 bytes"),
        };
        Ok(Some((request, r.at)))
    }
}

/// A prefix of the magic is an incomplete message; anything else is not ours.
fn check_magic_prefix(buf: &[u8]) -> Result<(), WireError> {
    if MAGIC.starts_with(buf) {
        Ok(())
    } else {
        Err(WireError::Magic)
    }
}

impl Response {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        match self {
            Response::Granted { cert_der, ca_der } => {
                out.push(0);
                for der in [cert_der, ca_der] {
                    out.extend_from_slice(&(der.len().min(MAX_CERT) as u16).to_be_bytes());
                    out.extend_from_slice(&der[..der.len().min(MAX_CERT)]);
                }
            }
            Response::Refused { reason, message } => {
                out.push(1);
                out.push(*reason as u8);
                let mut end = message.len().min(MAX_MESSAGE);
                while !message.is_char_boundary(end) {
                    end -= 1;
                }
                out.extend_from_slice(&(end as u16).to_be_bytes());
                out.extend_from_slice(&message.as_bytes()[..end]);
            }
        }
        out
    }

    pub fn decode(buf: &[u8]) -> Result<Option<(Response, usize)>, WireError> {
        let mut r = Reader { buf, at: 0 };
        let Some(magic) = r.take(4) else {
            return check_magic_prefix(buf).map(|()| None);
        };
        if magic != MAGIC {
            return Err(WireError::Magic);
        }
        let Some(status) = r.u8() else {
            return Ok(None);
        };
        let response = match status {
            0 => {
                let mut ders = Vec::with_capacity(2);
                for what in ["the certificate", "the CA certificate"] {
                    let Some(len) = r.u16() else {
                        return Ok(None);
                    };
                    if len > MAX_CERT {
                        return Err(WireError::TooLong {
                            what,
                            got: len,
                            max: MAX_CERT,
                        });
                    }
                    let Some(der) = r.take(len) else {
                        return Ok(None);
                    };
                    ders.push(der.to_vec());
                }
                let ca_der = ders.pop().expect("two");
                let cert_der = ders.pop().expect("two");
                Response::Granted { cert_der, ca_der }
            }
            1 => {
                let Some(reason) = r.u8() else {
                    return Ok(None);
                };
                let reason =
                    Reason::from_byte(reason as u8).ok_or(WireError::Reason(reason as u8))?;
                let Some(len) = r.u16() else {
                    return Ok(None);
                };
                if len > MAX_MESSAGE {
                    return Err(WireError::TooLong {
                        what: "the refusal message",
                        got: len,
                        max: MAX_MESSAGE,
                    });
                }
                let Some(message) = r.take(len) else {
                    return Ok(None);
                };
                let message =
                    String::from_utf8(message.to_vec()).map_err(|_| WireError::Message)?;
                Response::Refused { reason, message }
            }
            other => return Err(WireError::Status(other as u8)),
        };
        Ok(Some((response, r.at)))
    }
}

/// A cursor over the bytes received so far; `None` means "not here yet".
struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let bytes = self.buf.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(bytes)
    }

    fn u8(&mut self) -> Option<usize> {
        self.take(1).map(|b| usize::from(b[0]))
    }

    fn u16(&mut self) -> Option<usize> {
        self.take(2)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> Request {
        let mut key = vec![9u8; KEY_LEN];
        key[0] = 4;
        Request {
            public_key: key,
            name: "laptop-1.lan".to_owned(),
            proof: [3; 32],
        }
    }

    #[test]
    fn messages_decode_to_what_was_encoded_and_wait_for_missing_bytes() {
        let bytes = request().encode();
        assert_eq!(bytes.len(), 4 + 2 + KEY_LEN + 1 + 12 + 32);
        for cut in 0..bytes.len() {
            assert_eq!(Request::decode(&bytes[..cut]), Ok(None), "cut at {cut}");
        }
        assert_eq!(Request::decode(&bytes), Ok(Some((request(), bytes.len()))));
        for response in [
            Response::Granted {
                cert_der: vec![1; 300],
                ca_der: vec![2; 200],
            },
            Response::Refused {
                reason: Reason::BadProof,
                message: "no".to_owned(),
            },
        ] {
            let bytes = response.encode();
            for cut in 0..bytes.len() {
                assert_eq!(Response::decode(&bytes[..cut]), Ok(None), "cut at {cut}");
            }
            assert_eq!(Response::decode(&bytes), Ok(Some((response, bytes.len()))));
        }
    }

    #[test]
    fn hostile_requests_are_refused_before_any_allocation_they_ask_for() {
        let good = request().encode();
        assert_eq!(
            Request::decode(b"GET / HTTP/1.1\r\n"),
            Err(WireError::Magic)
        );
        let mut long_key = good.clone();
        long_key[4..6].copy_from_slice(&u16::MAX.to_be_bytes());
        assert!(matches!(
            Request::decode(&long_key),
            Err(WireError::Key { got: 65535, .. })
        ));
        let mut compressed = good.clone();
        compressed[6] = 2;
        assert!(matches!(
            Request::decode(&compressed),
            Err(WireError::Key { first: 2, .. })
        ));
        let mut long_name = good.clone();
        long_name[6 + KEY_LEN] = 200;
        assert!(matches!(
            Request::decode(&long_name),
            Err(WireError::TooLong { got: 200, .. })
        ));
        let mut bad_name = good.clone();
        bad_name[6 + KEY_LEN + 1] = b'/';
        assert_eq!(Request::decode(&bad_name), Err(WireError::Name));
        let mut huge = MAGIC.to_vec();
        huge.push(0);
        huge.extend_from_slice(&u16::MAX.to_be_bytes());
        assert!(matches!(
            Response::decode(&huge),
            Err(WireError::TooLong { got: 65535, .. })
        ));
    }
}
