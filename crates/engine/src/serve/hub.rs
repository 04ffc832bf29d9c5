//! The running sessions that take joined streams, and the answer to a `Join`.
//!
//! A session whose client asked for streams (Hello bit 12; not a probe, a block session
//! or a dry run) gets a 32-byte key from the OS random source and registers a [`Hub`]
//! under BLAKE3 of that key: the session's [`JoinGate`] and a channel to the session's
//! [`JoinedStreams`]. A `Join` is checked in the order of docs/protocol.md ("Streams"):
//! its version (by the connection, as for a Hello), the key (unknown → `UnknownSession`),
//! the opener's client certificate and SNI (else `UnknownSession` too, with the same
//! words: no oracle for a guessed or stolen key), a session finishing or over
//! (`JoinClosed`), the session's limit or [`MAX_JOINED`] over all sessions
//! (`TooManyStreams`), a stream joined before (`StreamTaken`); else `Joined` and the
//! connection goes to the session.
//!
//! ```text
//! admit(Hello, bit 12) ─▶ Hubs::register ─▶ Welcome{streams_max, key}
//! Join ─▶ Hubs::join ─▶ JoinGate ─▶ Joined ─▶ channel ─▶ session's JoinedStreams
//! session finishing (Done) ─▶ JoinGate::close;  session over ─▶ Registration::end
//! ```
//!
//! The key is never logged: `SessionKey`'s `Debug` hides it and this module logs only
//! its hash's absence. Must not import a role (`source`, `target`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use ferry_net::pairing::digest::hex;
use ferry_proto::session::join::{JoinGate, JoinRefusal, UNKNOWN_SESSION_MESSAGE};
use ferry_proto::session::stream::SessionKey;
use ferry_proto::{Message, RefuseReason, SessionOptions};
use tokio::sync::mpsc;

use super::metrics::{FailureLog, JoinResult, Metrics};
use crate::error::EngineError;
use crate::framed::{BoxedRead, Compression, FrameReader, FrameSender, WriterTask};
use crate::joined::{JoinSlot, JoinedConn, JoinedStreams};

/// Joined streams a server holds over all its sessions at once; more are refused as
/// `TooManyStreams`.
pub const MAX_JOINED: usize = 256;
/// `serve --max-streams` when not given.
pub const DEFAULT_MAX_STREAMS: u16 = 8;
/// How long a session's joined streams wait, once it is over, for the client to close
/// them (it does at the end of its own session).
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// Who opened a session: what a joining connection must show again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Opener {
    /// SHA-256 of the client certificate's leaf.
    pub identity: [u8; 32],
    /// The server name the client asked for, if any.
    pub sni: Option<String>,
}

/// One session that takes joins.
pub struct Hub {
    opener: Opener,
    gate: Mutex<JoinGate>,
    to_session: mpsc::Sender<JoinedConn>,
    /// The session's frames go compressed (a pull with `--compress`: this side sends).
    compress: AtomicBool,
}

impl Hub {
    /// The session is finishing: later joins are refused as late.
    pub fn close(&self) {
        self.gate.lock().expect("join gate lock").close();
    }
}

/// The registry of a server's sessions that take joins, by BLAKE3 of their key.
#[derive(Default)]
pub struct Hubs {
    sessions: Mutex<HashMap<[u8; 32], Arc<Hub>>>,
    /// Joined streams held now over all sessions.
    joined: Arc<AtomicUsize>,
}

/// A session's place in [`Hubs`], from its Welcome to its end. Dropped without
/// [`Registration::end`] (the session panicked, or its future was dropped), it still
/// forgets the key and closes the session's joined streams (at once, without a grace).
pub struct Registration {
    id: [u8; 32],
    hubs: Weak<Hubs>,
    pub hub: Arc<Hub>,
    pub streams: Arc<JoinedStreams>,
    pub key: SessionKey,
    pub streams_max: u16,
    taker: tokio::task::JoinHandle<()>,
}

/// How many streams a session with these `options` may have on a server started with
/// `--max-streams max`: 1 unless the client asked for streams, and never for a probe, a
/// block session or a dry run.
pub fn streams_max(options: &SessionOptions, max: u16) -> u16 {
    if !options.streams || options.probe || options.block || options.dry_run {
        return 1;
    }
    max.clamp(1, ferry_proto::Limits::default().max_streams)
}

/// Who a connection is: its client certificate's leaf SHA-256 and the SNI it asked for.
pub fn opener(tls: &tokio_rustls::rustls::ServerConnection) -> Opener {
    let identity = tls
        .peer_certificates()
        .and_then(|certs| certs.first())
        .map(|leaf| ferry_net::pairing::digest::sha256(leaf))
        .unwrap_or_default();
    Opener {
        identity,
        sni: tls.server_name().map(str::to_owned),
    }
}

impl Hubs {
    /// The registration of a session admitted with `options` on a server of
    /// `--max-streams max`, if it takes joins (see [`streams_max`]).
    pub fn admit(
        self: &Arc<Self>,
        options: &SessionOptions,
        max: u16,
        opener: Opener,
    ) -> Option<Registration> {
        match streams_max(options, max) {
            1 => None,
            streams_max => match self.register(streams_max, opener) {
                Ok(registration) => Some(registration),
                Err(e) => {
                    tracing::warn!("this session takes no joined streams: {e}");
                    None
                }
            },
        }
    }

    /// Registers a session of `streams_max` (> 1) streams opened by `opener`, with a new
    /// key from the OS random source.
    pub fn register(
        self: &Arc<Self>,
        streams_max: u16,
        opener: Opener,
    ) -> Result<Registration, EngineError> {
        let mut bytes = [0u8; 32];
        ferry_net::pairing::digest::random(&mut bytes)?;
        Ok(self.register_key(SessionKey::new(bytes), streams_max, opener))
    }

    /// [`Hubs::register`] with a given key (tests forge and reuse keys).
    pub fn register_key(
        self: &Arc<Self>,
        key: SessionKey,
        streams_max: u16,
        opener: Opener,
    ) -> Registration {
        let id = *blake3::hash(key.as_bytes()).as_bytes();
        let (to_session, mut from_hub) = mpsc::channel::<JoinedConn>(usize::from(streams_max));
        let streams = Arc::new(JoinedStreams::new(Box::new(|stream, why| {
            tracing::warn!("joined stream {stream} lost: {why}; the session goes on without it");
        })));
        let taker = {
            let streams = streams.clone();
            // In the session's span, which the streams it adds keep.
            tokio::spawn(tracing::Instrument::in_current_span(async move {
                while let Some(conn) = from_hub.recv().await {
                    streams.add(conn);
                }
            }))
        };
        let hub = Arc::new(Hub {
            gate: Mutex::new(JoinGate::new(
                streams_max,
                opener.identity,
                opener.sni.clone(),
            )),
            opener,
            to_session,
            compress: AtomicBool::new(false),
        });
        self.sessions
            .lock()
            .expect("hubs lock")
            .insert(id, hub.clone());
        Registration {
            id,
            hubs: Arc::downgrade(self),
            hub,
            streams,
            key,
            streams_max,
            taker,
        }
    }

    /// Checks a `Join` (its version already checked) and on success counts the stream.
    fn join(
        &self,
        key: &SessionKey,
        stream: u16,
        joiner: &Opener,
    ) -> Result<(Arc<Hub>, JoinSlot), Refusal> {
        let id = *blake3::hash(key.as_bytes()).as_bytes();
        let sessions = self.sessions.lock().expect("hubs lock");
        let hub = sessions.get(&id).ok_or(Refusal::Unknown)?.clone();
        let mut gate = hub.gate.lock().expect("join gate lock");
        if self.joined.load(SeqCst) >= MAX_JOINED {
            // The gate's order still holds (who, then when, then how many): a stream
            // number over any session's limit is refused without being taken.
            return Err(
                match gate.handle_join(u16::MAX, &joiner.identity, joiner.sni.as_deref()) {
                    Err(
                        refusal @ (JoinRefusal::OtherIdentity
                        | JoinRefusal::OtherSni
                        | JoinRefusal::Closed),
                    ) => Refusal::Gate(refusal, hub.opener.identity),
                    _ => Refusal::ServerFull,
                },
            );
        }
        gate.handle_join(stream, &joiner.identity, joiner.sni.as_deref())
            .map_err(|refusal| Refusal::Gate(refusal, hub.opener.identity))?;
        self.joined.fetch_add(1, SeqCst);
        drop(gate);
        Ok((hub, JoinSlot(self.joined.clone())))
    }

    /// Joined streams held now over all sessions.
    #[cfg(test)]
    pub fn joined(&self) -> usize {
        self.joined.load(SeqCst)
    }
}

impl Registration {
    /// Frames this side sends on the session's joined streams go compressed, as on its
    /// first (a pull with `--compress`).
    pub fn compress_joins(&self, on: bool) {
        self.hub.compress.store(on, SeqCst);
    }

    /// The session is over: no more joins (the key is forgotten), and its joined streams
    /// close once the client has closed them (or after a grace).
    pub async fn end(self, hubs: &Hubs) {
        self.unregister(hubs);
        self.streams.close(CLOSE_GRACE).await;
    }

    /// No more joins: the gate closes, the key leaves the registry (only if it is still
    /// this session's), and joined connections no longer reach the session.
    /// Never panics (it runs in `Drop`, maybe while a panic unwinds): a poisoned lock is
    /// taken as it is.
    fn unregister(&self, hubs: &Hubs) {
        self.hub
            .gate
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .close();
        let mut sessions = hubs.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        if sessions
            .get(&self.id)
            .is_some_and(|hub| Arc::ptr_eq(hub, &self.hub))
        {
            sessions.remove(&self.id);
        }
        drop(sessions);
        self.taker.abort();
    }

    /// Closes the gate once the session is finishing: a pull's source when `reader` reads
    /// the target's Done, a push's target when it sends Done (through the sender this
    /// returns, which forwards to `tx`).
    pub fn watch_finishing<R: tokio::io::AsyncRead + Unpin>(
        &self,
        pull: bool,
        reader: &mut FrameReader<R>,
        tx: FrameSender,
    ) -> FrameSender {
        if !pull {
            return self.closing_on_done(tx);
        }
        let (hub, streams) = (self.hub.clone(), self.streams.clone());
        reader.observe(Box::new(move |m| {
            if matches!(m, Message::Done { .. }) {
                hub.close();
                streams.finishing();
            }
        }));
        tx
    }

    /// A sender for the session that closes the gate as `Done` passes to the peer (the
    /// target of a push is finishing once it says Done).
    pub fn closing_on_done(&self, out: FrameSender) -> FrameSender {
        let (tx, mut rx) = mpsc::channel::<Message>(64);
        let (hub, streams) = (self.hub.clone(), self.streams.clone());
        tokio::spawn(async move {
            while let Some(message) = rx.recv().await {
                if matches!(message, Message::Done { .. }) {
                    hub.close();
                    streams.finishing();
                }
                if out.send(message).await.is_err() {
                    break;
                }
            }
        });
        tx
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        // After `end` this finds nothing left to do. Otherwise the session's joined
        // streams close as the last `JoinedStreams` goes (the taker held one), which
        // gives their server-wide count back.
        if let Some(hubs) = self.hubs.upgrade() {
            self.unregister(&hubs);
        }
    }
}

/// Why a join was refused.
enum Refusal {
    Unknown,
    /// The gate's refusal, and the opener's certificate (for the log).
    Gate(JoinRefusal, [u8; 32]),
    ServerFull,
}

/// A `Join` at the server, after TLS: the connection's parts and who it is.
pub struct Joining {
    pub key: SessionKey,
    pub stream: u16,
    pub joiner: Opener,
    pub reader: FrameReader<BoxedRead>,
    pub tx: FrameSender,
    pub writer: WriterTask,
    /// The connection writer's compression, turned on as the session's is.
    pub compression: Arc<Compression>,
}

/// Answers a `Join` whose version is this server's: `Joined` and the connection goes to
/// its session, or `Refused` and it is closed.
pub async fn answer(hubs: &Hubs, metrics: &Metrics, failures: &FailureLog, joining: Joining) {
    let Joining {
        key,
        stream,
        joiner,
        reader,
        tx,
        writer,
        compression,
    } = joining;
    let refusal = match hubs.join(&key, stream, &joiner) {
        Ok((hub, slot)) => {
            compression.on.store(hub.compress.load(SeqCst), SeqCst);
            let _ = tx.send(Message::Joined { stream }).await;
            let conn = JoinedConn {
                stream,
                reader,
                tx,
                writer,
                slot: Some(slot),
            };
            match hub.to_session.try_send(conn) {
                Ok(()) => {
                    metrics.stream_join(JoinResult::Joined);
                    tracing::info!("stream {stream} joined the session");
                    return;
                }
                // The session ended between the check and now: the connection closes
                // (the client sees it lost, as any stream cut at the session's end).
                Err(e) => {
                    metrics.stream_join(JoinResult::Closed);
                    let conn = match e {
                        mpsc::error::TrySendError::Full(c)
                        | mpsc::error::TrySendError::Closed(c) => c,
                    };
                    drop(conn.tx);
                    let _ = conn.writer.await;
                    return;
                }
            }
        }
        Err(refusal) => refusal,
    };
    let (reason, message, result) = match refusal {
        Refusal::Unknown => (
            RefuseReason::UnknownSession,
            UNKNOWN_SESSION_MESSAGE.to_owned(),
            JoinResult::Unknown,
        ),
        Refusal::ServerFull => (
            RefuseReason::TooManyStreams,
            format!("this server holds its limit of {MAX_JOINED} joined streams over all sessions; the session goes on over the streams it has"),
            JoinResult::TooMany,
        ),
        Refusal::Gate(refusal, opener) => {
            let result = match &refusal {
                JoinRefusal::OtherIdentity | JoinRefusal::OtherSni => {
                    failures.join_refused(|| {
                        format!(
                            "{refusal}: opener's certificate sha256:{}, the join's sha256:{} (SNI {:?}); refused as an unknown session",
                            hex(&opener),
                            hex(&joiner.identity),
                            joiner.sni.as_deref().unwrap_or("")
                        )
                    });
                    JoinResult::Identity
                }
                JoinRefusal::Closed => JoinResult::Closed,
                JoinRefusal::OverLimit { .. } => JoinResult::TooMany,
                JoinRefusal::Taken { .. } => JoinResult::Taken,
            };
            (refusal.reason(), refusal.peer_message(), result)
        }
    };
    metrics.stream_join(result);
    match result {
        // Logged through the failure log.
        JoinResult::Identity => {}
        // A join that lands as its session finishes: the client says nothing of it either.
        JoinResult::Closed => tracing::info!("join of stream {stream} refused: {message}"),
        _ => tracing::warn!("join of stream {stream} refused: {message}"),
    }
    let _ = tx.send(Message::Refused { reason, message }).await;
    drop(tx);
    drop(reader);
    let _ = writer.await;
}

#[cfg(test)]
#[path = "hub_tests.rs"]
mod tests;
