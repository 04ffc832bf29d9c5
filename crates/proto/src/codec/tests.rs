use bytes::BytesMut;
use proptest::prelude::*;

use super::*;
use crate::model::*;

mod strategies;
use strategies::*;

#[test]
fn block_frames_over_their_bounds_are_refused() {
    let limits = Limits::default();
    let refused = |message: &Message| {
        let mut buf = BytesMut::new();
        encode(message, &mut buf);
        decode(&mut buf, &limits).unwrap_err()
    };
    let hashes = crate::session::block::SEGMENT_BLOCKS * crate::session::block::HASH_LEN;
    for message in [
        Message::BlockSums {
            offset: 0,
            hashes: Bytes::from(vec![0u8; hashes + 16]),
        },
        Message::BlockSums {
            offset: 0,
            hashes: Bytes::from(vec![0u8; 17]),
        },
        Message::BlockSums {
            offset: 0,
            hashes: Bytes::new(),
        },
        Message::BlockData {
            offset: 0,
            bytes: Bytes::from(vec![0u8; limits.data_chunk + 1]),
        },
        Message::BlockData {
            offset: 0,
            bytes: Bytes::new(),
        },
        Message::BlockZero {
            offset: 0,
            len: crate::session::block::SEGMENT + 1,
        },
        Message::BlockZero { offset: 0, len: 0 },
    ] {
        refused(&message);
    }
}

proptest! {
    #[test]
    fn encode_then_decode_is_identity(messages in proptest::collection::vec(message(), 1..8)) {
        let limits = Limits::default();
        let mut buf = BytesMut::new();
        for m in &messages {
            encode(m, &mut buf);
        }
        for m in &messages {
            let got = decode(&mut buf, &limits).unwrap().unwrap();
            prop_assert_eq!(&got, m);
        }
        prop_assert!(buf.is_empty());
        prop_assert_eq!(decode(&mut buf, &limits).unwrap(), None);
    }

    #[test]
    fn head_then_returned_data_is_the_whole_frame(m in message()) {
        let (mut whole, mut head) = (BytesMut::new(), BytesMut::new());
        encode(&m, &mut whole);
        let tail = encode_head(&m, &mut head);
        prop_assert_eq!(tail.is_some(), matches!(m, Message::Data { .. }));
        head.extend_from_slice(&tail.unwrap_or_default());
        prop_assert_eq!(head, whole);
    }

    #[test]
    fn every_prefix_asks_for_more(m in message()) {
        let limits = Limits::default();
        let mut full = BytesMut::new();
        encode(&m, &mut full);
        for cut in 0..full.len() {
            let mut part = BytesMut::from(&full[..cut]);
            prop_assert_eq!(decode(&mut part, &limits).unwrap(), None);
        }
    }

    #[test]
    fn garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let limits = Limits::default();
        let mut buf = BytesMut::from(&data[..]);
        while let Ok(Some(_)) = decode(&mut buf, &limits) {}
    }

    #[test]
    fn a_truncated_body_is_an_error(m in message()) {
        // Shrink the declared length by one: the body parses short and must fail cleanly.
        let limits = Limits::default();
        let mut full = BytesMut::new();
        encode(&m, &mut full);
        let len = u32::from_le_bytes([full[0], full[1], full[2], full[3]]);
        prop_assume!(len > 1);
        full[..4].copy_from_slice(&(len - 1).to_le_bytes());
        full.truncate(full.len() - 1);
        prop_assert!(decode(&mut full, &limits).is_err());
    }
}

/// A client must read the version of any server's Welcome to refuse it with exit 2, also
/// of a version whose Welcome carries other fields (4 has none, a later one may have
/// more): only its own version's layout is checked.
#[test]
fn a_welcome_of_another_version_decodes_to_its_version() {
    let limits = Limits::default();
    for (version, rest) in [(4u32, &[][..]), (5, &[0][..]), (7, &[1, 2, 3, 4, 5][..])] {
        let mut frame = BytesMut::new();
        frame.put_u32_le(5 + rest.len() as u32);
        frame.put_u8(tags::WELCOME);
        frame.put_u32_le(version);
        frame.extend_from_slice(rest);
        assert_eq!(
            decode(&mut frame, &limits).unwrap(),
            Some(Message::Welcome {
                version,
                space: None,
                cores: 0,
                streams_max: 1,
                key: None,
            })
        );
    }
    // Its own version's Welcome is checked like any frame: the space flag is a flag.
    let mut frame = BytesMut::new();
    frame.put_u32_le(6);
    frame.put_u8(tags::WELCOME);
    frame.put_u32_le(PROTOCOL_VERSION);
    frame.put_u8(2);
    assert!(decode(&mut frame, &limits).is_err());
}

#[test]
fn oversize_frame_is_refused_before_it_arrives() {
    let limits = Limits::default();
    let mut buf = BytesMut::new();
    buf.put_u32_le(limits.max_frame as u32 + 1);
    assert!(matches!(
        decode(&mut buf, &limits),
        Err(CodecError::FrameTooLarge { .. })
    ));
}

#[test]
fn hostile_names_in_a_listing_are_refused() {
    let limits = Limits::default();
    for bad in [&b".."[..], b".", b"", b"a/b", b"a\0b"] {
        let m = Message::List {
            dir: Vec::new(),
            first: 0,
            entries: vec![Entry {
                name: bad.to_vec(),
                meta: Meta::default(),
                content: Content::Dir,
            }],
            dir_done: true,
            dir_complete: true,
        };
        let mut buf = BytesMut::new();
        encode(&m, &mut buf);
        assert!(
            matches!(decode(&mut buf, &limits), Err(CodecError::BadPath { .. })),
            "{bad:?} was accepted"
        );
    }
    for bad_dir in [&b"/etc"[..], b"../x", b"a/../b", b"a//b"] {
        let m = Message::List {
            dir: bad_dir.to_vec(),
            first: 0,
            entries: Vec::new(),
            dir_done: true,
            dir_complete: true,
        };
        let mut buf = BytesMut::new();
        encode(&m, &mut buf);
        assert!(
            decode(&mut buf, &limits).is_err(),
            "{bad_dir:?} was accepted"
        );
    }
}

#[test]
fn a_huge_entry_count_is_refused_without_allocating() {
    let limits = Limits::default();
    let mut body = BytesMut::new();
    body.put_u8(tags::LIST);
    wire::put_bytes(&mut body, b"");
    body.put_u64_le(0);
    body.put_u8(3);
    body.put_u32_le(u32::MAX);
    let mut buf = BytesMut::new();
    buf.put_u32_le(body.len() as u32);
    buf.extend_from_slice(&body);
    assert!(matches!(
        decode(&mut buf, &limits),
        Err(CodecError::OverLimit { .. })
    ));
}

proptest! {
    #[test]
    fn peeking_a_compressed_frame_tells_its_sizes_as_sent_and_inflated(m in message()) {
        let (mut out, mut scratch) = (BytesMut::new(), BytesMut::new());
        let done = encode_compressed(&m, 3, &mut out, &mut scratch);
        let peeked = peek_compressed(&out);
        if done.sent < done.raw {
            prop_assert_eq!(peeked, Some(done));
            prop_assert_eq!(peek_compressed(&out[..out.len() - 1]), None);
        } else {
            prop_assert_eq!(peeked, None);
        }
    }

    #[test]
    fn compressed_frames_decode_to_the_same_messages(m in message(), level in 1i32..4) {
        let limits = Limits::default();
        let (mut buf, mut scratch) = (BytesMut::new(), BytesMut::new());
        encode_compressed(&m, level, &mut buf, &mut scratch);
        prop_assert_eq!(decode(&mut buf, &limits).unwrap().unwrap(), m);
        prop_assert!(buf.is_empty());
    }
}

#[test]
fn compressible_data_is_compressed_and_random_data_is_not() {
    let limits = Limits::default();
    let text = Message::Data {
        index: 1,
        offset: 0,
        bytes: Bytes::from("hello compressible world\n".repeat(4000)),
    };
    let (mut buf, mut scratch) = (BytesMut::new(), BytesMut::new());
    let c = encode_compressed(&text, 3, &mut buf, &mut scratch);
    assert!(c.sent * 10 < c.raw, "{c:?}");
    assert_eq!(decode(&mut buf, &limits).unwrap().unwrap(), text);

    let mut noise = vec![0u8; 100_000];
    let mut x = 0x1234_5678_9abc_def0u64;
    for b in noise.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let random = Message::Data {
        index: 1,
        offset: 0,
        bytes: Bytes::from(noise),
    };
    let c = encode_compressed(&random, 3, &mut buf, &mut scratch);
    assert_eq!(
        c,
        Compressed::default(),
        "the entropy probe let random data through"
    );
}

#[test]
fn a_decompression_bomb_is_refused() {
    let limits = Limits::default();
    // Claims a raw length over the frame limit.
    let mut buf = BytesMut::new();
    let packed = zstd::bulk::compress(&vec![0u8; 1 << 20], 3).unwrap();
    buf.put_u32_le((5 + packed.len()) as u32);
    buf.put_u8(tags::COMPRESSED);
    buf.put_u32_le((limits.max_frame + 100) as u32);
    buf.extend_from_slice(&packed);
    assert!(decode(&mut buf, &limits).is_err());
    // Claims a small raw length but inflates to more.
    let mut buf = BytesMut::new();
    buf.put_u32_le((5 + packed.len()) as u32);
    buf.put_u8(tags::COMPRESSED);
    buf.put_u32_le(1000);
    buf.extend_from_slice(&packed);
    assert!(decode(&mut buf, &limits).is_err());
}

#[test]
fn text_longer_than_a_receiver_takes_goes_out_cut_not_refused() {
    let limits = Limits::default();
    // A per-file error naming a path near PATH_MAX, in a script of 2-byte characters so
    // the cut must find a character boundary.
    let long = format!("{}: cannot write", "é".repeat(limits.max_path));
    let mut out = BytesMut::new();
    encode(
        &Message::FileError {
            path: b"p".to_vec(),
            message: long.clone(),
        },
        &mut out,
    );
    match decode(&mut out, &limits) {
        Ok(Some(Message::FileError { message, .. })) => {
            assert!(message.len() <= limits.max_message, "{}", message.len());
            assert!(message.ends_with('…'), "the cut is marked");
            assert!(long.starts_with(message.trim_end_matches('…')));
        }
        other => panic!("{other:?}"),
    }
    // Text that fits goes out as it is.
    let mut out = BytesMut::new();
    let short = Message::Error {
        class: ErrorClass::FileIo,
        message: "no space".into(),
    };
    encode(&short, &mut out);
    assert_eq!(decode(&mut out, &limits).unwrap(), Some(short));
}
