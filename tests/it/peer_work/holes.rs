//! Declared sizes and holes: refused when larger than the filesystem, and hashed only
//! while the session lasts (peer gone, SIGTERM), for `serve` and for `ferry pull`.

use super::*;

#[test]
fn serve_refuses_a_file_larger_than_its_filesystem_and_its_hole_costs_nothing() {
    let tmp = TempDir::new().unwrap();
    let vol = tmp.path().join("vol");
    std::fs::create_dir(&vol).unwrap();
    let (_certs, server, mut client) = serve_with_raw_source(&vol);
    let pid = server.pid();
    let [list, end] = listing(vec![file(b"huge.img", 1 << 60)]);
    client.send(&list).expect("send the listing");
    let answer = want_or_file_error(&mut client);
    // The hole goes out whatever the answer (a target that asked for the file hashes
    // it), before the listing's end (so the session is still reading).
    let _ = client.send(&hole(0, 1 << 60));
    let _ = client.send(&end);
    drop(client);
    let since = cpu_ticks(pid);
    await_exit(pid, since, "serve after a 2^60-byte hole");
    let out = server.finish();
    match &answer {
        Message::FileError { path, message } => {
            assert_eq!(path, b"huge.img");
            assert!(
                message.contains(&(1u64 << 60).to_string()) && message.contains("filesystem"),
                "the error names both sizes: {message}"
            );
        }
        other => panic!("the target asked for a 2^60-byte file: {other:?}"),
    }
    // The hole was for a file nobody asked for.
    assert_eq!(out.code, Some(12), "{}", out.dump());
}

#[test]
fn serve_stops_hashing_a_hole_when_the_source_leaves() {
    let tmp = TempDir::new().unwrap();
    let big = Tmpfs::mount(&tmp.path().join("vol"), "1t");
    let size = big.capacity();
    let (_certs, server, mut client) = serve_with_raw_source(&big.dir);
    let pid = server.pid();
    for m in listing(vec![file(b"disk.img", size)]) {
        client.send(&m).expect("send the listing");
    }
    let want = want_or_file_error(&mut client);
    assert!(matches!(want, Message::Want { index: 0, .. }), "{want:?}");
    client.send(&hole(0, size)).expect("send the hole");
    await_hashing(pid);
    let since = cpu_ticks(pid);
    drop(client);
    await_exit(pid, since, "serve after the source left mid-hole");
    let out = server.finish();
    assert_eq!(out.code, Some(10), "{}", out.dump());
    drop(big);
}

/// A `serve` (not `--once`) hashing a hole as large as its filesystem allows; then,
/// if `source_leaves`, the source leaves and the apply workers stop (serve itself
/// goes on serving); then SIGTERM: serve exits 20, promptly.
fn sigterm_while_hashing(source_leaves: bool) {
    let tmp = TempDir::new().unwrap();
    let big = Tmpfs::mount(&tmp.path().join("vol"), "1t");
    let size = big.capacity();
    let certs = Certs::new();
    let server = Server::builder(&certs).volume("v", &big.dir).start();
    let pid = server.pid();
    let mut client = RawClient::connect_as_client(&server.addr, &certs.client_dir());
    client.start_session("v");
    let root = Message::Root {
        meta: own_meta(&big.dir),
    };
    for m in [root]
        .into_iter()
        .chain(listing(vec![file(b"disk.img", size)]))
    {
        client.send(&m).expect("send the listing");
    }
    let want = want_or_file_error(&mut client);
    assert!(matches!(want, Message::Want { index: 0, .. }), "{want:?}");
    client.send(&hole(0, size)).expect("send the hole");
    await_hashing(pid);
    let since = cpu_ticks(pid);
    if source_leaves {
        drop(client);
        await_condition("the apply workers stopping", EXIT_GUARD, || {
            threads(pid, "ferry-apply").is_empty()
        });
    }
    let target = rustix::process::Pid::from_raw(pid as i32).expect("pid");
    rustix::process::kill_process(target, rustix::process::Signal::TERM).expect("SIGTERM");
    await_exit(pid, since, "serve after SIGTERM mid-hole");
    let out = server.finish();
    assert_eq!(out.code, Some(20), "{}", out.dump());
    drop(big);
}

#[test]
fn serve_exits_20_promptly_on_sigterm_while_hashing_a_hole() {
    sigterm_while_hashing(false);
}

/// The case that hung: the session was over (the source left) but its worker went on
/// hashing, and a signalled process waited for it.
#[test]
fn serve_stops_hashing_when_the_source_leaves_and_exits_20_on_sigterm() {
    sigterm_while_hashing(true);
}

#[test]
fn pull_refuses_a_file_larger_than_its_destination_and_exits() {
    let tmp = TempDir::new().unwrap();
    let dest = tmp.path().join("dest");
    std::fs::create_dir(&dest).unwrap();
    let (code, out) = pull_from_hostile(
        &dest,
        vec![file(b"huge.img", 1 << 60)],
        vec![hole(0, 1 << 60)],
        |_| Vec::new(),
    );
    assert!(
        out.contains("huge.img") && out.contains(&(1u64 << 60).to_string()),
        "the pull names the refused file and its size:\n{out}"
    );
    // The hole was for a file the puller never asked for.
    assert_eq!(code, Some(12), "{out}");
}

#[test]
fn pull_stops_hashing_a_hole_when_the_server_leaves() {
    let tmp = TempDir::new().unwrap();
    let big = Tmpfs::mount(&tmp.path().join("dest"), "1t");
    let size = big.capacity();
    let (code, out) = pull_from_hostile(&big.dir, vec![file(b"disk.img", size)], vec![], {
        move |index| vec![Step::Send(hole(index, size)), Step::CloseWrite]
    });
    assert_eq!(code, Some(10), "{out}");
    drop(big);
}

#[test]
fn a_file_larger_than_the_target_filesystem_fails_alone_with_exit_23() {
    let tmp = TempDir::new().unwrap();
    let src = tmp.path().join("src");
    write(&src.join("a.txt"), b"first\n", 0o644);
    write(&src.join("z/b.txt"), b"second\n", 0o644);
    // Sparse: 64 MiB long, nothing allocated.
    let huge = std::fs::File::create(src.join("huge.img")).unwrap();
    huge.set_len(64 << 20).unwrap();
    drop(huge);
    let small = Tmpfs::mount(&tmp.path().join("dst"), "4m");
    let capacity = small.capacity();
    let certs = Certs::new();
    let server = Server::builder(&certs).volume("vol", &small.dir).start();
    let out = push(&certs, &src, &server.url("vol")).run();
    out.assert_code(23);
    let err = out.stderr();
    assert!(
        err.contains("huge.img")
            && err.contains(&(64u64 << 20).to_string())
            && err.contains(&capacity.to_string()),
        "the error names the file and both sizes:\n{err}"
    );
    assert_eq!(read(&small.dir.join("a.txt")), b"first\n");
    assert_eq!(read(&small.dir.join("z/b.txt")), b"second\n");
    let left: Vec<_> = std::fs::read_dir(&small.dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(
        !left.iter().any(|n| n.to_string_lossy().contains("huge")),
        "nothing of the refused file was written: {left:?}"
    );
    drop(server);
    drop(small);
}

/// The server does not leave: it answers the Want with one 37-byte Hole frame as large as
/// the destination filesystem (a tmpfs of 1 TiB here; a network filesystem such as EFS
/// reports exabytes), then its FileEnd, and stays. The capacity bound lets the hole
/// through, and the puller hashes 1 TiB of zeros (minutes of a core; years for an
/// exabyte) before it reads the FileEnd: a peer's number still buys work without bound
/// while the peer stays. The pull must get through the file (a mismatch, asked again,
/// then the server closes) within the hang guard.
#[test]
#[ignore = "known limit (issue #14, item 2): hashing a hole costs its length; bounding it \
            for a peer that stays needs a file hash that takes holes by length"]
fn a_hole_as_large_as_the_destination_from_a_staying_server_costs_the_puller_bounded_work() {
    let tmp = TempDir::new().unwrap();
    let big = Tmpfs::mount(&tmp.path().join("dest"), "1t");
    let size = big.capacity();
    let mut asked = 0;
    let (code, out) = pull_from_hostile(&big.dir, vec![file(b"disk.img", size)], vec![], {
        move |index| {
            asked += 1;
            match asked {
                1 => vec![
                    Step::Send(hole(index, size)),
                    Step::Send(Message::FileEnd {
                        index,
                        size,
                        hash: [7; 32],
                    }),
                ],
                _ => vec![Step::CloseWrite],
            }
        }
    });
    assert!(code.is_some_and(|c| c != 0), "{out}");
    drop(big);
}
