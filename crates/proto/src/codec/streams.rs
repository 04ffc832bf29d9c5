//! The messages of a session's several streams on the wire (tags 31 and up, protocol 6):
//! joining a connection to a session. Whether a stream number is one the session takes is
//! [`crate::session::join`]'s business, not the codec's.

use bytes::{BufMut, BytesMut};

use super::tags::*;
use super::wire::Reader;
use crate::message::Message;
use crate::session::stream::SessionKey;
use crate::CodecError;

pub fn encode(message: &Message, out: &mut BytesMut) {
    match message {
        Message::Join {
            version,
            key,
            stream,
        } => {
            out.put_u8(JOIN);
            out.put_u32_le(*version);
            out.put_slice(key.as_bytes());
            out.put_u16_le(*stream);
        }
        Message::Joined { stream } => {
            out.put_u8(JOINED);
            out.put_u16_le(*stream);
        }
        other => unreachable!("{} is not a stream message", other.name()),
    }
}

pub fn decode(tag: u8, r: &mut Reader<'_>) -> Result<Message, CodecError> {
    Ok(match tag {
        JOIN => Message::Join {
            version: r.u32("version")?,
            key: SessionKey::new(r.array32("key")?),
            stream: r.u16("stream")?,
        },
        JOINED => Message::Joined {
            stream: r.u16("stream")?,
        },
        _ => unreachable!("tag {tag} is not a stream message"),
    })
}

#[cfg(test)]
#[path = "streams_tests.rs"]
mod tests;
