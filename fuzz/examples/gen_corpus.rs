//! Writes the seed corpus, `fuzz/corpus/<target>/seed-*`, from real encodings: frames of
//! every message type from `ferry_proto::encode`, signatures and deltas from `ferry_delta`,
//! and proxy answers as real proxies (squid, tinyproxy) send them, plus a few broken ones.
//!
//! `cargo run --example gen_corpus` from `fuzz/` (with `RUSTC_BOOTSTRAP=1`, see README.md).
//! Deterministic: running it again rewrites the same files. Inputs the fuzzer found live
//! next to the seeds under their SHA-1 names and are left alone.

use std::fs;
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use ferry_delta::{diff_segment, signature, BlockPlan, PeerSignature};
use ferry_fuzz::delta_checks::{basis, join_apply_input, noise};
use ferry_fuzz::proto_checks::list_input;
use ferry_proto::*;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let mut count = 0;
    for (target, seeds) in [
        ("frame_decoder", frame_seeds()),
        ("list_entry", list_seeds()),
        ("signature_parser", signature_seeds()),
        ("delta_apply", delta_seeds()),
        ("proxy_reply", reply_seeds()),
        ("proxy_config", config_seeds()),
        ("filter", filter_seeds()),
        ("session", session_seeds()),
    ] {
        let dir = root.join(target);
        fs::create_dir_all(&dir).expect("create the corpus directory");
        for (name, bytes) in seeds {
            let path: PathBuf = dir.join(format!("seed-{name}"));
            fs::write(&path, bytes).expect("write a seed");
            count += 1;
        }
    }
    println!("wrote {count} seeds under {}", root.display());
}

type Seeds = Vec<(String, Vec<u8>)>;

/// `session` inputs: a control byte (bits 0-4: delete, dry_run, checksum, itemize,
/// delete_excluded; bit 5: a `*.log` exclude; bit 6: a valid `Root` first), then the
/// source's frames of a whole session, each file's data right after the listing (the
/// target wants every new file).
fn session_seeds() -> Seeds {
    const ROOT: u8 = 64;
    let data = |index: u64, bytes: &[u8]| {
        let mut out = frame(&Message::Data {
            index,
            offset: 0,
            bytes: Bytes::copy_from_slice(bytes),
        });
        out.extend(frame(&Message::FileEnd {
            index,
            size: bytes.len() as u64,
            hash: *blake3::hash(bytes).as_bytes(),
        }));
        out
    };
    let file = |name: &str, size: u64| entry(name, Content::File { size, checksum: None });
    let list = |dir: &str, first: u64, entries: Vec<Entry>| {
        frame(&Message::List {
            dir: dir.as_bytes().to_vec(),
            first,
            entries,
            dir_done: true,
            dir_complete: true,
        })
    };
    let end = |entries: u64| {
        frame(&Message::ListEnd {
            entries,
            read_errors: 0,
        })
    };
    let seed = |name: &str, control: u8, parts: Vec<Vec<u8>>| {
        let mut input = vec![control];
        input.extend(parts.concat());
        (name.to_string(), input)
    };
    vec![
        seed("empty", ROOT, vec![list("", 0, vec![]), end(0)]),
        seed(
            "one-file",
            ROOT,
            vec![list("", 0, vec![file("new.txt", 5)]), end(1), data(0, b"12345")],
        ),
        seed(
            "dir-and-link",
            ROOT | 8,
            vec![
                list(
                    "",
                    0,
                    vec![
                        entry("d", Content::Dir),
                        file("f", 3),
                        entry("l", Content::Symlink { target: b"f".to_vec() }),
                        entry("h", Content::HardLink { leader: 1, path: b"f".to_vec() }),
                    ],
                ),
                list("d", 4, vec![file("g", 2)]),
                end(5),
                data(1, b"abc"),
                data(4, b"gg"),
            ],
        ),
        seed(
            "delete",
            ROOT | 1 | 32,
            vec![list("", 0, vec![file("pre.txt", 13)]), end(1)],
        ),
        seed(
            "delete-excluded-dry-run",
            ROOT | 1 | 2 | 16 | 32,
            vec![list("", 0, vec![]), end(0)],
        ),
        seed(
            "over-target-symlinks",
            ROOT,
            vec![
                list("", 0, vec![file("out-link", 2), entry("out-dir", Content::Dir)]),
                list("out-dir", 2, vec![file("planted", 2)]),
                end(3),
                data(0, b"xx"),
                data(2, b"yy"),
            ],
        ),
        seed("no-root", 0, vec![list("", 0, vec![file("a", 1)]), end(1), data(0, b"a")]),
    ]
}

/// `filter` inputs: a control byte (bit 0: the path is a directory; bits 1-7: which of
/// the first rules include), the patterns and the path, NUL-separated.
fn filter_seeds() -> Seeds {
    let seed = |name: &str, control: u8, patterns: &[&[u8]], path: &[u8]| {
        let mut input = vec![control];
        for p in patterns {
            input.extend_from_slice(p);
            input.push(0);
        }
        input.extend_from_slice(path);
        (name.to_string(), input)
    };
    let stars_a = b"*a".repeat(30);
    let any_runs = b"**/".repeat(20);
    vec![
        seed("name", 0, &[b"*.log"], b"x/y/a.log"),
        seed("include-first", 0b10, &[b"keep.log", b"*.log"], b"keep.log"),
        seed("anchored-dir", 1, &[b"/cache/"], b"cache"),
        seed("trailing", 0, &[b"a/b"], b"x/a/b"),
        seed("any-run", 1, &[b"/a/**", b"**/tmp"], b"x/y/tmp"),
        seed("question", 0, &[b"?.txt", b"d*/f"], b"dir/f"),
        seed("mixed-stars", 0, &[b"**a*b"], b"a/ab"),
        seed("lost-found", 1, &[b"/lost+found/"], b"lost+found"),
        seed("hostile-stars", 0, &[&stars_a, b"*a*a*a*a*a*a*a*ab"], &[b'a'; 300]),
        seed("hostile-any-runs", 0, &[&any_runs], &b"a/".repeat(100)),
        seed("refused", 0, &[b"", b"/", b"ok"], b"ok"),
    ]
}

fn frame(message: &Message) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode(message, &mut out);
    out.to_vec()
}

fn meta(xattrs: usize) -> Meta {
    Meta {
        mode: 0o644,
        uid: 1000,
        gid: 1000,
        mtime: Timestamp {
            sec: 1_700_000_000,
            nsec: 123_456_789,
        },
        xattrs: (0..xattrs)
            .map(|i| Xattr {
                name: format!("user.k{i}").into_bytes(),
                value: vec![b'v'; i + 1],
            })
            .collect(),
    }
}

fn entry(name: &str, content: Content) -> Entry {
    Entry {
        name: name.as_bytes().to_vec(),
        meta: meta(0),
        content,
    }
}

/// One entry of every kind, and a few variations.
fn entries() -> Vec<Entry> {
    vec![
        entry(
            "file",
            Content::File {
                size: 4096,
                checksum: None,
            },
        ),
        entry(
            "summed",
            Content::File {
                size: 1,
                checksum: Some([7; 32]),
            },
        ),
        entry("dir", Content::Dir),
        entry(
            "link",
            Content::Symlink {
                target: b"../x/y".to_vec(),
            },
        ),
        entry(
            "hard",
            Content::HardLink {
                leader: 0,
                path: b"dir/file".to_vec(),
            },
        ),
        entry(
            "fifo",
            Content::Special {
                kind: SpecialKind::Fifo,
                rdev: 0,
            },
        ),
        entry(
            "blk",
            Content::Special {
                kind: SpecialKind::BlockDevice,
                rdev: 0x0803,
            },
        ),
        Entry {
            name: b"\xff\x1bodd name".to_vec(),
            meta: meta(3),
            content: Content::File {
                size: u64::MAX,
                checksum: None,
            },
        },
    ]
}

fn list(entries: Vec<Entry>, dir: &[u8], dir_done: bool) -> Message {
    Message::List {
        dir: dir.to_vec(),
        first: 0,
        entries,
        dir_done,
        dir_complete: true,
    }
}

fn messages() -> Vec<Message> {
    vec![
        Message::Hello {
            version: PROTOCOL_VERSION,
            volume: b"pvc-data".to_vec(),
            options: SessionOptions {
                delete: true,
                checksum: true,
                streams: true,
                ..SessionOptions::default()
            },
            filter: Default::default(),
        },
        Message::Welcome {
            version: PROTOCOL_VERSION,
            space: Some(VolumeSpace {
                free_bytes: 1 << 40,
                reserved_bytes: 1 << 30,
                free_inodes: 1 << 20,
                block_size: 4096,
            }),
            cores: 8,
            streams_max: 4,
            key: Some(SessionKey::new([0x4b; 32])),
        },
        Message::Join {
            version: PROTOCOL_VERSION,
            key: SessionKey::new([0x4b; 32]),
            stream: 2,
        },
        Message::Joined { stream: 2 },
        Message::WantRange {
            index: 3,
            offset: RANGE,
            len: RANGE,
            have: true,
            cv: [0x3c; 32],
        },
        Message::RangeEnd {
            index: 3,
            offset: RANGE,
            len: RANGE,
            same: false,
            cv: [0x3c; 32],
        },
        Message::Wants {
            indices: vec![3, 4, 9],
        },
        Message::Files {
            files: vec![
                SmallFile {
                    index: 3,
                    hash: *blake3::hash(b"hello, ferry").as_bytes(),
                    bytes: Bytes::from_static(b"hello, ferry"),
                },
                SmallFile {
                    index: 4,
                    hash: *blake3::hash(b"").as_bytes(),
                    bytes: Bytes::new(),
                },
            ],
        },
        Message::StreamGone { stream: 2 },
        Message::Refused {
            reason: RefuseReason::UnknownVolume,
            message: "no volume pvc-data".into(),
        },
        Message::Root { meta: meta(2) },
        list(entries(), b"", true),
        Message::ListEnd {
            entries: 8,
            read_errors: 1,
        },
        Message::Ack { through: 8 },
        Message::Want {
            index: 3,
            delta: true,
        },
        Message::Resume {
            index: 3,
            offset: 1 << 16,
            hash: [0x5c; 32],
        },
        Message::Signature {
            index: 3,
            bytes: Bytes::from(signature(&basis(), plan(2048, 8))),
            last: true,
        },
        Message::Data {
            index: 3,
            offset: 0,
            bytes: Bytes::from_static(b"hello, ferry"),
        },
        Message::Hole {
            index: 3,
            offset: 12,
            len: 1 << 20,
        },
        Message::Delta {
            index: 3,
            offset: 0,
            len: 4,
            bytes: Bytes::from_static(b"\x72\x73\x02\x36\x45\x00\x04\x00"),
        },
        Message::FileEnd {
            index: 3,
            size: 12,
            hash: [0xab; 32],
        },
        Message::FileFailed {
            index: 4,
            reason: FileFailure::Changed,
            message: "changed while read".into(),
        },
        Message::Change {
            path: b"dir/file".to_vec(),
            kind: ChangeKind::Updated,
            entry: EntryKind::Special(SpecialKind::CharDevice),
        },
        Message::FileError {
            path: b"dir/file".to_vec(),
            message: "No space left on device".into(),
        },
        Message::Done {
            stats: TargetStats {
                files_transferred: 3,
                bytes_written: 1 << 30,
                delete_skipped: true,
                ..TargetStats::default()
            },
        },
        Message::Error {
            class: ErrorClass::FileIo,
            message: "read-only file system".into(),
        },
        Message::Heartbeat,
    ]
}

fn frame_seeds() -> Seeds {
    let mut seeds: Seeds = messages()
        .iter()
        .map(|m| (m.name().to_lowercase(), frame(m)))
        .collect();
    // A session's worth of frames in one stream.
    let stream: Vec<u8> = messages().iter().flat_map(frame).collect();
    seeds.push(("stream".into(), stream.clone()));
    // A stream cut inside a frame, and one that ends in a broken frame.
    seeds.push(("stream-cut".into(), stream[..stream.len() - 5].to_vec()));
    let mut broken = frame(&Message::Heartbeat);
    broken.extend_from_slice(&[2, 0, 0, 0, 0xee, 0]);
    seeds.push(("unknown-tag".into(), broken));
    seeds.push(("empty-frame".into(), vec![0, 0, 0, 0]));
    seeds.push(("too-large".into(), vec![0xff, 0xff, 0xff, 0x7f, 1]));
    seeds
}

fn list_seeds() -> Seeds {
    let mut seeds = Seeds::new();
    for (i, e) in entries().into_iter().enumerate() {
        let name = format!("{}-{i}", e.content.kind_name());
        let input = list_input(&frame(&list(vec![e], b"", false))).expect("a list seed");
        seeds.push((name, input));
    }
    let all = list_input(&frame(&list(entries(), b"", true))).expect("a list seed");
    seeds.push(("all-kinds".into(), all));
    seeds
}

fn plan(block_size: u32, strong_len: u32) -> BlockPlan {
    BlockPlan {
        block_size,
        strong_len,
    }
}

fn signature_seeds() -> Seeds {
    let mut seeds = Seeds::new();
    for (block, strong) in [(2048, 8), (2048, 4), (2048, 16), (4096, 8), (3000, 5)] {
        let sig = signature(&basis(), plan(block, strong));
        seeds.push((format!("basis-{block}-{strong}"), sig));
    }
    seeds.push(("empty-basis".into(), signature(&[], plan(2048, 8))));
    // Every block the same: many entries share one rolling checksum.
    let same = vec![0x5a; 2048 * 6];
    seeds.push(("repeated-blocks".into(), signature(&same, plan(2048, 8))));
    let mut bad_magic = signature(&basis(), plan(2048, 8));
    bad_magic[3] ^= 1;
    seeds.push(("bad-magic".into(), bad_magic));
    let mut small_block = signature(&basis(), plan(2048, 8));
    small_block[4..8].copy_from_slice(&16u32.to_be_bytes());
    seeds.push(("block-too-small".into(), small_block));
    seeds
}

fn delta_seeds() -> Seeds {
    let mut seeds = Seeds::new();
    // Real deltas: the basis, edited, diffed against the basis's signature.
    let base = basis();
    let peer = PeerSignature::parse(signature(&base, plan(2048, 8)), 1 << 25).expect("parses");
    let index = peer.index();
    let mut edited = base.clone();
    edited[100..110].copy_from_slice(b"0123456789");
    edited.splice(3000..3000, noise(5, 300));
    let mut shifted = noise(9, 17);
    shifted.extend_from_slice(&base[..4096]);
    for (name, new) in [
        ("edited", edited),
        ("shifted", shifted),
        ("same", base.clone()),
        ("unrelated", noise(13, 1000)),
    ] {
        let mut delta = Vec::new();
        diff_segment(&index, &new, &mut delta).expect("diff");
        let len = u16::try_from(new.len()).expect("small seed");
        seeds.push((name.into(), join_apply_input(len, &base, &delta)));
    }
    // Hand-made deltas over a tiny basis, one per command width.
    let small = b"the quick brown fox jumps over the lazy dog";
    let magic = [0x72, 0x73, 0x02, 0x36];
    let hand: [(&str, &[u8], u16); 6] = [
        ("empty", &[0], 0),
        ("literal", &[3, b'a', b'b', b'c', 0], 3),
        ("literal-n2", &[0x42, 0, 2, b'h', b'i', 0], 2),
        ("copy-n1", &[0x45, 4, 5, 0], 5),
        // offset in 2 bytes, length in 4
        ("copy-n2-n4", &[0x4b, 0, 10, 0, 0, 0, 9, 1, b'!', 0], 10),
        ("copy-past-end", &[0x45, 40, 10, 0], 10),
    ];
    for (name, commands, len) in hand {
        let mut delta = magic.to_vec();
        delta.extend_from_slice(commands);
        seeds.push((name.into(), join_apply_input(len, small, &delta)));
    }
    seeds
}

fn reply_seeds() -> Seeds {
    let tls = b"\x16\x03\x01\x00\x05hello";
    let mut seeds = Seeds::new();
    let replies: [(&str, &[u8]); 14] = [
        ("200", b"HTTP/1.1 200 Connection established\r\n\r\n"),
        (
            "200-squid",
            b"HTTP/1.1 200 Connection established\r\nVia: 1.1 squid (squid/6.6)\r\n\r\n",
        ),
        ("200-bare-lf", b"HTTP/1.0 200 OK\nProxy-agent: x\n\n"),
        ("204-minimal", b"HTTP/1.1 204\r\n\r\n"),
        (
            "407",
            b"HTTP/1.1 407 Proxy Authentication Required\r\n\
              Proxy-Authenticate: Basic realm=\"squid\"\r\nContent-Length: 0\r\n\r\n",
        ),
        (
            "401-tinyproxy",
            b"HTTP/1.0 401 Unauthorized\r\nServer: tinyproxy/1.11.1\r\n\r\n",
        ),
        (
            "403",
            b"HTTP/1.1 403 Forbidden\r\nX-Squid-Error: ERR_ACCESS_DENIED 0\r\n\r\n",
        ),
        ("502", b"HTTP/1.1 502 Bad Gateway\r\n\r\n"),
        ("405", b"HTTP/1.1 405 Method Not Allowed\r\n\r\n"),
        (
            "407-unterminated",
            b"HTTP/1.1 407 Proxy Authentication Required\r\n",
        ),
        ("garbage-ssh", b"SSH-2.0-OpenSSH_9.6\r\n"),
        ("garbage-tls-alert", b"\x15\x03\x03\x00\x02\x02\x46"),
        ("http2", b"HTTP/2 200\r\n\r\n"),
        ("bad-status", b"HTTP/1.1 20x OK\r\n\r\n"),
    ];
    for (name, reply) in replies {
        let mut bytes = reply.to_vec();
        if reply.starts_with(b"HTTP/1.1 200") || reply.starts_with(b"HTTP/1.0 200") {
            bytes.extend_from_slice(tls);
        }
        seeds.push((name.into(), bytes));
    }
    let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
    for i in 0..70 {
        many.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    seeds.push(("too-many-headers".into(), many));
    // One header line long enough to cross the 8 KiB bound on the head.
    let mut long = b"HTTP/1.1 200 OK\r\nX-Long: ".to_vec();
    long.resize(8 * 1024 + 10, b'a');
    long.extend_from_slice(b"\r\n\r\n");
    seeds.push(("too-long".into(), long));
    seeds.push(("empty".into(), Vec::new()));
    seeds
}

fn config_seeds() -> Seeds {
    let lines = [
        (
            "squid",
            "http://alice:s3cr%40t@proxy.example.com:3128\nx.y.com\n443",
        ),
        ("no-scheme", "alice:p@ss:w0rd@10.0.0.5:3128\n10.0.0.5\n3128"),
        ("ipv6", "http://[fd00::1]:8080/\nfd00::1\n8080"),
        ("https", "https://proxy.example.com\ny.com\n443"),
        ("socks", "socks5://proxy:1080\ny.com\n443"),
        ("bad-port", "http://proxy:99999\nproxy\n99999"),
        ("path", "http://proxy:3128/path?x=1\nproxy\n3128"),
        (
            "no-proxy-mixed",
            ".y.com,10.0.0.0/8, [fd00::1]:443,*.svc\nx.y.com\n443",
        ),
        (
            "no-proxy-cidr",
            "10.0.0.0/8,192.168.0.0/16,fd00::/8\n10.1.2.3\n443",
        ),
        ("no-proxy-star", "a.com, *\nanything\n1"),
        ("no-proxy-port", "y.com:443,1.2.3.4:8443\n1.2.3.4\n8443"),
        ("upper", "Y.COM.\nX.Y.com.\n443"),
        ("percent", "http://u%zz%41:p%@host\nHOST\n80"),
        ("empty-userinfo", "http://@host:1\n[::1]\n0"),
    ];
    lines
        .iter()
        .map(|(name, text)| (name.to_string(), text.as_bytes().to_vec()))
        .collect()
}
