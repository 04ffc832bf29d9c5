//! Generators of every message the codec carries, for the round-trip properties in
//! `codec/tests.rs`: any value they make must encode and decode to itself.

use bytes::Bytes;
use proptest::prelude::*;

use crate::codec::tags;
use crate::filter::{Filter, Rule, RuleKind};
use crate::message::*;
use crate::model::*;
use crate::session::stream::{SessionKey, RANGE};

pub(super) fn name() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        any::<u8>().prop_filter("no / or NUL", |b| *b != b'/' && *b != 0),
        1..40,
    )
    .prop_filter("not . or ..", |n| n != b"." && n != b"..")
}

pub(super) fn meta() -> impl Strategy<Value = Meta> {
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

pub(super) fn content() -> impl Strategy<Value = Content> {
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

pub(super) fn entry() -> impl Strategy<Value = Entry> {
    (name(), meta(), content()).prop_map(|(name, meta, content)| Entry {
        name,
        meta,
        content,
    })
}

pub(super) fn text() -> impl Strategy<Value = String> {
    "[ -~é\n]{0,80}"
}

pub(super) fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..max).prop_map(Bytes::from)
}

pub(super) fn message() -> impl Strategy<Value = Message> {
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
