//! Framing itself: too long, cut short, or not frames at all.

use bytes::BytesMut;
use ferry_proto::{encode, Limits};

use super::*;
use crate::files::random_bytes;

#[test]
fn frame_length_over_the_limit_is_refused_before_its_body_arrives() {
    hostile_case(
        |c, _| {
            let mut frame = BytesMut::new();
            let bytes = vec![0u8; Limits::default().max_frame + 1].into();
            encode(
                &Message::Data {
                    index: 0,
                    offset: 0,
                    bytes,
                },
                &mut frame,
            );
            // Only the header: the target must refuse on the length alone, not wait for
            // (or allocate) the body. The connection stays open.
            let _ = c.send_raw(&frame[..64]);
        },
        &[],
    );
}

#[test]
fn truncated_frame_then_end_of_stream_is_refused() {
    hostile_case(
        |c, _| {
            let mut frame = BytesMut::new();
            encode(&list(b"", 0, vec![file(b"t")], true), &mut frame);
            let _ = c.send_raw(&frame[..frame.len() - 3]);
            c.close_write();
        },
        &[],
    );
}

#[test]
fn random_garbage_is_refused() {
    hostile_case(
        |c, _| {
            let _ = c.send_raw(&random_bytes("garbage", 4096));
            c.close_write();
        },
        &[],
    );
}
