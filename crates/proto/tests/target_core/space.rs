//! The pre-flight space check in the core: it stops a session as soon as the files
//! planned so far need more than the volume had free, before any of them is asked for,
//! and asks for the `--delete` extras to go first only while every directory so far was
//! read completely.

use ferry_proto::session::target::{
    FrameSpace, FreeSpace, PlanOutcome, SpaceCheck, SpaceVerdict, TargetCore, TargetWork, Usage,
    Write,
};
use ferry_proto::{Filter, Limits, Message, SessionError};

use super::{dir, file, list, root};

const BLOCK: u64 = 4096;

fn core(free_blocks: u64) -> TargetCore {
    let free = FreeSpace {
        bytes: free_blocks * BLOCK,
        reserved: 0,
        inodes: Some(1000),
        block: BLOCK,
    };
    TargetCore::new(
        Filter::default(),
        Limits::default(),
        std::hash::RandomState::new(),
    )
    .with_space(Some(free), SpaceCheck::Enforce)
}

fn new_file(blocks: u64) -> Write {
    Write {
        size: blocks * BLOCK,
        replaces: 0,
        inode: true,
        in_place: false,
    }
}

/// Takes the Plan the last frame asked for (past the directories finished before it).
fn plan(core: &mut TargetCore) {
    loop {
        match core.poll_work() {
            Some(TargetWork::Plan(_)) => return,
            Some(TargetWork::FinishDirs(_)) => {}
            other => panic!("expected a Plan, got {other:?}"),
        }
    }
}

#[test]
fn the_core_stops_before_asking_for_the_file_that_does_not_fit() {
    let mut core = core(10);
    core.handle_message(root()).unwrap();
    let entries = vec![
        file("a", 4 * BLOCK),
        file("b", 4 * BLOCK),
        file("c", 4 * BLOCK),
    ];
    core.handle_message(list("", 0, entries, true)).unwrap();
    plan(&mut core);
    let space = FrameSpace {
        writes: vec![new_file(4); 3],
        ..FrameSpace::default()
    };
    match core.handle_space(&space) {
        Err(SessionError::NoSpace(message)) => assert!(
            message.contains("49152 bytes") && message.contains("40960 bytes"),
            "{message}"
        ),
        other => panic!("12 blocks fit in 10: {other:?}"),
    }
}

/// Root lists `a` (incomplete or not) and `b`; `b` holds a file that fits only if the
/// root's extras go first.
fn deletes_first(a_complete: bool) -> Result<SpaceVerdict, SessionError> {
    let mut core = core(4);
    core.handle_message(root()).unwrap();
    core.handle_message(list("", 0, vec![dir("a"), dir("b")], true))
        .unwrap();
    plan(&mut core);
    let extras = Usage {
        bytes: 8 * BLOCK,
        inodes: 1,
    };
    let writes = vec![new_file(1), new_file(1)];
    assert_eq!(
        core.handle_space(&FrameSpace { writes, extras }).unwrap(),
        SpaceVerdict::Fits
    );
    core.handle_planned(PlanOutcome::default());
    core.handle_message(Message::List {
        dir: b"a".to_vec(),
        first: 2,
        entries: Vec::new(),
        dir_done: true,
        dir_complete: a_complete,
    })
    .unwrap();
    plan(&mut core);
    assert_eq!(
        core.handle_space(&FrameSpace::default()).unwrap(),
        SpaceVerdict::Fits
    );
    core.handle_planned(PlanOutcome::default());
    core.handle_message(list("b", 2, vec![file("big", 6 * BLOCK)], true))
        .unwrap();
    plan(&mut core);
    let writes = vec![new_file(6)];
    core.handle_space(&FrameSpace {
        writes,
        ..FrameSpace::default()
    })
}

#[test]
fn extras_go_first_when_the_files_need_their_room() {
    assert_eq!(deletes_first(true).unwrap(), SpaceVerdict::DeleteFirst);
}

#[test]
fn extras_do_not_go_first_after_a_directory_the_source_could_not_read() {
    assert!(matches!(
        deletes_first(false),
        Err(SessionError::NoSpace(_))
    ));
}
