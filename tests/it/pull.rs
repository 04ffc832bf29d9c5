//! `ferry pull`: the client is the target of the copy (and enforces confinement), the
//! server the source; read-only exports accept pulls and refuse pushes.

use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::fidelity::build_fidelity_tree;
use crate::files::{mkdir, random_bytes, set_mtime, write};
use crate::snapshot::{assert_trees_equal, assert_untouched, Snapshot};
use crate::util::{pull, push, Certs, Server};

/// A served directory `vol` (read-only or not) and a local `dest` to pull into.
struct PullFixture {
    tmp: tempfile::TempDir,
    vol: std::path::PathBuf,
    dest: std::path::PathBuf,
    certs: Certs,
    server: Server,
}

impl PullFixture {
    fn new(read_only: bool, fill: impl FnOnce(&Path)) -> PullFixture {
        let tmp = tempfile::TempDir::new().expect("tempdir");
        let vol = tmp.path().join("vol");
        fs::create_dir(&vol).expect("mkdir vol");
        fill(&vol);
        let dest = tmp.path().join("dest");
        let certs = Certs::new();
        let builder = Server::builder(&certs);
        let server = if read_only {
            builder.read_only_volume("vol", &vol).start()
        } else {
            builder.volume("vol", &vol).start()
        };
        PullFixture {
            tmp,
            vol,
            dest,
            certs,
            server,
        }
    }

    fn pull(&self) -> crate::util::Push {
        pull(&self.certs, &self.server.url("vol"), &self.dest)
    }
}

#[test]
fn fidelity_pull_reproduces_every_entry_and_attribute() {
    let fx = PullFixture::new(true, build_fidelity_tree);
    fx.pull().run().assert_ok();
    assert_trees_equal(&fx.vol, &fx.dest);
}

#[test]
fn second_pull_of_unchanged_volume_transfers_nothing_and_reports_the_source_counts() {
    let fx = PullFixture::new(true, build_fidelity_tree);
    let first = fx.pull().json().run();
    first.assert_ok();
    assert!(first.stat("files_transferred") > 0, "{}", first.summary());
    // Literal bytes are the server's count: data only, holes are not sent.
    let literal = first.stat("bytes_literal");
    assert!(
        literal > 1 << 20 && literal <= first.stat("bytes_transferred"),
        "a first pull sends its data as literals: {}",
        first.summary()
    );
    let second = fx.pull().json().run();
    second.assert_ok();
    // files_total and files_unchanged are the server's counts (SourceDone); hard-link
    // names count in the total, not as unchanged files.
    let total = second.stat("files_total");
    let unchanged = second.stat("files_unchanged");
    assert!(
        unchanged > 0 && unchanged <= total,
        "summary: {}",
        second.summary()
    );
    for field in ["files_transferred", "bytes_literal", "bytes_transferred"] {
        assert_eq!(second.stat(field), 0, "{field}: {}", second.summary());
    }
    assert_trees_equal(&fx.vol, &fx.dest);
}

#[test]
fn pull_after_a_scattered_change_travels_as_a_delta() {
    const SIZE: usize = 8 << 20;
    let fx = PullFixture::new(false, |vol| {
        write(
            &vol.join("disk.img"),
            &random_bytes("pull base", SIZE),
            0o644,
        );
        set_mtime(&vol.join("disk.img"), 1_700_000_000, 1);
    });
    fx.pull().run().assert_ok();
    let f = OpenOptions::new()
        .write(true)
        .open(fx.vol.join("disk.img"))
        .unwrap();
    for i in 0..8u64 {
        f.write_all_at(
            &random_bytes(&format!("patch {i}"), 4096),
            i * (1 << 20) + 777,
        )
        .unwrap();
    }
    drop(f);
    set_mtime(&fx.vol.join("disk.img"), 1_700_000_100, 2);
    let out = fx.pull().json().run();
    out.assert_ok();
    let literal = out.stat("bytes_literal");
    assert_eq!(out.stat("files_delta"), 1, "{}", out.summary());
    assert!(
        literal > 0 && literal < SIZE as u64 / 10,
        "bytes_literal {literal} of an {SIZE}-byte file: {}",
        out.summary()
    );
    assert_trees_equal(&fx.vol, &fx.dest);
}

#[test]
fn pull_with_delete_removes_local_extras_but_keeps_excluded_entries_and_lost_found() {
    let fx = PullFixture::new(true, |vol| {
        write(&vol.join("kept"), b"from the volume\n", 0o644);
        mkdir(&vol.join("lost+found"), 0o700);
        write(&vol.join("lost+found/#123"), b"fsck debris\n", 0o600);
    });
    mkdir(&fx.dest, 0o755);
    write(&fx.dest.join("extra"), b"only here\n", 0o644);
    write(
        &fx.dest.join("local.cache"),
        b"excluded, so protected\n",
        0o644,
    );
    mkdir(&fx.dest.join("lost+found"), 0o700);
    write(
        &fx.dest.join("lost+found/mine"),
        b"the local fsck's\n",
        0o600,
    );

    fx.pull()
        .delete()
        .arg("--exclude")
        .arg("*.cache")
        .run()
        .assert_ok();
    assert!(!fx.dest.join("extra").exists(), "extra survived --delete");
    assert_eq!(
        fs::read(fx.dest.join("kept")).unwrap(),
        b"from the volume\n"
    );
    assert!(
        fx.dest.join("local.cache").exists(),
        "an excluded file was deleted"
    );
    assert!(
        fx.dest.join("lost+found/mine").exists(),
        "the local lost+found was touched"
    );
    assert!(
        !fx.dest.join("lost+found/#123").exists(),
        "the served lost+found was copied"
    );
}

#[test]
fn pull_creates_a_missing_destination_but_not_its_parents() {
    let fx = PullFixture::new(true, |vol| write(&vol.join("f"), b"x\n", 0o644));
    fx.pull().run().assert_ok();
    assert_eq!(fs::read(fx.dest.join("f")).unwrap(), b"x\n");

    let deep = fx.tmp.path().join("no/such/dir");
    let out = pull(&fx.certs, &fx.server.url("vol"), &deep).run();
    out.assert_code(1);
    assert!(
        out.stderr().contains("destination") && out.stderr().contains("no/such/dir"),
        "the refusal does not name the destination: {}",
        out.stderr()
    );
    assert!(!fx.tmp.path().join("no").exists(), "parents were created");
}

#[test]
fn push_to_a_read_only_export_is_refused_and_changes_nothing() {
    let fx = PullFixture::new(true, build_fidelity_tree);
    let before = Snapshot::take(&fx.vol);
    let src = fx.tmp.path().join("src");
    fs::create_dir(&src).unwrap();
    write(&src.join("intruder"), b"must not land\n", 0o644);
    for delete in [false, true] {
        let mut attempt = push(&fx.certs, &src, &fx.server.url("vol"));
        if delete {
            attempt = attempt.delete();
        }
        let out = attempt.run();
        out.assert_code(5);
        assert!(
            out.stderr().contains("read-only") && out.stderr().contains("pulled from"),
            "the refusal does not say the volume is read-only and what it allows: {}",
            out.stderr()
        );
    }
    assert_untouched(&before, &Snapshot::take(&fx.vol));
    // Still pullable.
    fx.pull().run().assert_ok();
    assert_trees_equal(&fx.vol, &fx.dest);
}

#[test]
fn a_pull_never_writes_to_the_served_volume() {
    let fx = PullFixture::new(false, build_fidelity_tree);
    let before = Snapshot::take(&fx.vol);
    mkdir(&fx.dest, 0o755);
    write(&fx.dest.join("local-only"), b"stays here\n", 0o644);
    fx.pull().delete().run().assert_ok();
    assert_untouched(&before, &Snapshot::take(&fx.vol));
    assert!(!fx.vol.join("local-only").exists());
}

/// A probe creates and removes a temp file to show a push could write: a read-only
/// export refuses it even in a Hello that also asks to pull.
#[test]
fn a_probe_of_a_read_only_export_is_refused_even_with_pull_set() {
    use crate::raw::{RawClient, Recv};
    use ferry_proto::{Message, RefuseReason, SessionOptions, PROTOCOL_VERSION};
    let fx = PullFixture::new(true, |vol| write(&vol.join("f"), b"x\n", 0o644));
    let before = Snapshot::take(&fx.vol);
    for pull in [false, true] {
        let mut client = RawClient::connect_as_client(&fx.server.addr, &fx.certs.client_dir());
        client
            .send(&Message::Hello {
                version: PROTOCOL_VERSION,
                volume: b"vol".to_vec(),
                options: SessionOptions {
                    probe: true,
                    pull,
                    ..SessionOptions::default()
                },
                filter: Default::default(),
            })
            .expect("send Hello");
        match client.recv() {
            Recv::Msg(Message::Refused {
                reason: RefuseReason::ReadOnly,
                ..
            }) => {}
            other => panic!("probe (pull: {pull}) of a read-only export: {other:?}"),
        }
    }
    assert_untouched(&before, &Snapshot::take(&fx.vol));
}
