use bytes::BytesMut;
use proptest::prelude::*;

use super::*;
use crate::filter::{Filter, Rule, RuleKind};
use crate::model::*;
use crate::session::stream::{SessionKey, RANGE};

fn name() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        any::<u8>().prop_filter("no / or NUL", |b| *b != b'/' && *b != 0),
        1..40,
    )
    .prop_filter("not . or ..", |n| n != b"." && n != b"..")
}

fn meta() -> impl Strategy<Value = Meta> {
    (
        0u32..=0o7777,
        any::<u32>(),
        any::<u32>(),
        any::<i64>(),
        0u32..1_000_000_000,
        proptest::collection::btree_map(
            name(),
            proptest::collection::vec(any::<u8>(), 0..64),
            0..4,
        ),
    )
        .prop_map(|(mode, uid, gid, sec, nsec, xattrs)| Meta {
            mode,
            uid,
            gid,
            mtime: Timestamp { sec, nsec },
            xattrs: xattrs
                .into_iter()
                .map(|(name, value)| Xattr { name, value })
                .collect(),
        })
}

fn content() -> impl Strategy<Value = Content> {
    prop_oneof![
        (any::<u64>(), proptest::option::of(any::<[u8; 32]>()))
            .prop_map(|(size, checksum)| Content::File { size, checksum }),
        Just(Content::Dir),
        name().prop_map(|target| Content::Symlink { target }),
        (any::<u64>(), name()).prop_map(|(leader, path)| Content::HardLink { leader, path }),
        (0u8..4, any::<u64>()).prop_map(|(k, rdev)| Content::Special {
            kind: [
                SpecialKind::Fifo,
                SpecialKind::Socket,
                SpecialKind::CharDevice,
                SpecialKind::BlockDevice
            ][k as usize],
            rdev
        }),
    ]
}

fn entry() -> impl Strategy<Value = Entry> {
    (name(), meta(), content()).prop_map(|(name, meta, content)| Entry {
        name,
        meta,
        content,
    })
}

fn text() -> impl Strategy<Value = String> {
    "[ -~é\n]{0,80}"
}

fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..max).prop_map(Bytes::from)
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (
            any::<u32>(),
            name(),
            any::<[bool; 13]>(),
            proptest::collection::vec((any::<bool>(), name()), 0..4)
        )
            .prop_map(|(version, volume, o, rules)| {
                Message::Hello {
                    version,
                    volume,
                    options: SessionOptions {
                        delete: o[0],
                        dry_run: o[1],
                        checksum: o[2],
                        probe: o[3],
                        fsync: o[4],
                        itemize: o[5],
                        delete_excluded: o[6],
                        compress: o[7],
                        pull: o[8],
                        block: o[9],
                        no_space_check: o[10],
                        inplace: o[11],
                        streams: o[12],
                    },
                    filter: Filter::new(
                        rules
                            .into_iter()
                            .map(|(include, p)| {
                                let kind = if include {
                                    RuleKind::Include
                                } else {
                                    RuleKind::Exclude
                                };
                                Rule::new(kind, &p).unwrap()
                            })
                            .collect(),
                    ),
                }
            }),
        (
            any::<bool>(),
            any::<[u64; 4]>(),
            any::<u32>(),
            any::<u16>(),
            any::<[u8; 32]>()
        )
            .prop_map(|(known, f, cores, streams_max, key)| Message::Welcome {
                version: PROTOCOL_VERSION,
                space: known.then_some(VolumeSpace {
                    free_bytes: f[0],
                    reserved_bytes: f[1],
                    free_inodes: f[2],
                    block_size: f[3],
                }),
                cores,
                streams_max,
                key: (streams_max > 1).then(|| SessionKey::new(key)),
            }),
        any::<u32>()
            .prop_filter("another version", |v| *v != PROTOCOL_VERSION)
            .prop_map(|version| Message::Welcome {
                version,
                space: None,
                cores: 0,
                streams_max: 1,
                key: None,
            }),
        (0u8..9, text()).prop_map(|(r, message)| Message::Refused {
            reason: tags::refuse_from(r + 1).unwrap(),
            message
        }),
        (any::<u32>(), any::<[u8; 32]>(), any::<u16>()).prop_map(|(version, key, stream)| {
            Message::Join {
                version,
                key: SessionKey::new(key),
                stream,
            }
        }),
        any::<u16>().prop_map(|stream| Message::Joined { stream }),
        (
            any::<u64>(),
            any::<u64>(),
            1..=RANGE,
            any::<bool>(),
            any::<[u8; 32]>()
        )
            .prop_map(|(index, offset, len, have, cv)| Message::WantRange {
                index,
                offset,
                len,
                have,
                cv
            }),
        (
            any::<u64>(),
            any::<u64>(),
            1..=RANGE,
            any::<bool>(),
            any::<[u8; 32]>()
        )
            .prop_map(|(index, offset, len, same, cv)| Message::RangeEnd {
                index,
                offset,
                len,
                same,
                cv
            }),
        proptest::collection::vec(any::<u64>(), 1..40)
            .prop_map(|indices| Message::Wants { indices }),
        proptest::collection::vec((any::<u64>(), any::<[u8; 32]>(), bytes(300)), 1..6).prop_map(
            |files| Message::Files {
                files: files
                    .into_iter()
                    .map(|(index, hash, bytes)| SmallFile { index, hash, bytes })
                    .collect()
            }
        ),
        any::<u16>().prop_map(|stream| Message::StreamGone { stream }),
        meta().prop_map(|meta| Message::Root { meta }),
        (
            proptest::collection::vec(name(), 0..4),
            any::<u64>(),
            proptest::collection::vec(entry(), 0..6),
            any::<bool>(),
            any::<bool>()
        )
            .prop_map(
                |(dir, first, entries, dir_done, dir_complete)| Message::List {
                    dir: dir.join(&b'/'),
                    first,
                    entries,
                    dir_done,
                    dir_complete
                }
            ),
        (any::<u64>(), any::<u64>()).prop_map(|(entries, read_errors)| Message::ListEnd {
            entries,
            read_errors
        }),
        any::<u64>().prop_map(|through| Message::Ack { through }),
        (any::<u64>(), any::<u64>(), any::<[u8; 32]>()).prop_map(|(index, offset, hash)| {
            Message::Resume {
                index,
                offset,
                hash,
            }
        }),
        (any::<u64>(), any::<bool>()).prop_map(|(index, delta)| Message::Want { index, delta }),
        (any::<u64>(), bytes(300), any::<bool>())
            .prop_map(|(index, bytes, last)| Message::Signature { index, bytes, last }),
        (any::<u64>(), any::<u64>(), bytes(300)).prop_map(|(index, offset, bytes)| Message::Data {
            index,
            offset,
            bytes
        }),
        (any::<u64>(), any::<u64>(), any::<u64>()).prop_map(|(index, offset, len)| Message::Hole {
            index,
            offset,
            len
        }),
        (any::<u64>(), any::<u64>(), 0u64..1 << 20, bytes(300)).prop_map(
            |(index, offset, len, bytes)| Message::Delta {
                index,
                offset,
                len,
                bytes
            }
        ),
        (any::<u64>(), any::<u64>(), any::<[u8; 32]>())
            .prop_map(|(index, size, hash)| Message::FileEnd { index, size, hash }),
        (any::<u64>(), 0u8..3, text()).prop_map(|(index, r, message)| Message::FileFailed {
            index,
            reason: tags::failure_from(r + 1).unwrap(),
            message
        }),
        (name(), 0u8..4, 1u8..9).prop_map(|(path, k, e)| Message::Change {
            path,
            kind: tags::change_from(k + 1).unwrap(),
            entry: tags::entry_from(e).unwrap(),
        }),
        (name(), text()).prop_map(|(path, message)| Message::FileError { path, message }),
        (name(), any::<bool>(), any::<u32>(), any::<bool>()).prop_map(
            |(path, owner, xattrs, special)| Message::NotApplied {
                path,
                owner,
                xattrs,
                special
            }
        ),
        (any::<[u64; 16]>(), any::<bool>()).prop_map(|(f, delete_skipped)| Message::Done {
            stats: TargetStats {
                files_transferred: f[0],
                bytes_written: f[1],
                entries_created: f[2],
                meta_updated: f[3],
                deleted: f[4],
                delete_skipped,
                resent: f[5],
                file_errors: f[6],
                not_applied_owner: f[7],
                not_applied_xattrs: f[8],
                not_applied_special: f[9],
                space_free: f[10],
                space_reserved: f[11],
                inodes_free: f[12],
                space_needed: f[13],
                inodes_needed: f[14],
                files_inplace: f[15],
            }
        }),
        any::<[u64; 10]>().prop_map(|f| Message::SourceDone {
            stats: super::stats::source_stats_from(f)
        }),
        (0u8..3, text()).prop_map(|(c, message)| Message::Error {
            class: tags::class_from(c + 1).unwrap(),
            message
        }),
        Just(Message::Heartbeat),
        any::<u64>().prop_map(|size| Message::BlockBegin { size }),
        (any::<u64>(), 1usize..=256).prop_map(|(offset, n)| Message::BlockSums {
            offset,
            hashes: Bytes::from(vec![7u8; n * crate::session::block::HASH_LEN]),
        }),
        (
            any::<u64>(),
            bytes(4096).prop_filter("not empty", |b| !b.is_empty())
        )
            .prop_map(|(offset, bytes)| Message::BlockData { offset, bytes }),
        (any::<u64>(), 1..=crate::session::block::SEGMENT)
            .prop_map(|(offset, len)| Message::BlockZero { offset, len }),
        any::<u64>().prop_map(|offset| Message::BlockSegmentEnd { offset }),
        (any::<u64>(), any::<[u8; 32]>()).prop_map(|(size, hash)| Message::BlockEnd { size, hash }),
        any::<[u64; 4]>().prop_map(|f| Message::BlockDone {
            stats: BlockStats {
                device_size: f[0],
                bytes_written: f[1],
                bytes_zeroed: f[2],
                resent_rounds: f[3],
            }
        }),
    ]
}

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
