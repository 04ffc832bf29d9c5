//! The block session's cores (`session::block`): played against by hand with hostile
//! frames, and against each other over in-memory devices.

use bytes::Bytes;
use ferry_proto::session::block::{
    BlockError, BlockSource, BlockTarget, SourceWork, TargetWork, BLOCK, HASH_LEN, SEGMENT, WINDOW,
};
use ferry_proto::{BlockStats, Message, SessionError};
use proptest::prelude::*;

/// A stand-in block hash (the cores never look inside one): two multiply-xor lanes over
/// 8-byte words, cheap enough for debug builds.
fn hash(block: &[u8]) -> [u8; HASH_LEN] {
    let mut a: u64 = 0xcbf29ce484222325;
    let mut b: u64 = 0x84222325cbf29ce4;
    let mut words = block.chunks_exact(8);
    for word in &mut words {
        let w = u64::from_le_bytes(word.try_into().unwrap());
        a = (a ^ w).wrapping_mul(0x100000001b3).rotate_left(29);
        b = (b ^ w).wrapping_mul(0x9e3779b97f4a7c15).rotate_left(17);
    }
    for &byte in words.remainder() {
        a = (a ^ u64::from(byte)).wrapping_mul(0x100000001b3);
        b = (b ^ u64::from(byte)).wrapping_mul(0x9e3779b97f4a7c15);
    }
    let mut out = [0u8; HASH_LEN];
    out[..8].copy_from_slice(&a.to_le_bytes());
    out[8..].copy_from_slice(&(b ^ block.len() as u64).to_le_bytes());
    out
}

fn sums(content: &[u8], offset: u64, len: u64) -> Bytes {
    let range = &content[offset as usize..(offset + len) as usize];
    range
        .chunks(BLOCK as usize)
        .flat_map(hash)
        .collect::<Vec<u8>>()
        .into()
}

fn protocol(result: Result<(), BlockError>) -> String {
    match result {
        Err(BlockError::Session(SessionError::Protocol(message))) => message,
        other => panic!("expected a protocol error, got {other:?}"),
    }
}

/// A target of `device` bytes that took `BlockBegin{size}` and sent the first segment's
/// hashes (of zeros).
fn target_with_sums(device: u64, size: u64) -> BlockTarget {
    let mut target = BlockTarget::new(device);
    target.handle_message(Message::BlockBegin { size }).unwrap();
    let (offset, len) = target.wants_sums().unwrap();
    target.handle_sums(offset, sums(&vec![0; len as usize], 0, len));
    target
}

#[test]
fn a_source_larger_than_the_device_is_refused_before_any_work() {
    let mut target = BlockTarget::new(SEGMENT);
    let refused = target.handle_message(Message::BlockBegin { size: SEGMENT + 1 });
    assert_eq!(
        refused,
        Err(BlockError::TooSmall {
            source_size: SEGMENT + 1,
            target: SEGMENT
        })
    );
    let message = refused.unwrap_err().to_string();
    assert!(
        message.contains(&SEGMENT.to_string()) && message.contains(&(SEGMENT + 1).to_string()),
        "{message}"
    );
    assert_eq!(target.poll_work(), None);
    assert_eq!(target.wants_sums(), None);
}

#[test]
fn an_image_takes_the_source_size_first() {
    let mut target = BlockTarget::image(10);
    target
        .handle_message(Message::BlockBegin { size: 3 * SEGMENT })
        .unwrap();
    assert_eq!(
        target.poll_work(),
        Some(TargetWork::Resize { size: 3 * SEGMENT })
    );
    assert_eq!(target.wants_sums(), Some((0, SEGMENT)));
}

#[test]
fn writes_outside_what_the_target_asked_for_are_refused() {
    let size = 2 * SEGMENT + 100;
    let data = |offset, len: usize| Message::BlockData {
        offset,
        bytes: Bytes::from(vec![1u8; len]),
    };
    // Nothing asked yet.
    let mut target = BlockTarget::new(size);
    target.handle_message(Message::BlockBegin { size }).unwrap();
    assert!(protocol(target.handle_message(data(0, 4096))).contains("no segment"));

    for (what, message) in [
        ("unaligned", data(100, 4096)),
        ("past the segment", data(SEGMENT - 4096, 8192)),
        ("the next segment", data(SEGMENT, 4096)),
        ("a short block mid-device", data(0, 100)),
        (
            "an overflowing zero run",
            Message::BlockZero {
                offset: u64::MAX - 4095,
                len: 8192,
            },
        ),
        (
            "far past the device",
            Message::BlockZero {
                offset: 1 << 50,
                len: 4096,
            },
        ),
    ] {
        let mut target = target_with_sums(size, size);
        protocol(target.handle_message(message));
        assert_eq!(target.poll_work(), None, "{what} made work");
    }

    // The same range twice, or going back, within one segment.
    let mut target = target_with_sums(size, size);
    target.handle_message(data(8192, 4096)).unwrap();
    assert!(matches!(
        target.poll_work(),
        Some(TargetWork::Write { offset: 8192, .. })
    ));
    protocol(target.handle_message(data(8192, 4096)));
    let mut target = target_with_sums(size, size);
    target.handle_message(data(8192, 4096)).unwrap();
    protocol(target.handle_message(Message::BlockZero {
        offset: 0,
        len: 4096,
    }));
}

#[test]
fn only_the_last_block_of_the_content_may_be_short_and_nothing_lands_past_it() {
    let size = SEGMENT / 2 + 100; // device larger: its tail must stay out of reach
    let mut target = target_with_sums(4 * SEGMENT, size);
    let last = size - 100;
    target
        .handle_message(Message::BlockData {
            offset: last,
            bytes: Bytes::from(vec![7u8; 100]),
        })
        .unwrap();
    let mut target = target_with_sums(4 * SEGMENT, size);
    protocol(target.handle_message(Message::BlockData {
        offset: last,
        bytes: Bytes::from(vec![7u8; 4096]),
    }));
}

#[test]
fn segment_ends_and_the_end_come_in_order_and_only_when_due() {
    let size = 3 * SEGMENT;
    let mut target = target_with_sums(size, size);
    let (offset, len) = target.wants_sums().unwrap();
    assert_eq!(offset, SEGMENT);
    target.handle_sums(offset, sums(&vec![0; size as usize], offset, len));
    protocol(target.handle_message(Message::BlockSegmentEnd { offset: SEGMENT }));
    let mut target = target_with_sums(size, size);
    target
        .handle_message(Message::BlockSegmentEnd { offset: 0 })
        .unwrap();
    assert!(protocol(target.handle_message(Message::BlockEnd {
        size,
        hash: [0; 32]
    }))
    .contains("before it answered every segment"));
    let mut target = target_with_sums(SEGMENT, SEGMENT);
    target
        .handle_message(Message::BlockSegmentEnd { offset: 0 })
        .unwrap();
    protocol(target.handle_message(Message::BlockEnd {
        size: SEGMENT - 1,
        hash: [0; 32],
    }));
}

#[test]
fn the_target_keeps_at_most_a_window_of_segments_unanswered() {
    let size = (WINDOW as u64 + 4) * SEGMENT;
    let zeros = vec![0u8; size as usize];
    let mut target = BlockTarget::new(size);
    target.handle_message(Message::BlockBegin { size }).unwrap();
    for _ in 0..WINDOW {
        let (offset, len) = target.wants_sums().unwrap();
        target.handle_sums(offset, sums(&zeros, offset, len));
    }
    assert_eq!(target.wants_sums(), None);
    target
        .handle_message(Message::BlockSegmentEnd { offset: 0 })
        .unwrap();
    assert_eq!(
        target.wants_sums(),
        Some((WINDOW as u64 * SEGMENT, SEGMENT))
    );
}

#[test]
fn content_that_does_not_verify_gets_one_more_round_then_fails() {
    let mut target = target_with_sums(SEGMENT, SEGMENT);
    target
        .handle_message(Message::BlockSegmentEnd { offset: 0 })
        .unwrap();
    target
        .handle_message(Message::BlockEnd {
            size: SEGMENT,
            hash: [9; 32],
        })
        .unwrap();
    assert!(matches!(
        target.poll_work(),
        Some(TargetWork::Verify { .. })
    ));
    target.handle_verified(false).unwrap();
    assert_eq!(target.wants_sums(), Some((0, SEGMENT)));
    target.handle_sums(0, sums(&vec![0; SEGMENT as usize], 0, SEGMENT));
    target
        .handle_message(Message::BlockSegmentEnd { offset: 0 })
        .unwrap();
    target
        .handle_message(Message::BlockEnd {
            size: SEGMENT,
            hash: [9; 32],
        })
        .unwrap();
    assert!(matches!(
        target.poll_work(),
        Some(TargetWork::Verify { .. })
    ));
    assert_eq!(
        target.handle_verified(false),
        Err(BlockError::NotVerified { rounds: 2 })
    );
}

fn source_error(source: &mut BlockSource, message: Message) -> String {
    match source.handle_message(message) {
        Err(SessionError::Protocol(message)) => message,
        other => panic!("expected a protocol error, got {other:?}"),
    }
}

#[test]
fn the_source_answers_only_segments_in_order_with_one_hash_per_block() {
    let size = 2 * SEGMENT + 10;
    let good = |offset| Message::BlockSums {
        offset,
        hashes: Bytes::from(vec![0u8; (SEGMENT / BLOCK) as usize * HASH_LEN]),
    };
    let mut source = BlockSource::new(size);
    assert_eq!(source.poll_transmit(), Some(Message::BlockBegin { size }));
    source_error(&mut source, good(SEGMENT));
    let mut source = BlockSource::new(size);
    source_error(
        &mut source,
        Message::BlockSums {
            offset: 0,
            hashes: Bytes::from(vec![0u8; HASH_LEN]),
        },
    );
    let mut source = BlockSource::new(size);
    source.handle_message(good(0)).unwrap();
    source.handle_message(good(SEGMENT)).unwrap();
    // The last segment holds one block of 10 bytes: one hash, not 256.
    source_error(&mut source, good(2 * SEGMENT));
    source
        .handle_message(Message::BlockSums {
            offset: 2 * SEGMENT,
            hashes: Bytes::from(vec![0u8; HASH_LEN]),
        })
        .unwrap();
    // Nothing lies past the end.
    source_error(&mut source, good(3 * SEGMENT));
    source_error(
        &mut source,
        Message::BlockDone {
            stats: BlockStats::default(),
        },
    );
}

#[test]
fn the_source_holds_at_most_a_window_of_asks() {
    let size = (WINDOW as u64 + 2) * SEGMENT;
    let mut source = BlockSource::new(size);
    let ask = |offset| Message::BlockSums {
        offset,
        hashes: Bytes::from(vec![0u8; (SEGMENT / BLOCK) as usize * HASH_LEN]),
    };
    for i in 0..WINDOW as u64 {
        source.handle_message(ask(i * SEGMENT)).unwrap();
    }
    assert!(source_error(&mut source, ask(WINDOW as u64 * SEGMENT)).contains("ahead"));
}

#[test]
fn the_source_allows_one_second_round_and_no_third() {
    let size = SEGMENT;
    let ask = Message::BlockSums {
        offset: 0,
        hashes: Bytes::from(vec![0u8; (SEGMENT / BLOCK) as usize * HASH_LEN]),
    };
    let mut source = BlockSource::new(size);
    for round in 1..=2 {
        source.handle_message(ask.clone()).unwrap();
        assert!(matches!(
            source.poll_work(),
            Some(SourceWork::Segment { offset: 0, .. })
        ));
        source.handle_segment_sent(0);
        assert_eq!(
            source.poll_work(),
            Some(SourceWork::Finish),
            "round {round}"
        );
        source.handle_finished([1; 32]);
    }
    assert!(source_error(&mut source, ask).contains("round 3"));
}

/// Runs both cores to the end over in-memory contents; returns the target's content and
/// the bytes of content (data and zero runs) the source sent.
fn sync(source: &[u8], mut target: Vec<u8>) -> (Vec<u8>, u64, BlockStats) {
    let whole = |content: &[u8]| {
        let mut h = [0u8; 32];
        h[..HASH_LEN].copy_from_slice(&hash(content));
        h
    };
    let mut src = BlockSource::new(source.len() as u64);
    let mut dst = BlockTarget::new(target.len() as u64);
    let mut sent = 0;
    for _ in 0..100_000 {
        if let Some(stats) = src.done() {
            return (target, sent, stats.clone());
        }
        while let Some(message) = src.poll_transmit() {
            if let Message::BlockData { bytes, .. } = &message {
                sent += bytes.len() as u64;
            }
            if let Message::BlockZero { len, .. } = &message {
                sent += len;
            }
            dst.handle_message(message).unwrap();
        }
        while let Some(work) = dst.poll_work() {
            match work {
                TargetWork::Write { offset, bytes } => {
                    target[offset as usize..offset as usize + bytes.len()].copy_from_slice(&bytes)
                }
                TargetWork::Zero { offset, len } => {
                    target[offset as usize..(offset + len) as usize].fill(0)
                }
                TargetWork::Verify { size, hash } => dst
                    .handle_verified(whole(&target[..size as usize]) == hash)
                    .unwrap(),
                TargetWork::Resize { .. } => unreachable!("a device"),
            }
        }
        while let Some((offset, len)) = dst.wants_sums() {
            dst.handle_sums(offset, sums(&target, offset, len));
        }
        while let Some(message) = dst.poll_transmit() {
            src.handle_message(message).unwrap();
        }
        while let Some(work) = src.poll_work() {
            match work {
                SourceWork::Segment {
                    offset,
                    len,
                    hashes,
                } => {
                    let ours = sums(source, offset, len);
                    for (i, (a, b)) in ours
                        .chunks(HASH_LEN)
                        .zip(hashes.chunks(HASH_LEN))
                        .enumerate()
                    {
                        if a != b {
                            let start = offset + i as u64 * BLOCK;
                            let end = (start + BLOCK).min(offset + len);
                            let block = &source[start as usize..end as usize];
                            src.handle_message(Message::Heartbeat).unwrap();
                            let message = if block.iter().all(|&b| b == 0) {
                                Message::BlockZero {
                                    offset: start,
                                    len: end - start,
                                }
                            } else {
                                Message::BlockData {
                                    offset: start,
                                    bytes: Bytes::copy_from_slice(block),
                                }
                            };
                            sent += end - start;
                            dst.handle_message(message).unwrap();
                        }
                    }
                    src.handle_segment_sent(offset);
                    while let Some(message) = src.poll_transmit() {
                        dst.handle_message(message).unwrap();
                    }
                }
                SourceWork::Finish => src.handle_finished(whole(source)),
            }
        }
    }
    panic!("the cores did not finish");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn the_pair_reproduces_the_source_and_sends_only_changed_blocks(
        size in 0u64..(2 * SEGMENT + 5000),
        tail in 0u64..10_000,
        seed in any::<u64>(),
        changes in proptest::collection::vec(any::<u32>(), 0..20),
    ) {
        let mut state = seed | 1;
        let mut next = || { state ^= state << 13; state ^= state >> 7; state ^= state << 17; state };
        let source: Vec<u8> = (0..size).map(|i| if (i / BLOCK).is_multiple_of(5) { 0 } else { next() as u8 }).collect();
        let mut target = source.clone();
        target.extend((0..tail).map(|_| next() as u8));
        let original_tail = target[size as usize..].to_vec();
        let mut changed_blocks = std::collections::BTreeSet::new();
        for change in &changes {
            if size > 0 {
                let at = u64::from(*change) % size;
                target[at as usize] ^= 0x5a;
                changed_blocks.insert(at / BLOCK);
            }
        }
        let (result, sent, stats) = sync(&source, target);
        prop_assert!(result[..size as usize] == source[..]);
        prop_assert!(result[size as usize..] == original_tail[..]);
        prop_assert!(sent <= changed_blocks.len() as u64 * BLOCK);
        prop_assert_eq!(stats.device_size, size + tail);
    }
}

#[test]
fn a_dry_run_target_takes_no_content_resizes_nothing_and_verifies_nothing() {
    let mut target = BlockTarget::image(10).dry_run();
    target
        .handle_message(Message::BlockBegin { size: SEGMENT })
        .unwrap();
    assert_eq!(target.poll_work(), None, "a dry run resized the image");
    let (offset, len) = target.wants_sums().unwrap();
    target.handle_sums(offset, sums(&vec![0; len as usize], 0, len));
    assert!(protocol(target.handle_message(Message::BlockZero {
        offset: 0,
        len: 4096
    }))
    .contains("dry run"));

    let mut target = BlockTarget::new(SEGMENT).dry_run();
    target
        .handle_message(Message::BlockBegin { size: SEGMENT })
        .unwrap();
    target.handle_sums(0, sums(&vec![0; SEGMENT as usize], 0, SEGMENT));
    let _ = target.poll_transmit();
    target
        .handle_message(Message::BlockSegmentEnd { offset: 0 })
        .unwrap();
    target
        .handle_message(Message::BlockEnd {
            size: SEGMENT,
            hash: [3; 32],
        })
        .unwrap();
    assert_eq!(target.poll_work(), None);
    assert!(matches!(
        target.poll_transmit(),
        Some(Message::BlockDone { .. })
    ));
    assert!(target.is_done());
}
