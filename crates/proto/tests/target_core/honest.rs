//! What an honest source does is accepted, and the core's bookkeeping comes out right:
//! Acks, links after their leader, directories after their contents, re-sends.

use ferry_proto::session::target::{FileOutcome, Verdict};
use ferry_proto::Message;

use super::*;

#[test]
fn an_empty_tree_settles_after_its_listing_ends() {
    let mut t = Target::new();
    t.send(root()).unwrap();
    t.send(list("", 0, vec![], true)).unwrap();
    assert!(!t.core.is_settled(), "ListEnd has not come");
    t.send(list_end(0)).unwrap();
    assert!(t.core.is_settled());
    assert_eq!(t.finished, vec!["."]);
    assert!(t.core.delete_ok());
}

#[test]
fn the_states_follow_the_listing_then_the_files() {
    use ferry_proto::session::target::TargetState;
    let mut t = Target::new();
    assert_eq!(t.core.state(), TargetState::ExpectListing);
    t.send(list("", 0, vec![file("a", 1)], true)).unwrap();
    t.send(list_end(1)).unwrap();
    assert_eq!(t.core.state(), TargetState::ExpectFiles);
    t.deliver(0);
    assert_eq!(t.core.state(), TargetState::Settled);
}

#[test]
fn files_are_acked_as_they_commit_and_the_session_settles() {
    let mut t = Target::new();
    t.send(root()).unwrap();
    t.send(list(
        "",
        0,
        vec![file("a", 1), file("b", 1), symlink("c")],
        true,
    ))
    .unwrap();
    assert_eq!(t.wanted, vec![0, 1]);
    assert_eq!(t.last_ack(), 0, "file 0 is still on its way");
    t.deliver(1);
    assert_eq!(t.last_ack(), 0, "the watermark waits for the lowest");
    t.deliver(0);
    assert_eq!(t.last_ack(), 3);
    t.send(list_end(3)).unwrap();
    assert!(t.core.is_settled());
    assert_eq!(t.finished, vec!["."]);
}

#[test]
fn acks_only_move_forward() {
    let mut t = Target::new();
    t.send(list("", 0, vec![file("a", 1), file("b", 1)], true))
        .unwrap();
    t.deliver(0);
    t.deliver(1);
    assert!(t.acks.windows(2).all(|w| w[0] < w[1]), "{:?}", t.acks);
    assert_eq!(t.acks, vec![1, 2]);
}

#[test]
fn the_window_opens_as_entries_resolve() {
    let mut t = Target::windowed(2);
    t.send(list("", 0, vec![file("a", 1), file("b", 1)], false))
        .unwrap();
    t.deliver(0);
    assert_eq!(t.last_ack(), 1);
    t.send(list("", 2, vec![file("c", 1)], true)).unwrap();
}

#[test]
fn a_hard_link_waits_for_its_leader_then_is_made() {
    let mut t = Target::new();
    t.send(list("", 0, vec![file("a", 1), link("b", 0, "a")], true))
        .unwrap();
    assert!(t.made.is_empty(), "the leader is not in place");
    t.deliver(0);
    assert_eq!(t.made, vec![1]);
    assert_eq!(t.last_ack(), 2);
}

#[test]
fn a_hard_link_to_a_leader_in_place_is_made_at_once() {
    let mut t = Target::new();
    t.send(list("", 0, vec![file("a", 1)], false)).unwrap();
    t.deliver(0);
    t.send(list("", 1, vec![link("b", 0, "a")], true)).unwrap();
    assert_eq!(t.made, vec![1]);
}

#[test]
fn hard_links_to_a_failed_leader_fail() {
    let mut t = Target::new();
    t.send(list("", 0, vec![file("a", 1), link("b", 0, "a")], true))
        .unwrap();
    assert_eq!(
        t.file_done(0, FileOutcome::Failed { draining: false }),
        Verdict::Done
    );
    assert_eq!(t.failed_links, vec![1]);
    assert!(t.made.is_empty());
    assert_eq!(t.last_ack(), 2);
}

#[test]
fn hard_links_to_a_refused_file_fail_when_planned() {
    let mut t = Target::new();
    t.refuse.push(0);
    t.send(list(
        "",
        0,
        vec![file("a", 1 << 40), link("b", 0, "a")],
        true,
    ))
    .unwrap();
    assert_eq!(t.failed_links, vec![1]);
    assert_eq!(t.last_ack(), 2);
}

#[test]
fn a_mismatch_is_asked_again_once_then_fails() {
    let mut t = Target::new();
    t.send(list("", 0, vec![file("a", 1)], true)).unwrap();
    t.send(data(0)).unwrap();
    t.send(file_end(0)).unwrap();
    assert_eq!(t.file_done(0, FileOutcome::Mismatch), Verdict::Resend);
    // The source sends it again, whole.
    t.send(data(0)).unwrap();
    t.send(file_end(0)).unwrap();
    assert_eq!(t.file_done(0, FileOutcome::Mismatch), Verdict::Failed);
    assert_eq!(t.last_ack(), 1);
}

#[test]
fn a_failed_file_drains_its_frames_until_its_end() {
    let mut t = Target::new();
    t.send(list("", 0, vec![file("a", 3)], true)).unwrap();
    t.send(list_end(1)).unwrap();
    t.send(data(0)).unwrap();
    t.file_done(0, FileOutcome::Failed { draining: true });
    assert!(!t.core.is_settled(), "its frames are still coming");
    t.send(data(0)).unwrap();
    t.send(file_end(0)).unwrap();
    assert!(t.core.is_settled());
    assert_eq!(
        t.received,
        vec![(0, "Data"), (0, "Data"), (0, "FileEnd")],
        "drained frames are passed on to be dropped"
    );
    // After its end, nothing more of it may come.
    refused(t.send(data(0)));
}

#[test]
fn a_file_failed_after_its_end_came_does_not_drain() {
    let mut t = Target::new();
    t.send(list("", 0, vec![file("a", 1)], true)).unwrap();
    t.send(list_end(1)).unwrap();
    t.send(data(0)).unwrap();
    t.send(file_end(0)).unwrap();
    t.file_done(0, FileOutcome::Failed { draining: true });
    assert!(t.core.is_settled());
}

#[test]
fn a_source_giving_up_on_a_file_resolves_it() {
    let mut t = Target::new();
    t.send(list("", 0, vec![file("a", 1), link("b", 0, "a")], true))
        .unwrap();
    t.send(Message::FileFailed {
        index: 0,
        reason: ferry_proto::FileFailure::Vanished,
        message: "gone".into(),
    })
    .unwrap();
    assert_eq!(t.received, vec![(0, "FileFailed")]);
    t.file_done(0, FileOutcome::Aborted);
    assert_eq!(t.failed_links, vec![1], "a link to it fails");
    assert_eq!(t.last_ack(), 2);
}

#[test]
fn directories_finish_after_their_contents_children_first() {
    let mut t = Target::new();
    t.send(root()).unwrap();
    t.send(list("", 0, vec![dir("d")], true)).unwrap();
    t.send(list("d", 1, vec![dir("e"), file("f", 1)], true))
        .unwrap();
    t.send(list("d/e", 3, vec![file("g", 1)], true)).unwrap();
    assert!(t.finished.is_empty(), "{:?}", t.finished);
    t.deliver(3);
    assert_eq!(t.finished, vec!["d/e"]);
    t.deliver(2);
    assert_eq!(t.finished, vec!["d/e", "d", "."]);
}

#[test]
fn a_directory_with_deletions_waits_for_the_end() {
    let mut t = Target::new();
    t.send(root()).unwrap();
    t.core
        .handle_message(list("", 0, vec![symlink("a")], true))
        .unwrap();
    // The planner found extras in the root.
    while let Some(work) = t.core.poll_work() {
        if let TargetWork::Plan(_) = work {
            t.core.handle_planned(PlanOutcome {
                has_extras: true,
                ..PlanOutcome::default()
            });
        }
    }
    t.send(list_end(1)).unwrap();
    assert!(t.core.is_settled());
    assert!(t.finished.is_empty());
    let remaining: Vec<String> = t
        .core
        .take_remaining_dirs()
        .into_iter()
        .map(|(p, _)| p.to_string())
        .collect();
    assert_eq!(remaining, vec!["."]);
}

#[test]
fn deletion_is_not_allowed_after_read_errors_or_an_incomplete_directory() {
    let mut t = Target::new();
    t.send(list("", 0, vec![], true)).unwrap();
    t.send(Message::ListEnd {
        entries: 0,
        read_errors: 1,
    })
    .unwrap();
    assert!(!t.core.delete_ok());

    let mut t = Target::new();
    t.send(Message::List {
        dir: vec![],
        first: 0,
        entries: vec![],
        dir_done: true,
        dir_complete: false,
    })
    .unwrap();
    t.send(list_end(0)).unwrap();
    assert!(!t.core.delete_ok());
}

#[test]
fn a_directory_may_span_frames() {
    let mut t = Target::new();
    t.send(list("", 0, vec![symlink("a")], false)).unwrap();
    t.send(list("", 1, vec![symlink("b")], false)).unwrap();
    t.send(list("", 2, vec![symlink("c")], true)).unwrap();
    t.send(list_end(3)).unwrap();
    assert!(t.core.is_settled());
    assert_eq!(t.last_ack(), 3);
}

#[test]
fn heartbeats_may_come_at_any_time() {
    let mut t = Target::new();
    t.send(Message::Heartbeat).unwrap();
    t.send(list("", 0, vec![file("a", 1)], true)).unwrap();
    t.send(Message::Heartbeat).unwrap();
    t.send(list_end(1)).unwrap();
    t.send(Message::Heartbeat).unwrap();
}
