//! The target core against a hand-played source: what it refuses, and what work it hands out.

use bytes::Bytes;
use ferry_proto::session::block::{BlockError, BlockTarget, TargetWork, SEGMENT, WINDOW};
use ferry_proto::Message;

use super::{protocol, sums, target_with_sums};

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
    let mut target = BlockTarget::image(10, u64::MAX);
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

#[test]
fn a_dry_run_target_takes_no_content_resizes_nothing_and_verifies_nothing() {
    let mut target = BlockTarget::image(10, u64::MAX).dry_run();
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

#[test]
fn an_image_grows_at_most_to_the_file_system_that_holds_it() {
    // A hostile source's 2^62 bytes would make a sparse image nothing can fill, and a
    // target that hashes and verifies exabytes of holes for ever.
    let room = 1 << 30;
    let huge = 1u64 << 62;
    let mut target = BlockTarget::image(10, room);
    let refused = target.handle_message(Message::BlockBegin { size: huge });
    assert_eq!(
        refused,
        Err(BlockError::ImageTooLarge {
            source_size: huge,
            room
        })
    );
    let message = refused.unwrap_err().to_string();
    assert!(
        message.contains(&huge.to_string()) && message.contains(&room.to_string()),
        "{message}"
    );
    assert_eq!(target.poll_work(), None, "the image was resized");
    assert_eq!(target.wants_sums(), None);

    // Up to the room it takes the source's size; an image already larger than the room
    // (sparse) may keep or shrink its size.
    let mut target = BlockTarget::image(10, room);
    target
        .handle_message(Message::BlockBegin { size: room })
        .unwrap();
    assert_eq!(target.poll_work(), Some(TargetWork::Resize { size: room }));
    let mut target = BlockTarget::image(2 * room, room);
    target
        .handle_message(Message::BlockBegin { size: 2 * room - 1 })
        .unwrap();
    assert_eq!(
        target.poll_work(),
        Some(TargetWork::Resize { size: 2 * room - 1 })
    );

    // A dry run says so too: the real run would be refused.
    let mut target = BlockTarget::image(10, room).dry_run();
    assert!(target
        .handle_message(Message::BlockBegin { size: huge })
        .is_err());
}
