//! The source core against a hand-played target: what it refuses.

use bytes::Bytes;
use ferry_proto::session::block::{BlockSource, SourceWork, BLOCK, HASH_LEN, SEGMENT, WINDOW};
use ferry_proto::{BlockStats, Message, SessionError};

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
