//! The two cores against each other over in-memory contents.

use bytes::Bytes;
use ferry_proto::session::block::{
    BlockSource, BlockTarget, SourceWork, TargetWork, BLOCK, HASH_LEN, SEGMENT,
};
use ferry_proto::{BlockStats, Message};
use proptest::prelude::*;

use super::{hash, sums};

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
