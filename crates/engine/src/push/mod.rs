//! The source side: `ferry push SRC ferry://HOST:PORT/VOLUME`. This module connects,
//! says Hello, retries after network failures and reports the summary; the session
//! itself (listing, senders, the target's replies) is [`source`], which `ferry serve`
//! also runs to answer a pull.
//!
//! ```text
//! push ─▶ connect + handshake ─▶ source::source_session ─▶ Done ─┬▶ summary
//!   ▲                                                           │
//!   └──────────── retry (backoff) after a network failure ◀─────┘
//! ```

mod block;

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferry_net::WireCounter;
use ferry_proto::{Filter, Limits, SessionOptions, TargetStats};
use ferry_tree::{WalkOptions, Walker};

use crate::client::attempt::{connect_timeout, Attempts};
use crate::client::connect::{self, Route};
use crate::client::handshake::welcome;
use crate::client::streams::{self, JoinWire, Streams};
use crate::error::EngineError;
use crate::framed::{spawn_compressing_writer, FrameReader};
use crate::joined::SessionStreams;
use crate::ratelimit::RateLimiter;
use crate::report::progress::Progress;
use crate::report::summary::{outcome, SourceCounts, Summary};
use crate::report::Ticker;
use crate::report::{Output, Reporter};
use crate::source::{source_session, Shared, Source};

/// Everything `ferry push` needs, validated.
#[derive(Clone, Debug)]
pub struct PushConfig {
    pub src: PathBuf,
    pub route: Route,
    pub options: SessionOptions,
    pub output: Output,
    /// Idle time after which a heartbeat keeps routers from cutting the connection.
    pub heartbeat: Duration,
    /// Sessions to try again after a network failure; files already in place are not
    /// re-sent and a cut large file resumes from its verified partial.
    pub retries: u32,
    /// Show a live progress line on stderr (`--progress`, or stderr is a terminal).
    pub progress: bool,
    /// `--bwlimit`: bytes per second this push writes to its connection, at most.
    pub bwlimit: Option<u64>,
    /// Include/exclude rules (lost+found at the root excluded unless asked for).
    pub filter: Filter,
    /// What this side can and cannot do with its capabilities: a `privileges` event
    /// after `start` (`--json`). `None` says nothing.
    pub privileges: Option<ferry_tree::PrivilegeReport>,
    /// `--streams`: the connections the session runs over (`options.streams` follows it).
    pub streams: Streams,
}

/// Runs a push to the end and returns its summary (which carries the exit code).
/// `shutdown` resolving (a signal) stops the push with exit code 20.
pub async fn push(mut config: PushConfig, shutdown: impl Future<Output = ()>) -> Summary {
    if ferry_tree::DeviceKind::of(&config.src).is_some() {
        return block::push_block(config, shutdown).await;
    }
    config.options.streams = config.streams.asks_for_joins();
    let started = Instant::now();
    let reporter = Reporter::new(config.output.clone(), config.progress);
    let wire = WireCounter::default();
    let progress = Arc::new(Progress::new(wire.clone(), config.options.delete));
    let limit = config.bwlimit.map(|rate| Arc::new(RateLimiter::new(rate)));
    let route = &config.route;
    let target = format!("ferry://{}:{}/{}", route.host, route.port, route.volume);
    reporter.start(
        &config.src.display().to_string(),
        &target,
        &route.volume,
        config.options.dry_run,
    );
    if let Some(report) = &config.privileges {
        reporter.privileges(report);
    }
    let ticker = Ticker::start(progress.clone(), reporter.clone());
    let most_streams = AtomicU64::new(1);
    let session = Session {
        config: &config,
        wire: &wire,
        reporter: &reporter,
        progress: &progress,
        limit: limit.as_ref(),
        label: &target,
        most_streams: &most_streams,
    };

    tokio::pin!(shutdown);
    let mut attempts = Attempts::new(config.retries, &reporter, &progress, &target, shutdown);
    let mut counts = SourceCounts::default();
    // Files the target committed in sessions that were then cut: those it resolved
    // before the cut, and whole files sent that the next attempt finds unchanged.
    let mut carried = TargetStats::default();
    // Of those, the ones the cut attempt had resolved: the next attempt finds them
    // unchanged and counts them so, while they were in fact transferred.
    let mut resolved_by_cut_attempts = 0u64;
    let delivered = Arc::new(Mutex::new(HashMap::new()));
    let result = loop {
        let shared = Arc::new(Shared {
            live: progress.clone(),
            delivered: delivered.clone(),
            ..Shared::default()
        });
        let attempt = attempts.run(run(&session, &shared)).await;
        {
            let mut attempt_counts = shared.counts.lock().expect("counts lock");
            attempt_counts.bytes_before_compression = shared.compression.raw.load(Relaxed);
            attempt_counts.bytes_after_compression = shared.compression.sent.load(Relaxed);
            counts.absorb(&attempt_counts);
        }
        let (files, bytes) = *shared.carried.lock().expect("carried lock");
        carried.files_transferred += files;
        carried.bytes_written += bytes;
        match attempt {
            Ok(stats) => break Ok(stats),
            Err(e) if attempts.will_retry(&e) => {
                let (files, bytes) = *shared.resolved_wanted.lock().expect("resolved lock");
                carried.files_transferred += files;
                carried.bytes_written += bytes;
                resolved_by_cut_attempts += files;
                if let Err(e) = attempts.wait(&e).await {
                    break Err(e);
                }
            }
            Err(e) => break Err(e),
        }
    };
    let retries = attempts.retries;
    let (mut stats, exit, error) = outcome(result, &counts);
    stats.files_transferred += carried.files_transferred;
    stats.bytes_written += carried.bytes_written;
    counts.files_unchanged = counts
        .files_unchanged
        .saturating_sub(resolved_by_cut_attempts);
    progress.finished();
    if let Some(ticker) = ticker {
        ticker.stop().await;
    }
    let mut summary = Summary::new(
        &counts,
        &stats,
        retries,
        wire.total(),
        started.elapsed(),
        exit,
        error,
    );
    summary.streams = most_streams.load(Relaxed);
    reporter.finish(&progress, summary)
}

/// What every session of one push shares.
struct Session<'a> {
    config: &'a PushConfig,
    wire: &'a WireCounter,
    reporter: &'a Reporter,
    progress: &'a Arc<Progress>,
    limit: Option<&'a Arc<RateLimiter>>,
    /// What warnings name (the target URL).
    label: &'a str,
    /// The most streams the last attempt ran at once.
    most_streams: &'a AtomicU64,
}

async fn run(session: &Session<'_>, shared: &Arc<Shared>) -> Result<TargetStats, EngineError> {
    let Session {
        config,
        wire,
        reporter,
        progress,
        limit,
        label,
        most_streams,
    } = *session;
    most_streams.store(1, Relaxed);
    let limits = Limits::default();
    let walker = Walker::new(
        &config.src,
        WalkOptions {
            checksum: config.options.checksum,
        },
        limits.clone(),
    )
    .map(|walker| walker.with_filter(config.filter.clone()))
    .map_err(|e| {
        EngineError::usage(format!(
            "cannot read the source directory {}: {e}",
            config.src.display()
        ))
    })?;
    let root_meta = walker.root_meta().map_err(|e| {
        EngineError::usage(format!(
            "cannot read the source directory {}: {e}",
            config.src.display()
        ))
    })?;
    let route = &config.route;
    let connect = async {
        let (stream, handshake) = connect::dial_timed(route, wire).await?;
        let (read, write) = tokio::io::split(stream);
        let mut reader = FrameReader::new(read, limits.clone())
            .with_peer(ferry_net::TlsPeer::Server(route.server_name.clone()));
        let (tx, writer) = spawn_compressing_writer(
            write,
            64,
            config.heartbeat,
            limit.cloned(),
            Some(shared.compression.clone()),
        );
        let mut welcomed = welcome(route, config.options, &config.filter, &mut reader, &tx).await?;
        // Hello to Welcome may hold the server's admission and a proxy's delay of a
        // small write: the TLS handshake's round trip is the other measure.
        welcomed.rtt = welcomed.rtt.min(handshake);
        if let Some(space) = &welcomed.space {
            reporter.target_space(space);
        }
        // The target took the options with its Welcome: from here on, frames that pay go
        // compressed.
        shared
            .compression
            .on
            .store(config.options.compress, Relaxed);
        Ok::<_, EngineError>((reader, tx, writer, welcomed))
    };
    let (mut reader, tx, writer, welcomed) = tokio::time::timeout(route.connect_timeout, connect)
        .await
        .map_err(|_| connect_timeout(route))??;
    progress.connected();
    let join_wire = JoinWire {
        write_limit: limit.cloned(),
        compression: Some(shared.compression.clone()),
        ..JoinWire::new(config.heartbeat)
    };
    let joined = streams::open(
        route,
        wire,
        &welcomed,
        config.streams,
        join_wire,
        reporter,
        label,
    );
    let session_streams = SessionStreams::of(welcomed.session_streams_max(), &joined);
    let source = Source {
        root: walker.source_root(),
        walker,
        root_meta,
        limits: &limits,
        shared,
        reporter,
        dry_run: config.options.dry_run,
    };
    let outcome = source_session(source, &mut reader, tx, session_streams).await;
    // This side closes its joined streams first; the server waits for that.
    joined.close(Duration::ZERO).await;
    most_streams.store(joined.most() as u64, Relaxed);
    let written = writer.await;
    let stats = outcome?;
    match written {
        Ok(Ok(())) => Ok(stats),
        Ok(Err(e)) => Err(e),
        Err(e) => Err(EngineError::socket(format!("the writer failed: {e}"))),
    }
}
