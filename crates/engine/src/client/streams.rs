//! A client's joined streams: `--streams N|auto`, and each extra connection joined to the
//! session stream 0 opened. A joined stream goes the way stream 0 went (its own TCP, its
//! own CONNECT through the same proxy with the same credentials, the same SNI and client
//! certificate: [`connect::dial`]), says `Join` with the session's key and its number, and
//! expects `Joined`, all within `--connect-timeout`. A join that is refused or fails is
//! not fatal: a `stream` event and a warning, and the session runs on what it has.
//!
//! ```text
//! Welcome{cores, streams_max, key} ─▶ wanted(): N, or auto ─▶ join(1) … join(n-1), at once
//!                                                             ├▶ Joined  ─▶ JoinedStreams
//!                                                             └▶ refused / failed ─▶ event + warning
//! ```
//!
//! Joined streams carry only heartbeats in this version: files all go over stream 0.
//! Must not import a command or a role.

use std::time::Duration;

use ferry_net::WireCounter;
use ferry_proto::session::stream::SessionKey;
use ferry_proto::{Message, RefuseReason, PROTOCOL_VERSION};

use super::connect::{self, Route};
use super::handshake::Welcomed;
use crate::error::EngineError;
use crate::framed::{spawn_writer, FrameReader};
use crate::joined::{JoinedConn, JoinedStreams};
use crate::report::Reporter;

/// `--streams`: how many streams a session should run over.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Streams {
    /// From the cores on both sides, the round trip and the server's limit (see [`auto`]).
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

    /// Whether the Hello asks for joined streams (bit 12). `auto` does not yet: joined
    /// streams carry no data in this version, so `auto` would only add connections; the
    /// increment that spreads files over streams switches it on.
    pub fn asks_for_joins(self) -> bool {
        matches!(self, Streams::Fixed(2..))
    }
}

/// `auto`'s choice (docs/design/streams.md, section 4): enough window-bound streams for
/// the round trip, a second one on a LAN when both sides have two cores to spread TLS
/// and socket work over, never more than the server allows.
pub fn auto(rtt: Duration, cores: u32, streams_max: u16) -> u16 {
    let link = if rtt < Duration::from_millis(2) {
        1
    } else if rtt < Duration::from_millis(20) {
        4
    } else {
        8
    };
    let cpu = if cores >= 2 { 2 } else { 1 };
    std::cmp::max(link, cpu).min(streams_max.max(1))
}

/// How many streams this session runs over, stream 0 included.
fn wanted(choice: Streams, welcomed: &Welcomed) -> u16 {
    match choice {
        Streams::Fixed(n) => {
            if n > welcomed.streams_max {
                tracing::info!(
                    "--streams {n}: the server allows {} streams for this session (serve --max-streams)",
                    welcomed.streams_max
                );
            }
            n.min(welcomed.streams_max)
        }
        Streams::Auto => {
            let here = std::thread::available_parallelism().map_or(1, |n| n.get());
            let here = u32::try_from(here).unwrap_or(u32::MAX);
            let cores = here.min(welcomed.cores);
            let chosen = auto(welcomed.rtt, cores, welcomed.streams_max);
            tracing::info!(
                "streams auto: rtt {:.1} ms, cores {here}/{}, max {} → {chosen}; joined streams carry no data yet, so auto opens none (1 stream)",
                welcomed.rtt.as_secs_f64() * 1e3,
                welcomed.cores,
                welcomed.streams_max,
            );
            // The formula is logged and kept for the increment that schedules files over
            // streams; until then `auto` runs on stream 0 alone (its Hello did not ask
            // for streams, so `streams_max` is 1 here anyway).
            1
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

/// Opens the session's joined streams (all at once) and returns them with the ones that
/// joined; each that does not is a `stream` event and a warning naming `label`.
pub(crate) async fn open(
    route: &Route,
    wire: &WireCounter,
    welcomed: &Welcomed,
    choice: Streams,
    heartbeat: Duration,
    reporter: &Reporter,
    label: &str,
) -> JoinedStreams {
    let streams = {
        let (reporter, label) = (reporter.clone(), label.to_owned());
        JoinedStreams::new(Box::new(move |stream, why| {
            reporter.stream(stream, "lost", why);
            reporter.warning(
                &label,
                &format!(
                    "joined stream {stream} was lost ({why}); the session goes on over the others"
                ),
            );
        }))
    };
    let (n, Some(key)) = (wanted(choice, welcomed), welcomed.key.as_ref()) else {
        return streams;
    };
    let tasks: Vec<_> = (1..n)
        .map(|stream| {
            let (route, wire, key) = (route.clone(), wire.clone(), key.clone());
            tokio::spawn(async move {
                let joining = join(&route, &wire, &key, stream, heartbeat);
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
        match joined {
            Ok(conn) => {
                reporter.stream(stream, "joined", "");
                streams.add(conn);
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
    streams
}

/// Joins one connection to the session of `key` as `stream`.
async fn join(
    route: &Route,
    wire: &WireCounter,
    key: &SessionKey,
    stream: u16,
    heartbeat: Duration,
) -> Result<JoinedConn, JoinFailure> {
    let tls = connect::dial(route, wire)
        .await
        .map_err(JoinFailure::Failed)?;
    let (read, write) = tokio::io::split(tls);
    let mut reader = FrameReader::new(read, ferry_proto::Limits::default())
        .with_peer(ferry_net::TlsPeer::Server(route.server_name.clone()));
    let (tx, writer) = spawn_writer(write, 64, heartbeat);
    let failed = |e: EngineError| JoinFailure::Failed(e);
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

#[cfg(test)]
#[path = "streams_tests.rs"]
mod tests;
