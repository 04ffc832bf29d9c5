//! One connection to the server: TLS, Hello, admission (version, volume, read-only
//! exports, locks and caps), then the session: a push's target part, or a pull's
//! source. Bounded so that connections which open and send nothing, or stall
//! mid-handshake, cannot exhaust the target nor keep others out: until TLS is done a
//! connection holds a pre-authentication slot (`preauth`), which a newer connection may
//! take from it, and has [`TLS_TIMEOUT`]; once authenticated, a Hello slot and
//! [`HELLO_TIMEOUT`].
//!
//! ```text
//! accept ─(pre-auth slot)─▶ TLS ─(Hello slot)─▶ Hello ─▶ volume lock + session slot ─▶ Welcome ─▶ session
//!                                            │  └──▶ Refused (version, unknown, busy or
//!                                            │                read-only volume)
//!                                            └▶ Join ─▶ hub: Joined (to its session) or Refused
//! ```
//!
//! A `Join` passes the same slots and deadlines as a Hello and never takes a volume lock
//! or a session slot (`hub`). Checking the first frame and granting the lock and slot is
//! [`admit`]'s; running what was admitted is this module's.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::Ordering::{self, Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry_net::pairing::{Accepted, ServerTls};
use ferry_proto::{Limits, TargetStats};
use ferry_tree::Privileges;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::hub::{self, Hubs, Registration};
use super::metrics::{FailureLog, HandshakeFailure, Metrics};
use super::preauth::{PreAuth, Ticket};
use super::{block, pull_source, Export};
use crate::enroll::Pairing;
use crate::error::EngineError;
use crate::exit::ExitCode;
use crate::framed::{spawn_compressing_writer, Compression, FrameReader};
use crate::joined::SessionStreams;
use crate::ratelimit::RateLimiter;
use crate::target;
use admit::{admit, Admission, Admitted};

mod admit;

/// What every connection of a target shares.
pub struct Shared {
    /// The session TLS config, and the enrollment one while a pairing window is open.
    pub acceptor: ServerTls,
    /// `serve --pair`: the window, the CA and the log an enrollment uses.
    pub pairing: Option<Arc<Pairing>>,
    pub volumes: HashMap<String, Export>,
    pub busy: Mutex<HashSet<String>>,
    pub privileges: Privileges,
    /// Connections between accept and the end of TLS (no certificate shown yet).
    pub preauth: Arc<PreAuth>,
    /// Authenticated connections between TLS and their Hello.
    pub hellos: Arc<Semaphore>,
    /// Connections that failed before their Hello, logged without flooding the log.
    pub failures: FailureLog,
    /// Sessions running at once (each has its apply workers and its windows).
    pub sessions: Arc<Semaphore>,
    /// `serve --fsync`: every session flushes files, whatever its source asks.
    pub fsync: bool,
    /// The volumes that were a device or disk image when the server started: block
    /// volumes for good, whatever their path holds later (a link to a directory there
    /// must not turn one into a tree volume).
    pub block_volumes: HashSet<String>,
    pub metrics: Arc<Metrics>,
    /// `serve --bwlimit`: what all sessions together read, and what they write.
    pub read_limit: Option<Arc<RateLimiter>>,
    pub write_limit: Option<Arc<RateLimiter>>,
    /// The running sessions that take joined streams.
    pub hubs: Arc<Hubs>,
    /// `serve --max-streams`: the streams a session may have, stream 0 included.
    pub max_streams: u16,
}

/// Most connections in their TLS handshake at once; a newer one evicts one of them
/// (see `preauth` for which).
pub const MAX_HANDSHAKES: usize = 64;
/// Most authenticated connections waiting for their Hello; more are closed.
const MAX_HELLOS: usize = 64;
/// Most sessions at once; more are refused as busy (the source may retry).
pub const MAX_SESSIONS: usize = 64;
/// How long a client may take from TCP accept to the end of TLS. A client sends its
/// ClientHello at once and TLS 1.3 needs one round trip more, so this is generous for
/// any network, and short for a peer that only holds a connection open.
const TLS_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an authenticated client may take to send its Hello after TLS.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

impl Shared {
    pub fn new(
        acceptor: ServerTls,
        volumes: HashMap<String, Export>,
        privileges: Privileges,
    ) -> Shared {
        let metrics = Arc::new(Metrics::new(volumes.keys()));
        Shared {
            metrics,
            read_limit: None,
            write_limit: None,
            acceptor,
            pairing: None,
            volumes,
            busy: Mutex::new(HashSet::new()),
            privileges,
            preauth: Arc::new(PreAuth::new(MAX_HANDSHAKES)),
            hellos: Arc::new(Semaphore::new(MAX_HELLOS)),
            failures: FailureLog::default(),
            sessions: Arc::new(Semaphore::new(MAX_SESSIONS)),
            fsync: false,
            block_volumes: HashSet::new(),
            hubs: Arc::default(),
            max_streams: hub::DEFAULT_MAX_STREAMS,
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

/// One connection, holding its pre-authentication slot (`ticket`) until TLS is done,
/// then a Hello slot until its Hello is answered. Returns the session's exit code if it
/// was admitted.
pub async fn connection(
    shared: &Shared,
    stream: TcpStream,
    peer: SocketAddr,
    heartbeat: Duration,
    ticket: Ticket,
) -> Option<ExitCode> {
    let _ = ferry_net::tune(&stream);
    let failed = |why, detail: String| shared.failures.failed(&shared.metrics, why, || detail);
    let handshake = tokio::time::timeout(TLS_TIMEOUT, shared.acceptor.accept(ticket.watch(stream)));
    let tls = tokio::select! {
        () = ticket.evicted() => {
            failed(
                HandshakeFailure::Overload,
                format!("{MAX_HANDSHAKES} connections were in their TLS handshake; closed the one from {peer} to make room for a newer one"),
            );
            return None;
        }
        done = handshake => match done {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => {
                failed(HandshakeFailure::Tls, format!("TLS handshake with {peer} failed: {e}"));
                return None;
            }
            Err(_) => {
                failed(
                    HandshakeFailure::Timeout,
                    format!("TLS handshake with {peer} did not finish within {} s", TLS_TIMEOUT.as_secs()),
                );
                return None;
            }
        },
    };
    let tls = match tls {
        Accepted::Session(tls) => tls,
        // Not authenticated: it keeps its pre-authentication slot (and can be evicted
        // from it) for the one exchange it may run, then it is closed.
        Accepted::Enroll(tls) => {
            if let Some(pairing) = &shared.pairing {
                tokio::select! {
                    () = ticket.evicted() => failed(
                        HandshakeFailure::Overload,
                        format!("{MAX_HANDSHAKES} connections were unauthenticated; closed the enrollment from {peer} to make room for a newer one"),
                    ),
                    () = crate::enroll::grant(pairing, tls, peer) => {}
                }
            }
            return None;
        }
    };
    // Authenticated: the slot goes to others, and the Hello has its own deadline.
    drop(ticket);
    let opener = hub::opener(tls.get_ref().1);
    let Ok(handshake) = shared.hellos.clone().try_acquire_owned() else {
        failed(
            HandshakeFailure::Overload,
            format!("{MAX_HELLOS} authenticated connections are already waiting for their Hello; closed the one from {peer}"),
        );
        return None;
    };
    let deadline = Instant::now() + HELLO_TIMEOUT;
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
    let admission = admit(shared, &mut reader, &tx, deadline, opener).await;
    drop(handshake);
    let code = match admission {
        Admission::Refused => None,
        Admission::Join(joining) => {
            let (key, stream, joiner) = *joining;
            let joining = hub::Joining {
                key,
                stream,
                joiner,
                reader: reader.boxed(),
                tx,
                writer,
                compression,
            };
            hub::answer(&shared.hubs, &shared.metrics, &shared.failures, joining).await;
            return None;
        }
        Admission::Admitted(admitted) => {
            let Admitted {
                export,
                volume,
                device,
                mut options,
                filter,
                lock,
                slot,
                registration,
            } = *admitted;
            options.fsync |= shared.fsync;
            tracing::info!(volume = %lock.name, ?options, "session started");
            let metrics = &shared.metrics;
            let counts = metrics.volume(&lock.name);
            metrics.sessions_total.fetch_add(1, Relaxed);
            metrics.sessions_active.fetch_add(1, Relaxed);
            counts.sessions.fetch_add(1, Relaxed);
            let session_tx = match &registration {
                Some(registration) => {
                    registration.watch_finishing(options.pull, &mut reader, tx.clone())
                }
                None => tx.clone(),
            };
            let result = match (device, volume) {
                (Some(device), _) => {
                    block::run(
                        device,
                        options,
                        &limits,
                        &mut reader,
                        tx.clone(),
                        &compression,
                        &counts,
                    )
                    .await
                }
                (None, Some(volume)) => {
                    target::run(
                        volume,
                        options,
                        filter,
                        limits,
                        &mut reader,
                        session_tx.clone(),
                        counts.clone(),
                        session_streams(registration.as_ref()),
                    )
                    .await
                }
                (None, None) => {
                    compression.on.store(options.compress, Ordering::Relaxed);
                    if let Some(registration) = &registration {
                        registration.compress_joins(options.compress);
                    }
                    let source = pull_source::Pulled {
                        path: &export.path,
                        options,
                        filter,
                        limits: &limits,
                        compression,
                    };
                    let streams = session_streams(registration.as_ref());
                    pull_source::run(source, &mut reader, tx.clone(), streams).await
                }
            };
            // The session is over: its volume and its session slot are free again,
            // also while its joined streams get their grace to close (below), or one
            // client could hold every slot by ending sessions on one volume in a loop.
            drop(lock);
            drop(slot);
            // Each arm counts the outcome before the session stops counting as active, so
            // a scrape that sees it gone also sees how it ended.
            let code = session_exit(&result);
            match result {
                Ok(stats) => {
                    tracing::info!(?stats, "session done");
                    counts.file_errors.fetch_add(stats.file_errors, Relaxed);
                    metrics.sessions_active.fetch_sub(1, Relaxed);
                }
                Err(e) => {
                    tracing::error!("session failed: {e}");
                    metrics.session_failed(e.exit);
                    metrics.sessions_active.fetch_sub(1, Relaxed);
                    if let Some(error) = e.to_peer() {
                        let _ = session_tx.send(error).await;
                    }
                }
            }
            drop(session_tx);
            // After the error went out: the client closes its joined streams once its
            // session has ended, and this waits (a little) for that.
            if let Some(registration) = registration {
                registration.end(&shared.hubs).await;
            }
            Some(code)
        }
    };
    drop(tx);
    let _ = writer.await;
    code
}

/// The streams a session runs over: those its registration takes joins for, or stream 0.
fn session_streams(registration: Option<&Registration>) -> SessionStreams {
    match registration {
        Some(r) => SessionStreams::of(r.streams_max, &r.streams),
        None => SessionStreams::one(),
    }
}

/// The exit code of a session `serve --once` exits with: its error's class, else 23
/// (partial) if a file failed, else 0.
pub(super) fn session_exit(result: &Result<TargetStats, EngineError>) -> ExitCode {
    match result {
        Ok(stats) if stats.file_errors > 0 => ExitCode::Partial,
        Ok(_) => ExitCode::Ok,
        Err(e) => e.exit,
    }
}

#[cfg(test)]
#[path = "connection_tests.rs"]
mod tests;
