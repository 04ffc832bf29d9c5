//! A client's joined streams: `--streams N|auto`, and each extra connection joined to the
//! session stream 0 opened. A joined stream goes the way stream 0 went (its own TCP, its
//! own CONNECT through the same proxy with the same credentials, the same SNI and client
//! certificate: [`connect::dial`]), says `Join` with the session's key and its number, and
//! expects `Joined`, all within `--connect-timeout`. A join that is refused or fails is
//! not fatal: a `stream` event and a warning, and the session runs on what it has.
//!
//! ```text
//! Welcome{cores, streams_max, key} ─▶ wanted(): N, or auto ─▶ (driver: want_more) ─▶ join(1) … join(n-1)
//!                                                             ├▶ Joined  ─▶ JoinedStreams ─▶ driver
//!                                                             └▶ refused / failed ─▶ event + warning
//! ```
//!
//! Streams open lazily: only once the session's driver says it has work to spread
//! ([`crate::joined::Incoming::want_more`]), so a no-change pass or a small delta never
//! pays for handshakes it cannot use.
//! Must not import a command or a role.

use std::sync::{Arc, Weak};
use std::time::Duration;

use ferry_net::WireCounter;
use ferry_proto::session::stream::SessionKey;
use ferry_proto::{Message, RefuseReason, PROTOCOL_VERSION};

use super::connect::{self, Route};
use super::handshake::Welcomed;
use crate::error::EngineError;
use crate::framed::{spawn_compressing_writer, Compression, FrameReader, FrameSender};
use crate::joined::{JoinedConn, JoinedStreams, Wanted};
use crate::ratelimit::RateLimiter;
use crate::report::Reporter;

/// `--streams`: how many streams a session should run over.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Streams {
    /// From the cores on both sides, the round trip and the server's limit (`auto` and
    /// `auto_bulk` below say how).
    #[default]
    Auto,
    /// This many, stream 0 included (1 to 16), or fewer if the server allows fewer.
    Fixed(u16),
}

/// The most streams a session has, stream 0 included (`Limits::max_streams`).
pub const MAX_STREAMS: u16 = 16;

impl Streams {
    /// `auto` or a number from 1 to 16.
    pub fn parse(text: &str) -> Result<Streams, String> {
        if text.eq_ignore_ascii_case("auto") {
            return Ok(Streams::Auto);
        }
        match text.parse::<u16>() {
            Ok(n @ 1..=MAX_STREAMS) => Ok(Streams::Fixed(n)),
            _ => Err(format!(
                "{text:?} is not a number of streams: give auto or 1 to {MAX_STREAMS}"
            )),
        }
    }

    /// Whether the Hello asks for joined streams (bit 12): `auto` and 2 or more. `1` is
    /// protocol 5's session on one connection.
    pub fn asks_for_joins(self) -> bool {
        !matches!(self, Streams::Fixed(..=1))
    }
}

/// `auto`'s choice for many files (docs/design/streams.md, section 4): enough
/// window-bound streams for the round trip, a second one on a LAN when both sides have
/// two cores to spread per-file TLS, socket and apply work over, never more than the
/// server allows.
pub fn auto(rtt: Duration, cores: u32, streams_max: u16) -> u16 {
    let cpu = if cores >= 2 { 2 } else { 1 };
    std::cmp::max(auto_bulk(rtt, streams_max), cpu).min(streams_max.max(1))
}

/// `auto`'s choice for bulk (large files): only as many streams as one stream's window
/// falls short of the round trip; on a LAN one (a second made a large copy about 10%
/// slower on two busy cores: two files written at once, no window to gain).
pub fn auto_bulk(rtt: Duration, streams_max: u16) -> u16 {
    let link = if rtt < Duration::from_millis(2) {
        1
    } else if rtt < Duration::from_millis(20) {
        4
    } else {
        8
    };
    link.min(streams_max.max(1))
}

/// How many streams a session runs over, stream 0 included, by the work it has: many
/// files, or bulk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Counts {
    files: u16,
    bytes: u16,
}

impl Counts {
    fn most(self) -> u16 {
        self.files.max(self.bytes)
    }

    fn for_work(self, why: Wanted) -> u16 {
        match why {
            Wanted::Files => self.files,
            Wanted::Bytes => self.bytes,
        }
    }
}

/// How many streams this session runs over, stream 0 included.
fn wanted(choice: Streams, welcomed: &Welcomed) -> Counts {
    match choice {
        Streams::Fixed(n) => {
            if n > welcomed.streams_max {
                tracing::info!(
                    "--streams {n}: the server allows {} streams for this session (serve --max-streams)",
                    welcomed.streams_max
                );
            }
            let n = n.min(welcomed.streams_max);
            Counts { files: n, bytes: n }
        }
        Streams::Auto => {
            let here = std::thread::available_parallelism().map_or(1, |n| n.get());
            let here = u32::try_from(here).unwrap_or(u32::MAX);
            let cores = here.min(welcomed.cores);
            let counts = Counts {
                files: auto(welcomed.rtt, cores, welcomed.streams_max),
                bytes: auto_bulk(welcomed.rtt, welcomed.streams_max),
            };
            tracing::info!(
                "streams auto: rtt {:.1} ms, cores {here}/{}, max {} → {} for many files, {} for bulk",
                welcomed.rtt.as_secs_f64() * 1e3,
                welcomed.cores,
                welcomed.streams_max,
                counts.files,
                counts.bytes,
            );
            counts
        }
    }
}

/// Why a join did not make a stream.
#[derive(Debug)]
enum JoinFailure {
    /// The server answered `Refused`.
    Refused {
        reason: RefuseReason,
        message: String,
    },
    /// The connection, the proxy, TLS or the answer failed.
    Failed(EngineError),
}

/// Frames a joined stream's writer holds: 4 MiB of 256 KiB data frames, a window and
/// more of a long link; stream 0 holds 64, but over 16 streams that much would be
/// 256 MiB of a pusher's memory.
const JOINED_QUEUE: usize = 16;

/// How a client's joined streams carry frames: as stream 0 does (its heartbeat, its
/// `--bwlimit` both ways, its `--compress` counts, what watches its frames).
#[derive(Clone)]
pub(crate) struct JoinWire {
    pub heartbeat: Duration,
    pub write_limit: Option<Arc<RateLimiter>>,
    pub read_limit: Option<Arc<RateLimiter>>,
    pub compression: Option<Arc<Compression>>,
    pub inflated: Option<Arc<Compression>>,
    /// Sees each frame read from a joined stream.
    pub observer: Option<Observe>,
    /// Sees each frame sent on a joined stream (before its writer does).
    pub outgoing: Option<Observe>,
}

/// A look at frames going by.
pub(crate) type Observe = Arc<dyn Fn(&ferry_proto::Message) + Send + Sync>;

impl JoinWire {
    pub fn new(heartbeat: Duration) -> JoinWire {
        JoinWire {
            heartbeat,
            write_limit: None,
            read_limit: None,
            compression: None,
            inflated: None,
            observer: None,
            outgoing: None,
        }
    }
}

/// The session's joined streams: none yet. Once its driver wants more, the streams
/// `--streams` (or `auto`) chose are joined, each that does not a `stream` event and a
/// warning naming `label`.
pub(crate) fn open(
    route: &Route,
    wire: &WireCounter,
    welcomed: &Welcomed,
    choice: Streams,
    join_wire: JoinWire,
    reporter: &Reporter,
    label: &str,
) -> Arc<JoinedStreams> {
    let streams = {
        let (reporter, label) = (reporter.clone(), label.to_owned());
        Arc::new(JoinedStreams::new(Box::new(move |stream, why| {
            reporter.stream(stream, "lost", why);
            reporter.warning(
                &label,
                &format!(
                    "joined stream {stream} was lost ({why}); the session goes on over the others"
                ),
            );
        })))
    };
    let (counts, Some(key)) = (wanted(choice, welcomed), welcomed.key.clone()) else {
        return streams;
    };
    if counts.most() < 2 {
        return streams;
    }
    let more = streams.wanted_signal();
    let weak = Arc::downgrade(&streams);
    let (route, wire, reporter, label) = (
        route.clone(),
        wire.clone(),
        reporter.clone(),
        label.to_owned(),
    );
    let opener = tokio::spawn(tracing::Instrument::in_current_span(async move {
        // Bulk on a LAN wants no second stream; many files later may.
        let n = loop {
            let n = counts.for_work(more.next().await);
            if n >= 2 {
                break n;
            }
        };
        join_all(&route, &wire, &key, n, &join_wire, &reporter, &label, weak).await;
    }));
    streams.set_opener(opener);
    streams
}

/// Joins streams `1..n` at once; each joined goes to `streams` (while the session lasts).
#[allow(clippy::too_many_arguments)]
async fn join_all(
    route: &Route,
    wire: &WireCounter,
    key: &SessionKey,
    n: u16,
    join_wire: &JoinWire,
    reporter: &Reporter,
    label: &str,
    streams: Weak<JoinedStreams>,
) {
    let tasks: Vec<_> = (1..n)
        .map(|stream| {
            let (route, wire, key) = (route.clone(), wire.clone(), key.clone());
            let join_wire = join_wire.clone();
            tokio::spawn(async move {
                let joining = join(&route, &wire, &key, stream, &join_wire);
                match tokio::time::timeout(route.connect_timeout, joining).await {
                    Ok(joined) => joined,
                    Err(_) => Err(JoinFailure::Failed(super::attempt::connect_timeout(&route))),
                }
            })
        })
        .collect();
    for (stream, task) in (1..n).zip(tasks) {
        let joined = task.await.unwrap_or_else(|e| {
            Err(JoinFailure::Failed(EngineError::socket(format!(
                "the join task failed: {e}"
            ))))
        });
        let Some(live) = streams.upgrade() else {
            return;
        };
        // Joins that land as the session finishes find it over: no news.
        if joined.is_err() && live.is_finishing() {
            continue;
        }
        match joined {
            Ok(conn) => {
                reporter.stream(stream, "joined", "");
                live.add(conn);
            }
            Err(JoinFailure::Refused { reason, message }) => {
                let mut why = format!(
                    "the server refused it: {}",
                    ferry_proto::peer_text(&message)
                );
                if reason == RefuseReason::UnknownSession {
                    why.push_str("; if the route balances over several server pods, joined streams need a route to a single pod (or run with --streams 1)");
                }
                reporter.stream(stream, "refused", &why);
                reporter.warning(label, &format!("stream {stream} did not join: {why}; the session goes on over the streams it has"));
            }
            Err(JoinFailure::Failed(e)) => {
                let why = e.to_string();
                reporter.stream(stream, "failed", &why);
                reporter.warning(label, &format!("stream {stream} did not join: {why}; the session goes on over the streams it has"));
            }
        }
    }
}

/// Joins one connection to the session of `key` as `stream`.
async fn join(
    route: &Route,
    wire: &WireCounter,
    key: &SessionKey,
    stream: u16,
    join_wire: &JoinWire,
) -> Result<JoinedConn, JoinFailure> {
    let tls = connect::dial(route, wire)
        .await
        .map_err(JoinFailure::Failed)?;
    let (read, write) = tokio::io::split(tls);
    let mut reader = FrameReader::new(read, ferry_proto::Limits::default())
        .with_peer(ferry_net::TlsPeer::Server(route.server_name.clone()))
        .with_limit(join_wire.read_limit.clone());
    if let Some(inflated) = &join_wire.inflated {
        reader = reader.with_inflated_counts(inflated.clone());
    }
    if let Some(observer) = &join_wire.observer {
        let observer = observer.clone();
        reader = reader.with_observer(Box::new(move |m| observer(m)));
    }
    let (tx, writer) = spawn_compressing_writer(
        write,
        JOINED_QUEUE,
        join_wire.heartbeat,
        join_wire.write_limit.clone(),
        join_wire.compression.clone(),
    );
    let failed = |e: EngineError| JoinFailure::Failed(e);
    let tx = match &join_wire.outgoing {
        Some(observe) => watched(tx, observe.clone()),
        None => tx,
    };
    tx.send(Message::Join {
        version: PROTOCOL_VERSION,
        key: key.clone(),
        stream,
    })
    .await
    .map_err(|_| failed(EngineError::socket("the connection closed before Join")))?;
    let answer = loop {
        match reader.expect("the answer to Join").await.map_err(failed)? {
            Message::Heartbeat => continue,
            answer => break answer,
        }
    };
    match answer {
        Message::Joined { stream: joined } if joined == stream => Ok(JoinedConn {
            stream,
            reader: reader.boxed(),
            tx,
            writer,
            slot: None,
        }),
        Message::Refused { reason, message } => Err(JoinFailure::Refused { reason, message }),
        Message::Error { class, message } => Err(failed(
            ferry_proto::SessionError::from_peer(
                "the server could not take the join; it says",
                class,
                &message,
            )
            .into(),
        )),
        Message::Joined { stream: other } => Err(failed(EngineError::protocol(format!(
            "expected Joined {{stream: {stream}}} from the server, got Joined {{stream: {other}}}"
        )))),
        other => Err(failed(EngineError::protocol(format!(
            "expected Joined {{stream: {stream}}} from the server, got {}",
            other.name()
        )))),
    }
}

/// A sender whose frames `observe` sees before they go on to `tx`.
fn watched(tx: FrameSender, observe: Observe) -> FrameSender {
    let (watched, mut rx) = tokio::sync::mpsc::channel::<ferry_proto::Message>(64);
    tokio::spawn(async move {
        while let Some(message) = rx.recv().await {
            observe(&message);
            if tx.send(message).await.is_err() {
                break;
            }
        }
    });
    watched
}

#[cfg(test)]
#[path = "streams_tests.rs"]
mod tests;
