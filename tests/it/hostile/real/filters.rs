//! A source whose filter is the costliest the limits allow, then a listing of long paths:
//! the target matches every entry against every rule, and must still finish quickly (the
//! CPU time of the `serve` process); and a Hello over the filter budget, refused before
//! any session (the in-process target starts after the Hello).

use super::*;

use ferry_proto::filter::{MAX_FILTER_BYTES, MAX_RULES};
use ferry_proto::{Filter, Rule, RuleKind, SessionOptions, PROTOCOL_VERSION};

/// The costliest filter the limits allow: every rule live at every byte (`**` first) and
/// none matching (it ends in `Z`, which no listed name holds), so all are tried.
fn worst_filter() -> Filter {
    let len = MAX_FILTER_BYTES / MAX_RULES;
    let mut pattern = b"**".to_vec();
    while pattern.len() < len - 1 {
        pattern.extend_from_slice(b"a*");
    }
    pattern.truncate(len - 1);
    pattern.push(b'Z');
    let rule = Rule::new(RuleKind::Exclude, &pattern).unwrap();
    Filter::checked(vec![rule; MAX_RULES]).expect("within the limits")
}

/// A 255-byte name (`NAME_MAX`) starting with `i`.
fn long_name(i: usize) -> Vec<u8> {
    let mut name = format!("{i:03}-").into_bytes();
    name.resize(255, b'a');
    name
}

/// The CPU time (user + system, in clock ticks of 1/100 s) of process `pid`, sampled
/// until it is gone; the last value seen.
fn watch_cpu_ticks(pid: u32) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut last = 0;
        loop {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return last;
            };
            // Fields after the command name (which may hold spaces) in parentheses.
            let fields: Vec<&str> = stat
                .rsplit_once(')')
                .map(|(_, rest)| rest.split_whitespace().collect())
                .unwrap_or_default();
            match (fields.get(11), fields.get(12)) {
                (Some(utime), Some(stime)) => {
                    last = utime.parse::<u64>().unwrap_or(0) + stime.parse::<u64>().unwrap_or(0)
                }
                _ => return last,
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    })
}

/// Far above what the target needs (well under a second in a debug build) and far below
/// what matching with backtracking took (over a minute): it only catches the blow-up.
const CPU_BOUND_TICKS: u64 = 20 * 100;

#[test]
fn the_costliest_filter_allowed_over_long_paths_costs_the_target_little_cpu() {
    let tmp = TempDir::new().unwrap();
    let vol = tmp.path().join("vol");
    std::fs::create_dir(&vol).unwrap();
    let certs = Certs::new();
    let server = Server::builder(&certs).volume("v", &vol).once().start();
    let cpu = watch_cpu_ticks(server.pid());
    let mut client = RawClient::connect_as_client(&server.addr, &certs.client_dir());
    client
        .send(&Message::Hello {
            version: PROTOCOL_VERSION,
            volume: b"v".to_vec(),
            options: SessionOptions::default(),
            filter: worst_filter(),
        })
        .expect("send Hello");
    match client.recv() {
        Recv::Msg(Message::Welcome { .. }) => {}
        other => panic!("expected Welcome for a filter within the limits, got {other:?}"),
    }
    let root = own_meta(&vol);
    client
        .send(&Message::Root { meta: root })
        .expect("send Root");
    // 15 nested directories of 255-byte names, then 400 files of 255-byte names in the
    // deepest: paths of 4095 bytes, the longest the limits allow.
    const DEPTH: usize = 15;
    const FILES: usize = 400;
    let mut parent = Vec::new();
    for level in 0..DEPTH {
        let name = long_name(900 + level);
        client
            .send(&list(&parent, level as u64, vec![dir(&name)], true))
            .expect("send List");
        if !parent.is_empty() {
            parent.push(b'/');
        }
        parent.extend_from_slice(&name);
    }
    let files = (0..FILES).map(|i| file(&long_name(i))).collect();
    client
        .send(&list(&parent, DEPTH as u64, files, true))
        .expect("send List");
    client
        .send(&Message::ListEnd {
            entries: (DEPTH + FILES) as u64,
            read_errors: 0,
        })
        .expect("send ListEnd");
    let seen = client.recv_until_end_with(|client, msg| {
        if let Message::Want { index, .. } = *msg {
            send_ignoring_hangup(
                client,
                &[
                    Message::Data {
                        index,
                        offset: 0,
                        bytes: FILE_DATA.to_vec().into(),
                    },
                    Message::FileEnd {
                        index,
                        size: FILE_DATA.len() as u64,
                        hash: *blake3::hash(FILE_DATA).as_bytes(),
                    },
                ],
            );
        }
    });
    drop(client);
    let out = server.finish();
    let ticks = cpu.join().expect("CPU watcher");
    eprintln!(
        "target CPU for {FILES} files at depth {DEPTH} under {MAX_RULES} rules: {:.2} s",
        ticks as f64 / 100.0
    );
    assert!(
        matches!(seen.last(), Some(Recv::Msg(Message::Done { .. }))),
        "the session did not finish: {seen:?}\n{}",
        out.dump()
    );
    assert_eq!(out.code, Some(0), "{}", out.dump());
    let deepest = String::from_utf8(parent).unwrap();
    assert_eq!(
        std::fs::read_dir(vol.join(deepest)).unwrap().count(),
        FILES,
        "every file arrived"
    );
    assert!(ticks > 0, "the target's CPU time was never sampled");
    assert!(
        ticks <= CPU_BOUND_TICKS,
        "the target spent {:.2} s of CPU on {FILES} entries, over the bound of {} s",
        ticks as f64 / 100.0,
        CPU_BOUND_TICKS / 100
    );
}

#[test]
fn a_hello_over_the_filter_budget_is_refused() {
    let tmp = TempDir::new().unwrap();
    let vol = tmp.path().join("vol");
    std::fs::create_dir(&vol).unwrap();
    let certs = Certs::new();
    let server = Server::builder(&certs).volume("v", &vol).once().start();
    let mut client = RawClient::connect_as_client(&server.addr, &certs.client_dir());
    // One byte over: the encoder does not check, the target's decoder must.
    let rule = |len: usize| Rule::new(RuleKind::Exclude, &vec![b'x'; len]).unwrap();
    let mut rules = vec![rule(MAX_FILTER_BYTES / MAX_RULES); MAX_RULES];
    rules.pop();
    rules.push(rule(MAX_FILTER_BYTES / MAX_RULES + 1));
    client
        .send(&Message::Hello {
            version: PROTOCOL_VERSION,
            volume: b"v".to_vec(),
            options: SessionOptions::default(),
            filter: Filter::new(rules),
        })
        .expect("send Hello");
    let seen = client.recv_until_end();
    drop(client);
    // A refused Hello is not a session: `--once` keeps serving (dropping `server` ends it).
    // The client is authenticated: the target's `Error` names the limit.
    match seen.iter().find(|r| matches!(r, Recv::Msg(_))) {
        Some(Recv::Msg(Message::Error {
            class: ErrorClass::Protocol,
            message,
        })) => assert!(
            message.contains("filter.total_bytes") && message.contains("over the limit of 65536"),
            "{message}"
        ),
        other => panic!("expected a refusal (a protocol Error naming the limit), got {other:?}"),
    }
    drop(server);
}
