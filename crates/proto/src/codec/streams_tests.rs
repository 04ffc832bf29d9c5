//! Hostile and edge frames of protocol 6's stream messages (the round trips are in the
//! codec's property tests, with every other message).

use bytes::{BufMut, BytesMut};

use super::*;
use crate::codec::{decode, encode, CodecError};
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

/// A body: `tag` and then `fields`, each little-endian as the codec writes them.
fn body(tag: u8, fill: impl FnOnce(&mut BytesMut)) -> BytesMut {
    let mut body = BytesMut::new();
    body.put_u8(tag);
    fill(&mut body);
    frame(&body)
}

fn decoded(mut buf: BytesMut) -> Result<Option<Message>, CodecError> {
    decode(&mut buf, &Limits::default())
}

#[test]
fn a_wants_frame_asks_for_one_to_4096_files_that_are_there() {
    let limits = Limits::default();
    let wants = |count: u32, indices: u64| {
        body(WANTS, |b| {
            b.put_u32_le(count);
            for i in 0..indices {
                b.put_u64_le(i);
            }
        })
    };
    assert_eq!(
        decoded(wants(2, 2)),
        Ok(Some(Message::Wants {
            indices: vec![0, 1]
        }))
    );
    let max = limits.max_wants_per_frame as u32;
    assert!(matches!(
        decoded(wants(max, max.into())),
        Ok(Some(Message::Wants { indices })) if indices.len() == limits.max_wants_per_frame
    ));
    assert_eq!(
        decoded(wants(0, 0)),
        Err(CodecError::BadValue {
            message: "Wants",
            field: "count",
            value: 0
        })
    );
    for over in [max + 1, u32::MAX] {
        assert!(
            matches!(
                decoded(wants(over, 0)),
                Err(CodecError::OverLimit { message: "Wants", field: "count", value, .. }) if value == u64::from(over)
            ),
            "{over}"
        );
    }
    // More indices claimed than the frame holds: refused before allocating for them.
    assert_eq!(
        decoded(wants(100, 3)),
        Err(CodecError::Truncated {
            message: "Wants",
            field: "count"
        })
    );
    assert!(matches!(
        decoded(wants(1, 2)),
        Err(CodecError::TrailingBytes {
            message: "Wants",
            ..
        })
    ));
}

#[test]
fn a_files_frame_holds_one_to_1024_files_each_within_a_data_chunk() {
    let limits = Limits::default();
    let files = |count: u32, sizes: &[usize]| {
        body(FILES, |b| {
            b.put_u32_le(count);
            for (i, size) in sizes.iter().enumerate() {
                b.put_u64_le(i as u64);
                b.put_slice(&[i as u8; 32]);
                b.put_u32_le(*size as u32);
                b.put_bytes(0x61, *size);
            }
        })
    };
    match decoded(files(3, &[0, 5, limits.data_chunk])) {
        Ok(Some(Message::Files { files })) => {
            let sizes: Vec<usize> = files.iter().map(|f| f.bytes.len()).collect();
            assert_eq!(sizes, [0, 5, limits.data_chunk]);
            assert_eq!((files[1].index, files[1].hash), (1, [1; 32]));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        decoded(files(0, &[])),
        Err(CodecError::BadValue {
            message: "Files",
            field: "count",
            value: 0
        })
    );
    let max = limits.max_files_per_frame as u32;
    assert!(matches!(
        decoded(files(max + 1, &[])),
        Err(CodecError::OverLimit {
            message: "Files",
            field: "count",
            ..
        })
    ));
    // 1024 claimed, room for far fewer (each entry takes 44 bytes at least).
    assert_eq!(
        decoded(files(max, &[1; 10])),
        Err(CodecError::Truncated {
            message: "Files",
            field: "count"
        })
    );
    // One entry's bytes over a data chunk.
    assert!(matches!(
        decoded(files(2, &[1, limits.data_chunk + 1])),
        Err(CodecError::OverLimit {
            message: "Files",
            field: "bytes",
            ..
        })
    ));
    // An entry that claims more bytes than the frame has left.
    let mut short = BytesMut::new();
    short.put_u8(FILES);
    short.put_u32_le(1);
    short.put_u64_le(7);
    short.put_slice(&[0; 32]);
    short.put_u32_le(100);
    short.put_slice(&[0; 10]);
    assert!(matches!(
        decoded(frame(&short)),
        Err(CodecError::Truncated {
            message: "Files",
            field: "bytes"
        })
    ));
}

#[test]
fn a_files_frame_of_whole_data_chunks_is_bounded_by_the_frame() {
    // As many full chunks as fit a frame decode; the frame limit refuses one more before
    // it is buffered, whatever the count says.
    let limits = Limits::default();
    let per = MIN_FILE_ENTRY + limits.data_chunk;
    let fit = (limits.max_frame - 1 - 4) / per;
    assert!(fit >= 1);
    let mut b = BytesMut::new();
    b.put_u8(FILES);
    b.put_u32_le(fit as u32 + 1);
    for i in 0..=fit {
        b.put_u64_le(i as u64);
        b.put_slice(&[0; 32]);
        b.put_u32_le(limits.data_chunk as u32);
        b.put_bytes(0, limits.data_chunk);
    }
    assert!(matches!(
        decoded(frame(&b)),
        Err(CodecError::FrameTooLarge { .. })
    ));
}

#[test]
fn a_range_is_one_to_range_bytes_with_a_flag_that_is_a_flag() {
    let range = |tag: u8, len: u64, flag: u8| {
        body(tag, |b| {
            b.put_u64_le(3);
            b.put_u64_le(2 * RANGE);
            b.put_u64_le(len);
            b.put_u8(flag);
            b.put_slice(&[0xcc; 32]);
        })
    };
    assert_eq!(
        decoded(range(WANT_RANGE, RANGE, 1)),
        Ok(Some(Message::WantRange {
            index: 3,
            offset: 2 * RANGE,
            len: RANGE,
            have: true,
            cv: [0xcc; 32]
        }))
    );
    assert_eq!(
        decoded(range(RANGE_END, 1, 0)),
        Ok(Some(Message::RangeEnd {
            index: 3,
            offset: 2 * RANGE,
            len: 1,
            same: false,
            cv: [0xcc; 32]
        }))
    );
    for (tag, name, flag) in [
        (WANT_RANGE, "WantRange", "have"),
        (RANGE_END, "RangeEnd", "same"),
    ] {
        assert_eq!(
            decoded(range(tag, 0, 0)),
            Err(CodecError::BadValue {
                message: name,
                field: "len",
                value: 0
            })
        );
        assert_eq!(
            decoded(range(tag, RANGE + 1, 0)),
            Err(CodecError::OverLimit {
                message: name,
                field: "len",
                value: RANGE + 1,
                max: RANGE
            })
        );
        assert_eq!(
            decoded(range(tag, 5, 2)),
            Err(CodecError::BadValue {
                message: name,
                field: flag,
                value: 2
            })
        );
    }
}

#[test]
fn a_truncated_stream_gone_is_refused() {
    assert_eq!(
        decoded(body(STREAM_GONE, |b| b.put_u16_le(4))),
        Ok(Some(Message::StreamGone { stream: 4 }))
    );
    assert!(matches!(
        decoded(body(STREAM_GONE, |b| b.put_u8(4))),
        Err(CodecError::Truncated {
            message: "StreamGone",
            ..
        })
    ));
}
