//! The server: `ferry serve`. Accepts mutual-TLS connections, admits one session per
//! volume at a time, and runs each: as the target of a push, or as the source of a pull
//! (`SessionOptions::pull`, see `pull_source`).
//!
//! ```text
//! listener ─▶ TLS accept ─▶ Hello ─▶ volume lock ─▶ Welcome ─┬▶ target::run     (push)
//!                              │                             └▶ pull_source::run (pull)
//!                              └──▶ Refused (version, unknown, busy or read-only volume)
//! metrics listener ─▶ GET /metrics ─▶ Arc<Metrics> (counted by all of the above)
//! ```

mod block;
mod connection;
mod http;
pub(crate) mod hub;
mod identity;
#[cfg(feature = "testing")]
pub(crate) mod in_process;
mod metrics;
mod preauth;
mod pull_source;

use connection::{connection, Shared};

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ferry_net::pairing::JoinCode;
use ferry_tree::Privileges;
use tokio::sync::mpsc;

use crate::enroll::Pairing;
use crate::error::EngineError;
use crate::exit::ExitCode;
use crate::ratelimit::RateLimiter;

/// Stops a background task when the serve loop returns.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One served volume: `--volume NAME=PATH[:ro]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Export {
    pub name: String,
    pub path: PathBuf,
    /// Pulls only: a push to it is refused.
    pub read_only: bool,
}

/// Where a server's certificates come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerIdentity {
    /// `--tls-dir`: tls.crt, tls.key and ca.crt as `ferry certs` writes them.
    Dir(PathBuf),
    /// Its own CA in a state directory (`--state-dir`), made on the first run for
    /// `names` (empty: the stored names, or this host's names and addresses).
    State { dir: PathBuf, names: Vec<String> },
}

/// Everything `ferry serve` needs, validated.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub identity: ServerIdentity,
    /// `--pair`: open a pairing window this long (needs [`ServerIdentity::State`]).
    pub pair_ttl: Option<Duration>,
    /// `--revoke`: client certificate fingerprints refused.
    pub revoke: Vec<[u8; 32]>,
    /// `--revoked-file`: more of them, read again when it changes.
    pub revoked_file: Option<PathBuf>,
    pub volumes: Vec<Export>,
    /// Exit after the first admitted session ends, with its exit code.
    pub once: bool,
    /// Idle time after which a heartbeat keeps routers from cutting the connection.
    pub heartbeat: Duration,
    /// Flush every received file to stable storage before renaming it into place,
    /// whatever the source asks.
    pub fsync: bool,
    /// Serve Prometheus metrics over plain HTTP on this address (`GET /metrics`).
    pub metrics_listen: Option<SocketAddr>,
    /// `--bwlimit`: bytes per second all sessions together read, and write, at most.
    pub bwlimit: Option<u64>,
    /// `--max-streams`: the streams a session may have, stream 0 included (1..=16; 1
    /// takes no joined streams).
    pub max_streams: u16,
}

/// What a target must do while it may still hold privileges: its TLS files read and its
/// port bound. Needs no runtime, so a process can prepare, drop to another identity while
/// it is still single-threaded, and then start the runtime and [`serve_bound`].
pub struct Bound {
    tls: ferry_net::pairing::ServerTls,
    pairing: Option<Arc<Pairing>>,
    /// The join code and the server certificate's names, with `--pair`.
    join: Option<(JoinCode, Vec<String>)>,
    listener: std::net::TcpListener,
    metrics: Option<std::net::TcpListener>,
}

impl Bound {
    /// With `--pair`: the join code as the user types it (it holds the secret: print it
    /// once, never log it) and the server certificate's names.
    pub fn join_code(&self) -> Option<(String, &[String])> {
        self.join
            .as_ref()
            .map(|(code, names)| (code.reveal(), names.as_slice()))
    }
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
    let (tls, pairing, join) = identity::prepare(config)?;
    let listener = ferry_net::listen_std(config.listen)?;
    let metrics = match config.metrics_listen {
        Some(addr) => Some(ferry_net::listen_std(addr)?),
        None => None,
    };
    Ok(Bound {
        tls,
        pairing,
        join,
        listener,
        metrics,
    })
}

/// The code a session ended with, for `serve --once`: its own, or, for a session that
/// panicked (a bug, logged as one), 23: the session did not transfer everything, and the
/// log says why.
fn ended_code(joined: Result<Option<ExitCode>, tokio::task::JoinError>) -> Option<ExitCode> {
    match joined {
        Ok(code) => code,
        Err(e) if e.is_panic() => {
            let panic = e.into_panic();
            let text = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".into());
            tracing::error!(
                "a session ended on an internal error (a bug in ferry; please report it): {text}"
            );
            Some(ExitCode::Partial)
        }
        Err(_) => None,
    }
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
    let Bound {
        tls,
        pairing,
        join: _,
        listener,
        metrics,
    } = bound;
    let mut volumes = HashMap::new();
    let mut block_volumes = std::collections::HashSet::new();
    for export in &config.volumes {
        let name = &export.name;
        if !export.path.is_dir() && ferry_tree::DeviceKind::of(&export.path).is_none() {
            return Err(EngineError::usage(format!(
                "volume {name}: {} is not a directory, a block device or a disk image file; give --volume NAME=PATH with an existing one",
                export.path.display()
            )));
        }
        let mut export = export.clone();
        if !export.path.is_dir() {
            export.path = block::canonical(&export.path)?;
            block_volumes.insert(name.clone());
        }
        if volumes.insert(name.clone(), export).is_some() {
            return Err(EngineError::usage(format!("volume {name} is given twice")));
        }
    }
    let listener = tokio::net::TcpListener::from_std(listener)
        .map_err(|e| EngineError::usage(format!("cannot listen on {}: {e}", config.listen)))?;
    let local = listener
        .local_addr()
        .map_err(|e| EngineError::usage(format!("cannot read the bound address: {e}")))?;
    let _expiry = pairing.as_ref().map(|pairing| {
        AbortOnDrop(tokio::spawn(crate::enroll::watch_expiry(
            pairing.window.clone(),
        )))
    });
    let mut shared = Shared::new(tls, volumes, Privileges::current());
    shared.pairing = pairing;
    shared.fsync = config.fsync;
    shared.max_streams = config.max_streams;
    shared.block_volumes = block_volumes;
    if let Some(rate) = config.bwlimit {
        shared.read_limit = Some(Arc::new(RateLimiter::new(rate)));
        shared.write_limit = Some(Arc::new(RateLimiter::new(rate)));
    }
    let shared = Arc::new(shared);
    let _metrics_task = match metrics {
        Some(metrics) => {
            let metrics = tokio::net::TcpListener::from_std(metrics)
                .map_err(|e| EngineError::usage(format!("cannot listen for metrics: {e}")))?;
            if let Ok(addr) = metrics.local_addr() {
                tracing::info!("metrics on http://{addr}/metrics");
            }
            Some(AbortOnDrop(tokio::spawn(http::serve_metrics(
                metrics,
                shared.metrics.clone(),
            ))))
        }
        None => None,
    };
    let summaries = shared.clone();
    let _failure_log = AbortOnDrop(tokio::spawn(async move {
        let mut every = tokio::time::interval(metrics::FAILURE_LOG_INTERVAL);
        loop {
            every.tick().await;
            summaries.failures.summarize();
        }
    }));
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
                // Never refused: when every slot is taken, one of the connections
                // holding them is evicted (counted and logged by its own task).
                let (ticket, _) = shared.preauth.admit(peer.ip());
                let shared = shared.clone();
                let ended_tx = ended_tx.clone();
                let heartbeat = config.heartbeat;
                let span = tracing::info_span!("session", %peer);
                // The session runs in a task of its own, so that even a panic in it (a
                // bug) ends it with a code `--once` exits with, not a server that waits
                // for ever.
                let session = tokio::spawn(tracing::Instrument::instrument(async move {
                    connection(&shared, stream, peer, heartbeat, ticket).await
                }, span.clone()));
                tokio::spawn(tracing::Instrument::instrument(async move {
                    if let Some(code) = ended_code(session.await) {
                        let _ = ended_tx.send(code);
                    }
                }, span));
            }
            Some(code) = ended.recv(), if config.once => return Ok(code),
            () = &mut shutdown => {
                tracing::info!("stopping on a signal");
                return Ok(ExitCode::Interrupted);
            }
        }
    }
}

#[cfg(test)]
mod ended_tests {
    use super::*;

    #[tokio::test]
    async fn a_session_that_panics_ends_with_23_and_one_that_is_cancelled_with_nothing() {
        let panicked = tokio::spawn(async { panic!("boom") });
        let joined: Result<Option<ExitCode>, _> = panicked.await;
        assert_eq!(ended_code(joined), Some(ExitCode::Partial));
        let ok = tokio::spawn(async { Some(ExitCode::Ok) });
        assert_eq!(ended_code(ok.await), Some(ExitCode::Ok));
        let pending = tokio::spawn(std::future::pending::<Option<ExitCode>>());
        pending.abort();
        assert_eq!(ended_code(pending.await), None);
    }
}
