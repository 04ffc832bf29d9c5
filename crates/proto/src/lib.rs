//! Ferry's wire protocol, without I/O.
//!
//! Owns: the file model both sides agree on ([`model`]), checked relative paths
//! ([`path`]), the messages of a session ([`message`]), their framing ([`codec`]) and
//! the bounds on everything a peer sends ([`limits`]).
//!
//! Does not own: sockets, files, clocks or threads. Bytes come in, messages come out,
//! and the reverse; the engine drives it.
//!
//! ```text
//! bytes from TLS ──▶ codec::decode ──▶ Message ──▶ engine
//! engine ──▶ Message ──▶ codec::encode ──▶ bytes to TLS
//! ```

pub mod codec;
pub mod filter;
pub mod limits;
pub mod message;
pub mod model;
pub mod path;
pub mod session;

pub use codec::{
    decode, encode, encode_compressed, encode_head, peek_compressed, whole_frame_buffered,
    CodecError, Compressed,
};
pub use filter::{Filter, FilterError, Rule, RuleKind};
pub use limits::Limits;
pub use message::*;
pub use model::*;
pub use path::{check_name, escape, peer_text, PathError, RelPath};
pub use session::join::{JoinGate, JoinRefusal};
pub use session::stream::{SessionKey, StreamId, RANGE};
pub use session::SessionError;
