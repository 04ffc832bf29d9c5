//! One connection to the server: TLS, Hello, admission (version, volume, read-only
//! exports, locks and caps), then the session: a push's target part, or a pull's
//! source. Bounded so that connections which open and send nothing, or
//! stall mid-handshake, cannot exhaust the target.
//!
//! ```text
//! accept ─(handshake slot)─▶ TLS ─▶ Hello ─▶ volume lock + session slot ─▶ Welcome ─▶ session
//!                                            └──▶ Refused (version, unknown, busy or
//!                                                          read-only volume)
//! ```

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::Ordering::{self, Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry_proto::{escape, ErrorClass, Limits, Message, RefuseReason, PROTOCOL_VERSION};
use ferry_tree::{Privileges, Volume};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use super::metrics::{HandshakeFailure, Metrics};
use super::{pull_source, session, Export};
use crate::exit::ExitCode;
use crate::framed::{spawn_compressing_writer, Compression, FrameReader, FrameSender};
use crate::ratelimit::RateLimiter;

/// What every connection of a target shares.
pub struct Shared {
    pub acceptor: TlsAcceptor,
    pub volumes: HashMap<String, Export>,
    pub busy: Mutex<HashSet<String>>,
    pub privileges: Privileges,
    /// Connections between accept and Hello: a peer that opens connections and sends
    /// nothing, or stalls mid-handshake, can hold at most this many.
    pub handshakes: Arc<Semaphore>,
    /// Sessions running at once (each has two receiver threads and its windows).
    pub sessions: Arc<Semaphore>,
    /// `serve --fsync`: every session flushes files, whatever its source asks.
    pub fsync: bool,
    pub metrics: Arc<Metrics>,
    /// `serve --bwlimit`: what all sessions together read, and what they write.
    pub read_limit: Option<Arc<RateLimiter>>,
    pub write_limit: Option<Arc<RateLimiter>>,
}

/// Most connections in their handshake at once; more are closed at accept.
pub const MAX_HANDSHAKES: usize = 64;
/// Most sessions at once; more are refused as busy (the source may retry).
pub const MAX_SESSIONS: usize = 64;
/// How long a client may take from TCP accept to its Hello, TLS included.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);

impl Shared {
    pub fn new(
        acceptor: TlsAcceptor,
        volumes: HashMap<String, Export>,
        privileges: Privileges,
    ) -> Shared {
        let metrics = Arc::new(Metrics::new(volumes.keys()));
        Shared {
            metrics,
            read_limit: None,
            write_limit: None,
            acceptor,
            volumes,
            busy: Mutex::new(HashSet::new()),
            privileges,
            handshakes: Arc::new(Semaphore::new(MAX_HANDSHAKES)),
            sessions: Arc::new(Semaphore::new(MAX_SESSIONS)),
            fsync: false,
        }
    }
}

/// Releases a volume when its session ends, however it ends.
struct VolumeLock<'a> {
    shared: &'a Shared,
    name: String,
}

impl Drop for VolumeLock<'_> {
    fn drop(&mut self) {
        self.shared
            .busy
            .lock()
            .expect("busy lock")
            .remove(&self.name);
    }
}

/// One connection, holding a handshake slot until its Hello is answered. Returns the
/// session's exit code if it was admitted.
pub async fn connection(
    shared: &Shared,
    stream: TcpStream,
    peer: SocketAddr,
    heartbeat: Duration,
    handshake: OwnedSemaphorePermit,
) -> Option<ExitCode> {
    let _ = ferry_net::tune(&stream);
    // One deadline for TLS and Hello together, so a slow peer cannot stretch it.
    let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
    let tls =
        match tokio::time::timeout_at(deadline, ferry_net::tls_accept(&shared.acceptor, stream))
            .await
        {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => {
                tracing::warn!("TLS handshake with {peer} failed: {e}");
                shared.metrics.handshake_failed(HandshakeFailure::Tls);
                return None;
            }
            Err(_) => {
                tracing::warn!("TLS handshake with {peer} timed out");
                shared.metrics.handshake_failed(HandshakeFailure::Timeout);
                return None;
            }
        };
    let (read, write) = tokio::io::split(tls);
    let limits = Limits::default();
    let mut reader = FrameReader::new(read, limits.clone()).with_limit(shared.read_limit.clone());
    // Off unless the session is a pull with --compress: then this side is the source.
    let compression = Arc::new(Compression::default());
    let (tx, writer) = spawn_compressing_writer(
        write,
        64,
        heartbeat,
        shared.write_limit.clone(),
        Some(compression.clone()),
    );
    let admission = admit(shared, &mut reader, &tx, deadline).await;
    drop(handshake);
    let code = match admission {
        Admission::Refused => None,
        Admission::Admitted(admitted) => {
            let Admitted {
                export,
                volume,
                mut options,
                filter,
                lock,
                slot: _slot,
            } = *admitted;
            options.fsync |= shared.fsync;
            tracing::info!(volume = %lock.name, ?options, "session started");
            let metrics = &shared.metrics;
            let counts = metrics.volume(&lock.name);
            metrics.sessions_total.fetch_add(1, Relaxed);
            metrics.sessions_active.fetch_add(1, Relaxed);
            counts.sessions.fetch_add(1, Relaxed);
            let result = match volume {
                Some(volume) => {
                    session::run(
                        volume,
                        options,
                        filter,
                        limits,
                        &mut reader,
                        tx.clone(),
                        counts.clone(),
                    )
                    .await
                }
                None => {
                    compression.on.store(options.compress, Ordering::Relaxed);
                    let source = pull_source::Pulled {
                        path: &export.path,
                        options,
                        filter,
                        limits: &limits,
                        compression,
                    };
                    pull_source::run(source, &mut reader, tx.clone()).await
                }
            };
            drop(lock);
            // Each arm counts the outcome before the session stops counting as active, so
            // a scrape that sees it gone also sees how it ended.
            let code = match result {
                Ok(stats) => {
                    tracing::info!(?stats, "session done");
                    counts.file_errors.fetch_add(stats.file_errors, Relaxed);
                    metrics.sessions_active.fetch_sub(1, Relaxed);
                    if stats.file_errors > 0 {
                        ExitCode::Partial
                    } else {
                        ExitCode::Ok
                    }
                }
                Err(e) => {
                    tracing::error!("session failed: {e}");
                    metrics.session_failed(e.exit);
                    metrics.sessions_active.fetch_sub(1, Relaxed);
                    if let Some(error) = e.to_peer() {
                        let _ = tx.send(error).await;
                    }
                    e.exit
                }
            };
            Some(code)
        }
    };
    drop(tx);
    let _ = writer.await;
    code
}

/// A session admitted: what it runs on, and the lock and slot it holds until it ends.
struct Admitted<'a> {
    export: Export,
    /// The opened volume for a push; `None` for a pull (the source walks `export.path`).
    volume: Option<Arc<Volume>>,
    options: ferry_proto::SessionOptions,
    filter: ferry_proto::Filter,
    lock: VolumeLock<'a>,
    slot: OwnedSemaphorePermit,
}

enum Admission<'a> {
    Admitted(Box<Admitted<'a>>),
    /// Refused, or a probe that was answered: either way no session ran.
    Refused,
}

async fn admit<'a, R: tokio::io::AsyncRead + Unpin>(
    shared: &'a Shared,
    reader: &mut FrameReader<R>,
    tx: &FrameSender,
    deadline: Instant,
) -> Admission<'a> {
    let refuse = |reason, message: String| async move {
        tracing::warn!("refused: {message}");
        shared.metrics.refused(reason);
        let _ = tx.send(Message::Refused { reason, message }).await;
        Admission::Refused
    };
    let hello = match tokio::time::timeout_at(deadline, reader.next()).await {
        Ok(Ok(Some(hello))) => hello,
        Ok(Ok(None)) => {
            shared.metrics.handshake_failed(HandshakeFailure::NoHello);
            return Admission::Refused;
        }
        Ok(Err(e)) => {
            tracing::warn!("before Hello: {e}");
            shared.metrics.handshake_failed(HandshakeFailure::NoHello);
            return Admission::Refused;
        }
        Err(_) => {
            tracing::warn!("no Hello within {} s", HANDSHAKE_TIMEOUT.as_secs());
            shared.metrics.handshake_failed(HandshakeFailure::Timeout);
            return Admission::Refused;
        }
    };
    let Message::Hello {
        version,
        volume,
        options,
        filter,
    } = hello
    else {
        shared.metrics.handshake_failed(HandshakeFailure::NoHello);
        let _ = tx
            .send(Message::Error {
                class: ErrorClass::Protocol,
                message: format!("expected Hello, got {}", hello.name()),
            })
            .await;
        return Admission::Refused;
    };
    if version != PROTOCOL_VERSION {
        return refuse(
            RefuseReason::VersionMismatch,
            format!("this target speaks protocol {PROTOCOL_VERSION}, the source {version}; run the same ferry version on both sides"),
        )
        .await;
    }
    let name = String::from_utf8_lossy(&volume).into_owned();
    let Some(export) = shared.volumes.get(&name) else {
        let mut known: Vec<_> = shared.volumes.keys().cloned().collect();
        known.sort();
        return refuse(
            RefuseReason::UnknownVolume,
            format!(
                "no volume named {:?} here; this target serves: {}",
                escape(&volume),
                known.join(", ")
            ),
        )
        .await;
    };
    let path = &export.path;
    // A probe checks that a push could write (it creates and removes a temp file): for a
    // read-only export it is refused like the push, whatever else the Hello asks.
    if export.read_only && (!options.pull || options.probe) {
        return refuse(
            RefuseReason::ReadOnly,
            format!("volume {name} is exported read-only (--volume {name}=PATH:ro): it can be pulled from, not pushed to; export it without :ro to receive pushes"),
        )
        .await;
    }
    if options.probe {
        let verdict = Volume::open(path, shared.privileges).and_then(|v| v.check_writable());
        return match verdict {
            Ok(()) => {
                let _ = tx
                    .send(Message::Welcome {
                        version: PROTOCOL_VERSION,
                    })
                    .await;
                tracing::info!(volume = %name, "probe: volume present and writable");
                Admission::Refused
            }
            Err(e) => {
                refuse(
                    if e.is_read_only_fs() {
                        RefuseReason::ReadOnly
                    } else {
                        RefuseReason::VolumeUnavailable
                    },
                    format!("volume {name} is not writable at the target: {e}"),
                )
                .await
            }
        };
    }
    if !shared.busy.lock().expect("busy lock").insert(name.clone()) {
        return refuse(
            RefuseReason::VolumeBusy,
            format!("volume {name} is busy with another session; wait for it to finish (one push or pull per volume at a time)"),
        )
        .await;
    }
    let lock = VolumeLock {
        shared,
        name: name.clone(),
    };
    let Ok(slot) = shared.sessions.clone().try_acquire_owned() else {
        return refuse(
            RefuseReason::VolumeBusy,
            format!("this target is running its limit of {MAX_SESSIONS} sessions; try again when one ends"),
        )
        .await;
    };
    let volume = if options.pull {
        None
    } else {
        match Volume::open(path, shared.privileges) {
            Ok(volume) => Some(Arc::new(volume)),
            Err(e) => {
                return refuse(
                    RefuseReason::VolumeUnavailable,
                    format!("volume {name} cannot be opened at the target: {e}"),
                )
                .await
            }
        }
    };
    if tx
        .send(Message::Welcome {
            version: PROTOCOL_VERSION,
        })
        .await
        .is_err()
    {
        return Admission::Refused;
    }
    Admission::Admitted(Box::new(Admitted {
        export: export.clone(),
        volume,
        options,
        filter,
        lock,
        slot,
    }))
}
