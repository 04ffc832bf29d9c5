//! A joined stream cut under a file: the source sends half the file it was asked for
//! on stream 1, closes that connection and says `StreamGone{1}` on stream 0. The target
//! says its own `StreamGone{1}`, asks for the file again on a live stream (stream 0 is
//! the only one left), and once the source answers, the session completes with both
//! files whole and no partial left behind. A frame the codec refuses on a joined stream
//! ends that stream the same way (a joined stream's read error is its loss), not the
//! session.

use super::*;

/// The frames of file `index` of `size` bytes of [`content`], from `from` to `to`.
fn data(index: u64, whole: &[u8], from: usize, to: usize) -> Vec<Message> {
    let chunk = ferry_proto::Limits::default().data_chunk;
    (from..to)
        .step_by(chunk)
        .map(|offset| Message::Data {
            index,
            offset: offset as u64,
            bytes: whole[offset..to.min(offset + chunk)].to_vec().into(),
        })
        .collect()
}

fn end(index: u64, whole: &[u8]) -> Message {
    Message::FileEnd {
        index,
        size: whole.len() as u64,
        hash: *blake3::hash(whole).as_bytes(),
    }
}

#[test]
fn a_joined_stream_cut_mid_file_is_asked_again_on_another_and_the_session_completes() {
    let mut multi = Multi::start(1, |_| {});
    multi.list(vec![file("a", CREDIT), file("b", CREDIT)]);
    let asks = multi.asks(2);
    let cut = *asks
        .iter()
        .find(|a| a.stream == 1)
        .expect("a file asked on 1");
    let kept = *asks
        .iter()
        .find(|a| a.stream == 0)
        .expect("a file asked on 0");
    let whole = content(CREDIT);
    let half = whole.len() / 2;
    for message in data(cut.index, &whole, 0, half) {
        multi.send(1, &message).expect("send Data on stream 1");
    }
    drop(multi.take(1));
    multi
        .send(0, &Message::StreamGone { stream: 1 })
        .expect("send StreamGone");
    let mut answer = data(kept.index, &whole, 0, whole.len());
    answer.push(end(kept.index, &whole));
    for message in &answer {
        if multi.send(0, message).is_err() {
            break; // the target ended the session: what it said is read below
        }
    }
    let (mut target_gone, mut asked_again) = (false, false);
    let seen = multi.until_end(|client, message| match message {
        Message::StreamGone { stream: 1 } => target_gone = true,
        Message::Wants { indices } if indices == &[cut.index] => {
            assert!(target_gone, "asked again before its StreamGone");
            asked_again = true;
            let mut again = data(cut.index, &whole, 0, whole.len());
            again.push(end(cut.index, &whole));
            for message in &again {
                client.send(message).expect("answer the ask again");
            }
        }
        Message::Want { .. } | Message::Wants { .. } | Message::StreamGone { .. } => {
            panic!("unexpected {message:?}")
        }
        _ => {}
    });
    let (ended, files) = multi.finish();
    assert!(
        matches!(seen.last(), Some(Recv::Msg(Message::Done { .. }))),
        "expected Done, got {:?}\n{}",
        seen.last(),
        ended.server.dump()
    );
    assert!(
        target_gone && asked_again,
        "gone {target_gone}, asked again {asked_again}"
    );
    assert_eq!(ended.server.code, Some(0), "{}", ended.server.dump());
    for name in ["a", "b"] {
        let got = std::fs::read(files.vol.join(name)).expect("the file");
        assert!(got == whole, "{name} is not the file sent");
    }
    let mut names: Vec<_> = std::fs::read_dir(&files.vol)
        .expect("read the volume")
        .map(|e| e.expect("entry").file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["a", "b"], "what the volume holds");
}

/// A frame over the codec's limits on a joined stream (a `Data` of 4 MiB: a data frame
/// carries at most 256 KiB) is the end of that stream, as a cut is: the target says
/// `StreamGone`, asks for the stream's file again on stream 0, and the session goes on.
#[test]
fn an_oversized_frame_on_a_joined_stream_ends_that_stream_only() {
    let mut multi = Multi::start(1, |_| {});
    multi.list(vec![file("a", CREDIT), file("b", CREDIT)]);
    let asks = multi.asks(2);
    let lost = *asks
        .iter()
        .find(|a| a.stream == 1)
        .expect("a file asked on 1");
    let kept = *asks
        .iter()
        .find(|a| a.stream == 0)
        .expect("a file asked on 0");
    let whole = content(CREDIT);
    let mut oversized = bytes::BytesMut::new();
    ferry_proto::encode(
        &Message::Data {
            index: lost.index,
            offset: 0,
            bytes: whole[..4 << 20].to_vec().into(),
        },
        &mut oversized,
    );
    let _ = multi.stream(1).send_raw(&oversized);
    let mut answer = data(kept.index, &whole, 0, whole.len());
    answer.push(end(kept.index, &whole));
    for message in &answer {
        if multi.send(0, message).is_err() {
            break; // the target ended the session: what it said is read below
        }
    }
    let mut asked_again = false;
    let seen = multi.until_end(|client, message| match message {
        Message::StreamGone { stream: 1 } => {
            client
                .send(&Message::StreamGone { stream: 1 })
                .expect("answer StreamGone");
        }
        Message::Wants { indices } if indices == &[lost.index] => {
            asked_again = true;
            let mut again = data(lost.index, &whole, 0, whole.len());
            again.push(end(lost.index, &whole));
            for message in &again {
                client.send(message).expect("answer the ask again");
            }
        }
        _ => {}
    });
    let (ended, files) = multi.finish();
    assert!(
        matches!(seen.last(), Some(Recv::Msg(Message::Done { .. }))),
        "expected Done, got {:?}\n{}",
        seen.last(),
        ended.server.dump()
    );
    assert!(asked_again, "the lost stream's file was not asked again");
    assert!(
        ended.server.stderr.contains("joined stream 1 lost"),
        "{}",
        ended.server.dump()
    );
    for name in ["a", "b"] {
        let got = std::fs::read(files.vol.join(name)).expect("the file");
        assert!(got == whole, "{name} is not the file sent");
    }
}
