//! Every rule a source can break at the target, broken: each is refused with a protocol
//! error that says what was wrong. These are the in-process twins of the real-process
//! cases in `tests/it/hostile/` (named in each test's comment).

use ferry_proto::session::target::FileOutcome;
use ferry_proto::{ErrorClass, Limits, Message, Rule, RuleKind};

use super::*;

#[test]
fn a_listing_that_skips_entries_is_refused() {
    // it: hostile::listing (index gaps)
    let mut t = Target::new();
    let e = refused(t.send(list("", 1, vec![file("a", 1)], true)));
    assert!(e.contains("listing starts at entry 1, expected 0"), "{e}");
}

#[test]
fn a_listing_that_repeats_entries_is_refused() {
    let mut t = Target::new();
    t.send(list("", 0, vec![file("a", 1)], false)).unwrap();
    let e = refused(t.send(list("", 0, vec![file("b", 1)], true)));
    assert!(e.contains("expected 1"), "{e}");
}

#[test]
fn a_listing_past_the_window_is_refused() {
    // it: hostile::window
    let mut t = Target::windowed(2);
    let e = refused(t.send(list(
        "",
        0,
        vec![file("a", 1), file("b", 1), file("c", 1)],
        true,
    )));
    assert!(e.contains("goes past the listing window"), "{e}");
}

#[test]
fn listing_on_before_an_ack_is_refused() {
    let mut t = Target::windowed(2);
    t.send(list("", 0, vec![file("a", 1), file("b", 1)], false))
        .unwrap();
    let e = refused(t.send(list("", 2, vec![file("c", 1)], true)));
    assert!(e.contains("the last Ack was through 0"), "{e}");
}

#[test]
fn a_directory_not_announced_is_refused() {
    // it: hostile::listing (unannounced directory)
    let mut t = Target::new();
    t.send(list("", 0, vec![file("a", 1)], true)).unwrap();
    let e = refused(t.send(list("x", 1, vec![file("b", 1)], true)));
    assert!(e.contains("not a directory announced"), "{e}");
}

#[test]
fn a_directory_listed_twice_is_refused() {
    let mut t = Target::new();
    t.send(list("", 0, vec![dir("d")], true)).unwrap();
    t.send(list("d", 1, vec![], true)).unwrap();
    let e = refused(t.send(list("d", 1, vec![], true)));
    assert!(e.contains("or was listed already"), "{e}");
}

#[test]
fn a_second_directory_before_the_first_is_done_is_refused() {
    let mut t = Target::new();
    t.send(list("", 0, vec![dir("d"), dir("e")], true)).unwrap();
    t.send(list("d", 2, vec![], false)).unwrap();
    let e = refused(t.send(list("e", 2, vec![], true)));
    assert!(e.contains("before the listing of d was done"), "{e}");
}

#[test]
fn names_out_of_order_are_refused() {
    // it: hostile::listing::names_out_of_order_are_refused
    let mut t = Target::new();
    let e = refused(t.send(list("", 0, vec![file("b", 1), file("a", 1)], true)));
    assert!(e.contains("out of order"), "{e}");
}

#[test]
fn a_name_listed_twice_is_refused() {
    let mut t = Target::new();
    t.send(list("", 0, vec![file("a", 1)], false)).unwrap();
    let e = refused(t.send(list("", 1, vec![file("a", 1)], true)));
    assert!(e.contains("listed twice or out of order"), "{e}");
}

#[test]
fn names_that_could_escape_are_refused() {
    // it: hostile::paths (dot-dot, slash, NUL, empty)
    for name in ["..", ".", "a/b", "a\0b", ""] {
        let mut t = Target::new();
        let e = refused(t.send(list("", 0, vec![file(name, 1)], true)));
        assert!(!e.is_empty(), "{name:?}");
    }
}

#[test]
fn a_listed_directory_path_that_escapes_is_refused() {
    let mut t = Target::new();
    let e = refused(t.send(list("../x", 0, vec![], true)));
    assert!(e.contains("'..'"), "{e}");
}

#[test]
fn an_entry_the_filter_excludes_is_refused() {
    // it: pull_hostile::content (a server listing what the puller excluded)
    let filter = Filter::new(vec![Rule::new(RuleKind::Exclude, b"*.key").unwrap()]);
    let mut t = Target::with(Limits::default(), filter);
    let e = refused(t.send(list("", 0, vec![file("a.key", 1)], true)));
    assert!(e.contains("which the session's filter excludes"), "{e}");
}

#[test]
fn a_hard_link_to_a_later_entry_is_refused() {
    // it: hostile::listing (leader not before the link)
    let mut t = Target::new();
    let e = refused(t.send(list("", 0, vec![link("a", 1, "b"), file("b", 1)], true)));
    assert!(e.contains("which was not listed before it"), "{e}");
}

#[test]
fn a_hard_link_to_a_directory_is_refused() {
    let mut t = Target::new();
    let e = refused(t.send(list("", 0, vec![dir("a"), link("b", 0, "a")], true)));
    assert!(
        e.contains("not the regular file listed as that entry"),
        "{e}"
    );
}

#[test]
fn a_hard_link_naming_another_path_than_its_leaders_is_refused() {
    // it: hostile::listing::hard_link_to_a_path_other_than_its_leaders_is_refused
    let mut t = Target::new();
    let e = refused(t.send(list(
        "",
        0,
        vec![file("a", 1), link("b", 0, "secret")],
        true,
    )));
    assert!(e.contains("names secret as entry 0"), "{e}");
}

#[test]
fn a_hard_link_whose_leader_path_escapes_is_refused() {
    // it: pull_hostile::content (leader path through ..)
    let mut t = Target::new();
    let e = refused(t.send(list("", 0, vec![file("a", 1), link("b", 0, "../a")], true)));
    assert!(e.contains("hard link b"), "{e}");
}

#[test]
fn data_for_a_file_not_asked_for_is_refused() {
    // it: hostile::frames (data for an unwanted index)
    let mut t = Target::new();
    t.send(list("", 0, vec![symlink("a")], true)).unwrap();
    let e = refused(t.send(data(0)));
    assert!(e.contains("which the target did not ask for"), "{e}");
    let mut t = Target::new();
    let e = refused(t.send(data(7)));
    assert!(e.contains("entry 7"), "{e}");
}

#[test]
fn data_after_a_files_end_is_refused() {
    let mut t = Target::new();
    t.send(list("", 0, vec![file("a", 1)], true)).unwrap();
    t.send(data(0)).unwrap();
    t.send(file_end(0)).unwrap();
    let e = refused(t.send(data(0)));
    assert!(e.contains("after its FileEnd or FileFailed"), "{e}");
    let e = refused(t.send(file_end(0)));
    assert!(e.contains("after its FileEnd"), "{e}");
}

#[test]
fn data_for_a_file_already_in_place_is_refused() {
    let mut t = Target::new();
    t.send(list("", 0, vec![file("a", 1), file("b", 1)], true))
        .unwrap();
    t.deliver(0);
    let e = refused(t.send(data(0)));
    assert!(e.contains("did not ask for"), "{e}");
}

#[test]
fn file_failed_for_a_file_not_asked_for_is_refused() {
    let mut t = Target::new();
    let e = refused(t.send(Message::FileFailed {
        index: 0,
        reason: ferry_proto::FileFailure::ReadError,
        message: String::new(),
    }));
    assert!(e.contains("FileFailed for entry 0"), "{e}");
}

#[test]
fn root_twice_or_after_the_listing_started_is_refused() {
    // it: hostile::listing (Root twice)
    let mut t = Target::new();
    t.send(root()).unwrap();
    let e = refused(t.send(root()));
    assert!(e.contains("Root sent twice"), "{e}");
    let mut t = Target::new();
    t.send(list("", 0, vec![], false)).unwrap();
    refused(t.send(root()));
}

#[test]
fn a_listing_after_list_end_is_refused() {
    let mut t = Target::new();
    t.send(list("", 0, vec![], true)).unwrap();
    t.send(Message::ListEnd {
        entries: 0,
        read_errors: 0,
    })
    .unwrap();
    let e = refused(t.send(list("", 0, vec![], true)));
    assert!(e.contains("List after ListEnd"), "{e}");
    let e = refused(t.send(root()));
    assert!(e.contains("Root after ListEnd"), "{e}");
}

#[test]
fn a_second_list_end_is_refused() {
    let mut t = Target::new();
    t.send(list("", 0, vec![], true)).unwrap();
    let end = Message::ListEnd {
        entries: 0,
        read_errors: 0,
    };
    t.send(end.clone()).unwrap();
    let e = refused(t.send(end));
    assert!(e.contains("ListEnd after ListEnd"), "{e}");
}

#[test]
fn list_end_with_the_wrong_count_is_refused() {
    // it: hostile::listing (ListEnd count)
    let mut t = Target::new();
    t.send(list("", 0, vec![symlink("a")], true)).unwrap();
    let e = refused(t.send(Message::ListEnd {
        entries: 5,
        read_errors: 0,
    }));
    assert!(e.contains("ListEnd says 5 entries, 1 were listed"), "{e}");
}

#[test]
fn list_end_before_every_directory_was_listed_is_refused() {
    let mut t = Target::new();
    t.send(list("", 0, vec![dir("d")], true)).unwrap();
    let e = refused(t.send(Message::ListEnd {
        entries: 1,
        read_errors: 0,
    }));
    assert!(
        e.contains("before every announced directory was listed"),
        "{e}"
    );
}

#[test]
fn too_many_directories_announced_and_not_listed_are_refused() {
    // it: peer_work (pending directories)
    let limits = Limits {
        max_pending_dirs: 3,
        ..Limits::default()
    };
    let mut t = Target::with(limits, Filter::default());
    let e = refused(t.send(list(
        "",
        0,
        vec![dir("a"), dir("b"), dir("c"), dir("d")],
        true,
    )));
    assert!(e.contains("over the limit of 3"), "{e}");
}

#[test]
fn directories_holding_too_many_bytes_are_refused() {
    let limits = Limits {
        max_pending_dir_bytes: 1000,
        ..Limits::default()
    };
    let mut t = Target::with(limits, Filter::default());
    let mut big = dir("a");
    big.meta.xattrs.push(ferry_proto::Xattr {
        name: b"user.big".to_vec(),
        value: vec![0; 2000],
    });
    let e = refused(t.send(list("", 0, vec![big], true)));
    assert!(e.contains("(1000 bytes)"), "{e}");
}

#[test]
fn messages_only_a_target_sends_are_refused() {
    // it: hostile::frames (target messages from a source)
    for message in [
        Message::Want {
            index: 0,
            delta: false,
        },
        Message::Ack { through: 0 },
        Message::Welcome {
            version: 4,
            space: None,
            cores: 0,
            streams_max: 1,
            key: None,
        },
        Message::Joined { stream: 1 },
    ] {
        let name = message.name();
        let mut t = Target::new();
        let e = refused(t.send(message));
        assert!(
            e.contains(&format!("unexpected {name} from the source")),
            "{e}"
        );
    }
}

/// The frames of a session over several streams, which no session of this version has.
fn multi_stream_frames() -> Vec<Message> {
    vec![
        Message::Wants { indices: vec![0] },
        Message::Files {
            files: vec![ferry_proto::SmallFile {
                index: 0,
                hash: [0; 32],
                bytes: Default::default(),
            }],
        },
        Message::WantRange {
            index: 0,
            offset: 0,
            len: 1,
            have: false,
            cv: [0; 32],
        },
        Message::RangeEnd {
            index: 0,
            offset: 0,
            len: 1,
            same: false,
            cv: [0; 32],
        },
        Message::StreamGone { stream: 1 },
    ]
}

#[test]
fn frames_of_a_session_over_several_streams_are_refused() {
    for message in multi_stream_frames() {
        let name = message.name();
        let mut t = Target::new();
        t.send(list("", 0, vec![file("f", 0)], true)).unwrap();
        let e = refused(t.send(message));
        assert!(
            e.contains(&format!("{name} is not part of this session")),
            "{e}"
        );
        assert!(
            e.contains("sent a frame that only a session over several streams may carry"),
            "{e}"
        );
    }
}

#[test]
fn a_sources_error_stops_the_session_with_its_class_and_safe_text() {
    // it: pull_hostile::peer_text
    let mut t = Target::new();
    let result = t.send(Message::Error {
        class: ErrorClass::Interrupted,
        message: "\x1b[31mred".into(),
    });
    match result {
        Err(SessionError::Peer { class, message }) => {
            assert_eq!(class, ErrorClass::Interrupted);
            assert!(message.contains("\\x1b[31mred"), "{message}");
            assert!(!message.contains('\x1b'), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_failed_file_that_is_not_draining_refuses_later_frames() {
    let mut t = Target::new();
    t.send(list("", 0, vec![file("a", 1), file("b", 1)], true))
        .unwrap();
    t.send(data(0)).unwrap();
    t.file_done(0, FileOutcome::Failed { draining: false });
    refused(t.send(data(0)));
}
