//! Hostile and edge frames of protocol 6's stream messages (the round trips are in the
//! codec's property tests, with every other message).

use bytes::{BufMut, BytesMut};

use super::super::{decode, encode, CodecError};
use super::*;
use crate::limits::Limits;
use crate::message::{SessionOptions, PROTOCOL_VERSION};

fn welcome(streams_max: u16, key: Option<SessionKey>) -> Message {
    Message::Welcome {
        version: PROTOCOL_VERSION,
        space: None,
        cores: 4,
        streams_max,
        key,
    }
}

fn round_trip(message: &Message) -> Result<Option<Message>, CodecError> {
    let mut buf = BytesMut::new();
    encode(message, &mut buf);
    decode(&mut buf, &Limits::default())
}

/// A frame with `body` after its length prefix.
fn frame(body: &[u8]) -> BytesMut {
    let mut buf = BytesMut::new();
    buf.put_u32_le(body.len() as u32);
    buf.extend_from_slice(body);
    buf
}

#[test]
fn a_welcome_carries_a_key_exactly_when_it_offers_several_streams() {
    let key = SessionKey::new([9; 32]);
    // Good: no key for one stream, a key for more.
    assert_eq!(round_trip(&welcome(1, None)), Ok(Some(welcome(1, None))));
    let several = welcome(8, Some(key.clone()));
    assert_eq!(round_trip(&several), Ok(Some(several.clone())));
    // A key with streams_max 1 (or 0) is bytes the frame must not have.
    for streams_max in [0, 1] {
        assert!(
            matches!(
                round_trip(&welcome(streams_max, Some(key.clone()))),
                Err(CodecError::TrailingBytes {
                    message: "Welcome",
                    extra: 32
                })
            ),
            "a key with streams_max {streams_max} was accepted"
        );
    }
    // No key with streams_max 2: the frame ends where the key should be.
    assert_eq!(
        round_trip(&welcome(2, None)),
        Err(CodecError::Truncated {
            message: "Welcome",
            field: "key"
        })
    );
}

/// The codec takes any count: the client refuses 0 and more than `max_streams` with a
/// message that says so (exit 12), which a codec error could not.
#[test]
fn a_welcome_with_zero_or_too_many_streams_decodes() {
    let limits = Limits::default();
    assert_eq!(round_trip(&welcome(0, None)), Ok(Some(welcome(0, None))));
    let over = welcome(limits.max_streams + 1, Some(SessionKey::new([1; 32])));
    assert_eq!(round_trip(&over), Ok(Some(over.clone())));
}

#[test]
fn a_truncated_or_padded_join_is_refused() {
    let mut body = vec![JOIN];
    body.extend_from_slice(&PROTOCOL_VERSION.to_le_bytes());
    body.extend_from_slice(&[7; 32]);
    body.extend_from_slice(&3u16.to_le_bytes());
    assert_eq!(
        decode(&mut frame(&body), &Limits::default()),
        Ok(Some(Message::Join {
            version: PROTOCOL_VERSION,
            key: SessionKey::new([7; 32]),
            stream: 3
        }))
    );
    for cut in 1..body.len() {
        let expected_field = match cut - 1 {
            0..4 => "version",
            4..36 => "key",
            _ => "stream",
        };
        assert_eq!(
            decode(&mut frame(&body[..cut]), &Limits::default()),
            Err(CodecError::Truncated {
                message: "Join",
                field: expected_field
            }),
            "a Join cut to {cut} bytes"
        );
    }
    let mut padded = body.clone();
    padded.push(0);
    assert!(matches!(
        decode(&mut frame(&padded), &Limits::default()),
        Err(CodecError::TrailingBytes {
            message: "Join",
            ..
        })
    ));
    assert!(matches!(
        decode(&mut frame(&[JOINED, 1]), &Limits::default()),
        Err(CodecError::Truncated {
            message: "Joined",
            ..
        })
    ));
}

#[test]
fn the_streams_option_is_bit_12_and_bit_13_is_unknown() {
    let hello = |flags: u32| {
        let mut body = vec![HELLO];
        body.extend_from_slice(&PROTOCOL_VERSION.to_le_bytes());
        body.extend_from_slice(&1u32.to_le_bytes());
        body.push(b'v');
        body.extend_from_slice(&flags.to_le_bytes());
        body.extend_from_slice(&0u32.to_le_bytes());
        decode(&mut frame(&body), &Limits::default())
    };
    match hello(4096) {
        Ok(Some(Message::Hello { options, .. })) => assert_eq!(
            options,
            SessionOptions {
                streams: true,
                ..SessionOptions::default()
            }
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(hello(8192), Err(CodecError::UnknownOptions { bits: 8192 }));
}

#[test]
fn a_key_in_a_message_does_not_show_in_its_debug() {
    let key = SessionKey::new([0x5a; 32]);
    for message in [
        welcome(4, Some(key.clone())),
        Message::Join {
            version: PROTOCOL_VERSION,
            key,
            stream: 1,
        },
    ] {
        let shown = format!("{message:?}");
        assert!(shown.contains("SessionKey(..)"), "{shown}");
        assert!(
            !shown.contains("90"),
            "the key's bytes (90 = 0x5a): {shown}"
        );
    }
}
