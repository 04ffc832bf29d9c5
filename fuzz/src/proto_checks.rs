//! Checks on `ferry_proto`'s frame decoder, shared by the fuzz targets `frame_decoder` and
//! `list_entry` and by `crates/proto/tests/fuzz_corpus.rs` (which includes this file with
//! `#[path]`, so it may use only what ferry-proto's tests can: `ferry_proto` and `bytes`).
//!
//! Every check panics on a violation; a panic is what libFuzzer reports as a crash.

use bytes::{BufMut, BytesMut};
use ferry_proto::{decode, encode, CodecError, Limits, Message};

/// The `List` message tag (crates/proto/src/codec/tags.rs).
pub const LIST_TAG: u8 = 5;

/// Treats `data` as a stream of frames from the peer.
///
/// * `decode` never panics; it stops with `Ok(None)` (need more bytes) or an error.
/// * "Need more bytes" consumes nothing.
/// * Every decoded message re-encodes to exactly the frame it came from (the format is
///   canonical), and `decode(encode(m)) == m`.
/// * Feeding the same bytes one at a time gives the same messages and the same error.
pub fn frame_decoder(data: &[u8]) {
    let limits = Limits::default();
    let whole = decode_all(data, &limits, usize::MAX);
    let trickled = decode_all(data, &limits, 1);
    assert_eq!(
        whole, trickled,
        "the result depends on how the bytes were split into reads"
    );
}

/// Frames one `List` body around `data`, so the fuzzer spends its time in the entry decoder.
///
/// `data[0]` picks the entry count (low 3 bits, 1..=8) and the `dir_done`/`dir_complete`
/// flags (bits 3-4); the rest are the entries. The frame then goes through
/// [`frame_decoder`].
pub fn list_entry(data: &[u8]) {
    let Some((&control, entries)) = data.split_first() else {
        return;
    };
    frame_decoder(&list_frame(control, entries));
}

/// A `List` frame for the root directory, first index 0, with `entries` as its raw entries.
pub fn list_frame(control: u8, entries: &[u8]) -> Vec<u8> {
    let count = u32::from(control & 7) + 1;
    let flags = (control >> 3) & 3;
    let mut body = BytesMut::new();
    body.put_u8(LIST_TAG);
    body.put_u32_le(0); // dir: empty, the root
    body.put_u64_le(0); // first
    body.put_u8(flags);
    body.put_u32_le(count);
    body.put_slice(entries);
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
    frame.extend_from_slice(&body);
    frame
}

/// The inverse of [`list_entry`]'s framing, for the seed generator: the fuzz input whose
/// frame is `frame` (a `List` of the root with first index 0 and 1..=8 entries).
pub fn list_input(frame: &[u8]) -> Option<Vec<u8>> {
    let body = frame.get(4..)?;
    let (&tag, rest) = body.split_first()?;
    let fixed = rest.get(..17)?;
    if tag != LIST_TAG || fixed[..12] != [0; 12] || fixed[12] > 3 {
        return None;
    }
    let count = u32::from_le_bytes(fixed[13..17].try_into().ok()?);
    if !(1..=8).contains(&count) {
        return None;
    }
    let control = (count - 1) as u8 | (fixed[12] << 3);
    let mut input = vec![control];
    input.extend_from_slice(&rest[17..]);
    Some(input)
}

/// Decodes every frame in `data`, handing the decoder at most `step` new bytes at a time.
/// Returns the messages and the error that ended the stream, if any.
fn decode_all(data: &[u8], limits: &Limits, step: usize) -> (Vec<Message>, Option<CodecError>) {
    let mut buf = BytesMut::new();
    let mut fed = 0;
    let mut messages = Vec::new();
    loop {
        // Copy the frame only once it is whole: trickling bytes in must stay linear.
        let len_before = buf.len();
        let frame_len = match buf.get(..4) {
            Some(header) => 4 + u32::from_le_bytes(header.try_into().unwrap()) as usize,
            None => usize::MAX,
        };
        let frame = buf.get(..frame_len).map(<[u8]>::to_vec);
        match decode(&mut buf, limits) {
            Ok(Some(message)) => {
                let frame = frame.expect("decoded a frame that was not whole");
                assert_eq!(
                    len_before - buf.len(),
                    frame.len(),
                    "consumed a wrong length"
                );
                check_round_trip(&message, &frame, limits);
                messages.push(message);
            }
            Ok(None) => {
                assert_eq!(buf.len(), len_before, "Ok(None) consumed bytes");
                assert!(frame.is_none(), "Ok(None) with a whole frame buffered");
                if fed == data.len() {
                    return (messages, None);
                }
                let n = step.min(data.len() - fed);
                buf.extend_from_slice(&data[fed..fed + n]);
                fed += n;
            }
            Err(error) => {
                // The message must render (errors end up in logs and reports).
                let _ = error.to_string();
                return (messages, Some(error));
            }
        }
    }
}

/// `frame` decoded to `message`: encoding gives the same bytes back and decodes again to
/// the same message, consuming the whole frame.
fn check_round_trip(message: &Message, frame: &[u8], limits: &Limits) {
    let mut encoded = BytesMut::new();
    encode(message, &mut encoded);
    assert_eq!(
        &encoded[..],
        frame,
        "{} re-encodes to different bytes",
        message.name()
    );
    let mut again = encoded.clone();
    let decoded = decode(&mut again, limits);
    assert_eq!(
        decoded,
        Ok(Some(message.clone())),
        "decode(encode(m)) != m for {}",
        message.name()
    );
    assert!(again.is_empty(), "decode(encode(m)) left bytes behind");
}
