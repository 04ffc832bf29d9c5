//! A hostile source over several streams, against a real `ferry serve --once
//! --max-streams 16`: it opens a session with the streams option (Hello bit 12), joins
//! streams with the key the `Welcome` handed out, and then floods them (`memory`), sends
//! frames a stream may not carry (`wrong_stream`), cuts a joined stream under a file
//! it was asked for (`cut`), or answers a large file's ranges wrong or against their
//! rules (`ranges`). The target must end a broken session with a protocol error
//! (exit 12) naming what was wrong, keep its memory bounded, leave nothing outside the
//! volume and no half-written file under a final name; a cut stream's file is asked
//! again on another stream and arrives whole.
//!
//! [`Multi`] is the raw source: one [`RawClient`] per stream, polled in turn for the
//! target's asks, since the target picks the stream of each file.

mod blocked_driver;
mod cut;
mod memory;
mod ranges;
mod wrong_stream;

use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ferry_proto::{Content, Entry, ErrorClass, Message, Meta, SessionOptions, Timestamp};
use tempfile::TempDir;

use crate::files::own_meta;
use crate::raw::{RawClient, Recv};
use crate::snapshot::{assert_untouched, Snapshot};
use crate::util::{Certs, Output, Server};

/// The target's credit per stream (`STREAM_CREDIT`): a file of this size listed takes a
/// stream's whole credit, so each such file is asked on a stream of its own.
const CREDIT: u64 = 16 << 20;

/// How long [`Multi::asks`] waits for the asks it expects.
const ASKS_GUARD: Duration = Duration::from_secs(20);

fn meta() -> Meta {
    Meta {
        mode: 0o644,
        uid: 0,
        gid: 0,
        mtime: Timestamp {
            sec: 1_600_000_000,
            nsec: 0,
        },
        xattrs: Vec::new(),
    }
}

fn file(name: &str, size: u64) -> Entry {
    Entry {
        name: name.as_bytes().to_vec(),
        meta: meta(),
        content: Content::File {
            size,
            checksum: None,
        },
    }
}

/// The content every test file has: byte `i` is `i % 251`.
fn content(size: u64) -> Vec<u8> {
    (0..size).map(|i| (i % 251) as u8).collect()
}

/// A file ask the target made: `index` on `stream`, whole or as a delta.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Ask {
    stream: u16,
    index: u64,
    delta: bool,
}

/// Resident memory of `pid` from /proc (`field` is `VmRSS` or `VmHWM`), KiB; `None` once
/// the process is gone.
fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Samples the peak resident memory (VmHWM) of `pid` until it exits; the last value seen.
fn watch_peak(pid: u32) -> JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut peak = 0;
        while let Some(kib) = status_kib(pid, "VmHWM") {
            peak = peak.max(kib);
            std::thread::sleep(Duration::from_millis(2));
        }
        peak
    })
}

/// A raw source of one multi-stream session with `serve --once`.
struct Multi {
    tmp: TempDir,
    vol: PathBuf,
    before: Snapshot,
    server: Server,
    peak: JoinHandle<u64>,
    /// The server's resident memory before the session.
    baseline_kib: u64,
    /// By stream number: stream 0 is the one that said Hello; `None` once cut.
    streams: Vec<Option<RawClient>>,
    _certs: Certs,
}

/// How `serve --once` ended.
struct Ended {
    server: Output,
    peak_kib: u64,
    baseline_kib: u64,
}

impl Multi {
    /// A volume `vol` (`prepare` puts what it should hold in it) next to a sentinel, a
    /// `serve --once --max-streams 16` on it, a session with the streams option and
    /// `joins` streams joined; the root sent.
    fn start(joins: u16, prepare: impl FnOnce(&Path)) -> Multi {
        Multi::start_with(SessionOptions::default(), joins, prepare)
    }

    /// [`Multi::start`] with `options` (the streams option added).
    fn start_with(options: SessionOptions, joins: u16, prepare: impl FnOnce(&Path)) -> Multi {
        let tmp = TempDir::new().expect("tempdir");
        let vol = tmp.path().join("vol");
        std::fs::create_dir(&vol).expect("mkdir vol");
        prepare(&vol);
        crate::files::write(&tmp.path().join("sentinel/s.txt"), b"sentinel\n", 0o644);
        let before = Snapshot::take(tmp.path());
        let certs = Certs::new();
        let server = Server::builder(&certs)
            .volume("v", &vol)
            .arg("--max-streams")
            .arg("16")
            .once()
            .start();
        let baseline_kib = status_kib(server.pid(), "VmRSS").expect("the server's memory");
        let peak = watch_peak(server.pid());
        let mut opener = RawClient::connect_as_client(&server.addr, &certs.client_dir());
        opener
            .send(&Message::Hello {
                version: ferry_proto::PROTOCOL_VERSION,
                volume: b"v".to_vec(),
                options: SessionOptions {
                    streams: true,
                    ..options
                },
                filter: Default::default(),
            })
            .expect("send Hello");
        let key = match opener.recv() {
            Recv::Msg(Message::Welcome {
                streams_max: 16,
                key: Some(key),
                ..
            }) => key,
            other => panic!("expected a Welcome of 16 streams with a key, got {other:?}"),
        };
        let mut streams = vec![Some(opener)];
        for stream in 1..=joins {
            let mut joined = RawClient::connect_as_client(&server.addr, &certs.client_dir());
            joined
                .send(&Message::Join {
                    version: ferry_proto::PROTOCOL_VERSION,
                    key: key.clone(),
                    stream,
                })
                .expect("send Join");
            match joined.recv() {
                Recv::Msg(Message::Joined { stream: s }) if s == stream => {}
                other => panic!("join of stream {stream}: expected Joined, got {other:?}"),
            }
            streams.push(Some(joined));
        }
        let mut multi = Multi {
            tmp,
            before,
            server,
            peak,
            baseline_kib,
            streams,
            _certs: certs,
            vol,
        };
        let root = own_meta(&multi.vol);
        multi.send(0, &Message::Root { meta: root }).expect("Root");
        multi
    }

    fn stream(&mut self, stream: u16) -> &mut RawClient {
        self.streams[usize::from(stream)]
            .as_mut()
            .unwrap_or_else(|| panic!("stream {stream} was cut"))
    }

    fn send(&mut self, stream: u16, message: &Message) -> std::io::Result<()> {
        self.stream(stream).send(message)
    }

    /// Lists `entries` in the root, and ends the listing.
    fn list(&mut self, entries: Vec<Entry>) {
        let count = entries.len() as u64;
        let list = Message::List {
            dir: Vec::new(),
            first: 0,
            entries,
            dir_done: true,
            dir_complete: true,
        };
        self.send(0, &list).expect("List");
        let end = Message::ListEnd {
            entries: count,
            read_errors: 0,
        };
        self.send(0, &end).expect("ListEnd");
    }

    /// Takes stream `stream`'s connection out (to move it to a thread, or to cut it).
    fn take(&mut self, stream: u16) -> RawClient {
        self.streams[usize::from(stream)]
            .take()
            .unwrap_or_else(|| panic!("stream {stream} was cut"))
    }

    /// Polls every stream in turn until the target has asked for `count` files; what
    /// else it sent (heartbeats, acks, signatures) is passed over; anything that ends
    /// the session fails the test.
    fn asks(&mut self, count: usize) -> Vec<Ask> {
        let start = Instant::now();
        let mut asks = Vec::new();
        while asks.len() < count {
            assert!(
                start.elapsed() < ASKS_GUARD,
                "the target asked for {asks:?} within {ASKS_GUARD:?}, not {count} files"
            );
            for stream in 0..self.streams.len() as u16 {
                let Some(client) = self.streams[usize::from(stream)].as_mut() else {
                    continue;
                };
                match client.try_recv(Duration::from_millis(5)) {
                    None => {}
                    Some(Recv::Msg(Message::Wants { indices })) => {
                        asks.extend(indices.into_iter().map(|index| Ask {
                            stream,
                            index,
                            delta: false,
                        }))
                    }
                    Some(Recv::Msg(Message::Want { index, delta })) => asks.push(Ask {
                        stream,
                        index,
                        delta,
                    }),
                    Some(Recv::Msg(
                        Message::Heartbeat
                        | Message::Ack { .. }
                        | Message::Signature { .. }
                        | Message::StreamGone { .. },
                    )) => {}
                    Some(other) => panic!("on stream {stream}, waiting for asks: {other:?}"),
                }
            }
        }
        asks
    }

    /// Stream 0's frames until the target ends the session: `Error`, `Done`, end of
    /// stream or a failed connection, the ending last; `on_msg` sees each on the way.
    fn until_end(&mut self, mut on_msg: impl FnMut(&mut RawClient, &Message)) -> Vec<Recv> {
        let client = self.stream(0);
        let mut seen = Vec::new();
        loop {
            let recv = client.recv();
            let end = matches!(
                recv,
                Recv::Msg(Message::Error { .. } | Message::Done { .. })
                    | Recv::Eof
                    | Recv::Failed(_)
            );
            if let Recv::Msg(message) = &recv {
                on_msg(client, message);
            }
            seen.push(recv);
            if end {
                return seen;
            }
        }
    }

    /// Closes every connection and waits for `serve --once` to exit.
    fn finish(self) -> (Ended, Finished) {
        let Multi {
            tmp,
            vol,
            before,
            server,
            peak,
            baseline_kib,
            streams,
            _certs,
        } = self;
        drop(streams);
        let server = server.finish();
        let peak_kib = peak.join().expect("memory watcher");
        let ended = Ended {
            server,
            peak_kib,
            baseline_kib,
        };
        (ended, Finished { tmp, vol, before })
    }
}

/// The files of a finished session, to look at.
struct Finished {
    tmp: TempDir,
    vol: PathBuf,
    before: Snapshot,
}

impl Finished {
    /// Nothing outside the volume changed, and none of `names` is in the volume under its
    /// final name (what was cut off may only be a partial).
    fn assert_contained_and_absent(&self, names: &[&str]) {
        let after = Snapshot::take(self.tmp.path());
        assert_untouched(&self.before.clone().without(b"vol"), &after.without(b"vol"));
        for name in names {
            let path = self.vol.join(name);
            assert!(
                std::fs::symlink_metadata(&path).is_err(),
                "{} exists after a refused session",
                path.display()
            );
        }
    }
}

impl Ended {
    /// The session ended with a protocol error whose message holds `needle`, sent to the
    /// source and logged, and `serve --once` exited 12.
    fn assert_protocol_error(&self, seen: &[Recv], needle: &str) {
        let said = match seen.last() {
            Some(Recv::Msg(Message::Error {
                class: ErrorClass::Protocol,
                message,
            })) => message,
            other => panic!(
                "expected a protocol Error, the target's last word was {other:?}\n{}",
                self.server.dump()
            ),
        };
        assert!(
            said.contains(needle),
            "the error says {said:?}, not {needle:?}"
        );
        assert_eq!(self.server.code, Some(12), "{}", self.server.dump());
        assert!(
            self.server.stderr.contains(needle),
            "the log does not say {needle:?}:\n{}",
            self.server.dump()
        );
    }

    /// What the session cost above the server's resident memory before it, KiB.
    fn growth_kib(&self) -> u64 {
        assert!(self.peak_kib > 0, "the server's memory was never sampled");
        self.peak_kib.saturating_sub(self.baseline_kib)
    }
}
