//! Attacks whose cost is memory: the bound holds in the real process. Both cases also
//! run in-process (`frames`, `listing`), where the refusal and its reason are checked.

use ferry_proto::{encode, Limits};

use super::*;

#[test]
fn frame_length_over_the_limit_is_refused_before_its_body_is_allocated() {
    let run = run_session(|c, _| {
        let mut frame = bytes::BytesMut::new();
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
    });
    assert_refused(&run);
}

/// A source that lists far past the listing window and sends no data: one file it never
/// sends, then hard links to it, which wait for it, so nothing resolves and the
/// watermark stays at 0. The target must end the session when a frame goes past the
/// window (`Limits::window`), with an error that names the numbers, and its memory must
/// stay flat. Before the target enforced the window it took all 1.2 M entries in (about
/// 450 bytes each).
#[test]
fn listing_past_the_window_without_data_is_refused() {
    let run = run_session(|client, _| {
        let _ = listing::list_far_past_the_window(|frame| client.send(frame));
    });
    // The target ends the session at the first frame past the window: entries
    // 0..window fit, the next frame does not. Its Error may be lost to the reset of a
    // connection the source is still writing to, so its log is what names the numbers.
    let refusal = run
        .server
        .stderr
        .lines()
        .find(|l| l.contains("past the listing window"))
        .unwrap_or_else(|| {
            panic!(
                "the target did not say why it ended:\n{}",
                run.server.dump()
            )
        });
    listing::assert_names_the_window(refusal);
    assert_refused(&run);
}
