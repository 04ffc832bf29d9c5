//! The names a session with several streams (protocol 6) gives its parts: [`StreamId`],
//! one TLS connection of a session, [`SessionKey`], the secret a joining connection
//! presents, and [`RANGE`], the piece a large file is asked in. Both cores and the engine
//! use them; they hold no state.
//!
//! Must not import: anything that does I/O or makes randomness (the engine makes a key and
//! hands it in as a value).

use std::fmt;

use super::SessionError;
use crate::message::Message;

/// The size of a range of a large file (`WantRange`, `RangeEnd`): 8 MiB, a power of two
/// times BLAKE3's 1 KiB chunk, so every range but a file's last is a whole subtree of
/// BLAKE3's tree and the file's hash can be put together from the ranges' chaining values.
/// A protocol constant: both sides must agree on it.
pub const RANGE: u64 = 8 * 1024 * 1024;

/// The smallest file a target may ask for in ranges: four ranges. Smaller ones are asked
/// whole (a protocol rule the source checks).
pub const MIN_RANGED: u64 = 4 * RANGE;

/// One connection of a session, as the session numbers them: stream 0 is the connection
/// that said `Hello` (the control stream), streams `1..streams_max` joined it with `Join`.
/// A value of this type names a stream the session has accepted; a stream number from the
/// wire is a plain `u16` until a [`JoinGate`](super::join::JoinGate) accepted it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId(pub u16);

impl StreamId {
    /// The connection that opened the session (`Hello`): listing, acknowledgements,
    /// reports and the end of the session travel only on it.
    pub const CONTROL: StreamId = StreamId(0);

    pub fn is_control(self) -> bool {
        self == StreamId::CONTROL
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "stream {}", self.0)
    }
}

/// The secret that lets a connection join a running session (`Welcome.key`, `Join.key`):
/// 32 bytes from the OS random source at the server, sent only inside mutually
/// authenticated TLS. It never reaches output: `Debug` shows `SessionKey(..)`, and there is
/// no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionKey([u8; 32]);

impl SessionKey {
    pub const LEN: usize = 32;

    pub fn new(bytes: [u8; 32]) -> SessionKey {
        SessionKey(bytes)
    }

    /// The key's bytes, for the codec and for hashing it into a registry key.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionKey(..)")
    }
}

/// Whether `message` is one of the frames that spread a session's work over streams
/// (`Wants`, `Files`, `WantRange`, `RangeEnd`, `StreamGone`).
pub fn is_multi_stream_frame(message: &Message) -> bool {
    matches!(
        message,
        Message::Wants { .. }
            | Message::Files { .. }
            | Message::WantRange { .. }
            | Message::RangeEnd { .. }
            | Message::StreamGone { .. }
    )
}

/// How a core refuses a multi-stream frame ([`is_multi_stream_frame`]) from `peer` ("the
/// source", "the target") in a session without the `streams` option: it runs over one
/// stream and asks for files one at a time.
pub(crate) fn not_in_this_session(message: &Message, peer: &str) -> SessionError {
    SessionError::protocol(format!(
        "{} is not part of this session: it runs over one stream (its Hello did not ask \
         for streams) and asks for files one at a time, and {peer} sent a frame that only a \
         session over several streams may carry",
        message.name()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_never_shows_its_bytes() {
        let key = SessionKey::new([0xab; 32]);
        let shown = format!("{key:?} {:?}", Some(key.clone()));
        assert!(!shown.to_lowercase().contains("ab"), "{shown}");
        assert!(!shown.contains("171"), "{shown}");
        assert_eq!(key.as_bytes(), &[0xab; 32]);
    }

    #[test]
    fn stream_zero_is_the_control_stream() {
        assert!(StreamId(0).is_control());
        assert!(!StreamId(1).is_control());
        assert_eq!(StreamId(3).to_string(), "stream 3");
    }
}
