//! The target side: `ferry serve`. Accepts mutual-TLS connections, admits one push per
//! volume at a time, and runs each session.
//!
//! ```text
//! listener ─▶ TLS accept ─▶ Hello ─▶ volume lock ─▶ Welcome ─▶ session::run
//!                              └──▶ Refused (version, unknown or busy volume)
//! ```

mod basis;
mod decide;
mod dirs;
mod finish;
mod plan;
mod receive;
mod session;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry_net::TlsDir;
use ferry_proto::{
    escape, ErrorClass, Limits, Message, RefuseReason, TargetStats, PROTOCOL_VERSION,
};
use ferry_tree::{NotApplied, Privileges, Volume};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;

use crate::error::EngineError;
use crate::exit::ExitCode;
use crate::framed::{spawn_writer, FrameReader, FrameSender};

/// Everything `ferry serve` needs, validated.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub tls_dir: PathBuf,
    pub volumes: Vec<(String, PathBuf)>,
    /// Exit after the first admitted session ends, with its exit code.
    pub once: bool,
    /// Idle time after which a heartbeat keeps routers from cutting the connection.
    pub heartbeat: Duration,
}

/// How long a client may take from TCP accept to its Hello.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// Counts the planner and finisher keep, folded into [`TargetStats`] at the end.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    pub entries_created: u64,
    pub meta_updated: u64,
    pub file_errors: u64,
    pub not_applied_owner: u64,
    pub not_applied_xattrs: u64,
    pub not_applied_special: u64,
}

impl Tally {
    pub fn not_applied(&mut self, n: NotApplied) {
        self.not_applied_owner += u64::from(n.owner);
        self.not_applied_xattrs += u64::from(n.xattrs);
        self.not_applied_special += u64::from(n.special);
    }

    pub fn add_to(&self, stats: &mut TargetStats) {
        stats.entries_created += self.entries_created;
        stats.meta_updated += self.meta_updated;
        stats.file_errors += self.file_errors;
        stats.not_applied_owner += self.not_applied_owner;
        stats.not_applied_xattrs += self.not_applied_xattrs;
        stats.not_applied_special += self.not_applied_special;
    }
}

struct Shared {
    acceptor: TlsAcceptor,
    volumes: HashMap<String, PathBuf>,
    busy: Mutex<HashSet<String>>,
    privileges: Privileges,
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

/// What a target must do while it may still hold privileges: its TLS files read and its
/// port bound. Needs no runtime, so a process can prepare, drop to another identity while
/// it is still single-threaded, and then start the runtime and [`serve_bound`].
pub struct Bound {
    tls: Arc<tokio_rustls::rustls::ServerConfig>,
    listener: std::net::TcpListener,
}

impl std::fmt::Debug for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bound")
            .field("listener", &self.listener)
            .finish_non_exhaustive()
    }
}

/// Reads the TLS files and binds the listening port of `config`.
pub fn bind(config: &ServeConfig) -> Result<Bound, EngineError> {
    let tls = ferry_net::server_config(&TlsDir::new(&config.tls_dir))?;
    let listener = ferry_net::listen_std(config.listen)?;
    Ok(Bound { tls, listener })
}

/// Runs the target until `shutdown` resolves (exit 20) or, with `once`, until the first
/// admitted session ends. `ready` is called with the bound address.
pub async fn serve(
    config: ServeConfig,
    shutdown: impl Future<Output = ()>,
    ready: impl FnOnce(SocketAddr),
) -> Result<ExitCode, EngineError> {
    let bound = bind(&config)?;
    serve_bound(config, bound, shutdown, ready).await
}

/// [`serve`] on a listener and TLS config prepared by [`bind`].
pub async fn serve_bound(
    config: ServeConfig,
    bound: Bound,
    shutdown: impl Future<Output = ()>,
    ready: impl FnOnce(SocketAddr),
) -> Result<ExitCode, EngineError> {
    let Bound { tls, listener } = bound;
    let mut volumes = HashMap::new();
    for (name, path) in &config.volumes {
        if !path.is_dir() {
            return Err(EngineError::usage(format!(
                "volume {name}: {} is not a directory; give --volume NAME=PATH with an existing directory",
                path.display()
            )));
        }
        if volumes.insert(name.clone(), path.clone()).is_some() {
            return Err(EngineError::usage(format!("volume {name} is given twice")));
        }
    }
    let listener = tokio::net::TcpListener::from_std(listener)
        .map_err(|e| EngineError::usage(format!("cannot listen on {}: {e}", config.listen)))?;
    let local = listener
        .local_addr()
        .map_err(|e| EngineError::usage(format!("cannot read the bound address: {e}")))?;
    let shared = Arc::new(Shared {
        acceptor: TlsAcceptor::from(tls),
        volumes,
        busy: Mutex::new(HashSet::new()),
        privileges: Privileges::current(),
    });
    ready(local);
    tracing::info!(%local, volumes = config.volumes.len(), "serving");

    let (ended_tx, mut ended) = mpsc::unbounded_channel::<ExitCode>();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        tracing::warn!("accept failed: {e}");
                        continue;
                    }
                };
                let shared = shared.clone();
                let ended_tx = ended_tx.clone();
                let heartbeat = config.heartbeat;
                tokio::spawn(async move {
                    if let Some(code) = connection(&shared, stream, peer, heartbeat).await {
                        let _ = ended_tx.send(code);
                    }
                });
            }
            Some(code) = ended.recv(), if config.once => return Ok(code),
            () = &mut shutdown => {
                tracing::info!("stopping on a signal");
                return Ok(ExitCode::Interrupted);
            }
        }
    }
}

/// One connection. Returns the session's exit code if it was admitted.
async fn connection(
    shared: &Shared,
    stream: TcpStream,
    peer: SocketAddr,
    heartbeat: Duration,
) -> Option<ExitCode> {
    let span = tracing::info_span!("session", %peer);
    let _enter = span.enter();
    let _ = ferry_net::tune(&stream);
    let tls = match tokio::time::timeout(
        HANDSHAKE_TIMEOUT,
        ferry_net::tls_accept(&shared.acceptor, stream),
    )
    .await
    {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            tracing::warn!("TLS handshake with {peer} failed: {e}");
            return None;
        }
        Err(_) => {
            tracing::warn!("TLS handshake with {peer} timed out");
            return None;
        }
    };
    let (read, write) = tokio::io::split(tls);
    let limits = Limits::default();
    let mut reader = FrameReader::new(read, limits.clone());
    let (tx, writer) = spawn_writer(write, 64, heartbeat);
    let code = match admit(shared, &mut reader, &tx).await {
        Admission::Refused => None,
        Admission::Admitted(volume, options, lock) => {
            tracing::info!(volume = %lock.name, ?options, "session started");
            let result = session::run(volume, options, limits, &mut reader, tx.clone()).await;
            drop(lock);
            Some(match result {
                Ok(stats) => {
                    tracing::info!(?stats, "session done");
                    if stats.file_errors > 0 {
                        ExitCode::Partial
                    } else {
                        ExitCode::Ok
                    }
                }
                Err(e) => {
                    tracing::error!("session failed: {e}");
                    let class = match e.exit {
                        ExitCode::Protocol => Some(ErrorClass::Protocol),
                        ExitCode::FileIo => Some(ErrorClass::FileIo),
                        _ => None,
                    };
                    if let Some(class) = class {
                        let _ = tx
                            .send(Message::Error {
                                class,
                                message: e.message.clone(),
                            })
                            .await;
                    }
                    e.exit
                }
            })
        }
    };
    drop(tx);
    let _ = writer.await;
    code
}

enum Admission<'a> {
    Admitted(Arc<Volume>, ferry_proto::SessionOptions, VolumeLock<'a>),
    /// Refused, or a probe that was answered: either way no session ran.
    Refused,
}

async fn admit<'a, R: tokio::io::AsyncRead + Unpin>(
    shared: &'a Shared,
    reader: &mut FrameReader<R>,
    tx: &FrameSender,
) -> Admission<'a> {
    let refuse = |reason, message: String| async move {
        tracing::warn!("refused: {message}");
        let _ = tx.send(Message::Refused { reason, message }).await;
        Admission::Refused
    };
    let hello = match tokio::time::timeout(HANDSHAKE_TIMEOUT, reader.next()).await {
        Ok(Ok(Some(hello))) => hello,
        Ok(Ok(None)) => return Admission::Refused,
        Ok(Err(e)) => {
            tracing::warn!("before Hello: {e}");
            return Admission::Refused;
        }
        Err(_) => {
            tracing::warn!("no Hello within {} s", HANDSHAKE_TIMEOUT.as_secs());
            return Admission::Refused;
        }
    };
    let Message::Hello {
        version,
        volume,
        options,
    } = hello
    else {
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
    let Some(path) = shared.volumes.get(&name) else {
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
            format!("volume {name} is busy with another push; wait for it to finish (one push per volume at a time)"),
        )
        .await;
    }
    let lock = VolumeLock {
        shared,
        name: name.clone(),
    };
    let volume = match Volume::open(path, shared.privileges) {
        Ok(volume) => Arc::new(volume),
        Err(e) => {
            return refuse(
                RefuseReason::VolumeUnavailable,
                format!("volume {name} cannot be opened at the target: {e}"),
            )
            .await
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
    Admission::Admitted(volume, options, lock)
}
