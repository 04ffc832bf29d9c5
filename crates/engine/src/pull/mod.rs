//! The puller: `ferry pull ferry://HOST:PORT/VOLUME DEST`. It connects as a push does
//! (proxy, route, mutual TLS) but asks the server to be the source: after the handshake
//! it runs the target's session on its local directory, with the target's confinement,
//! while the server runs a push's source part on its volume.
//!
//! ```text
//! DEST ◀── target::run (plan, receive, verify, rename) ◀── reader ◀══ TLS ◀══ server
//!                     │                                          (source: walker, senders)
//!                     └─▶ tee: report Change / FileError / NotApplied ─▶ writer ══▶
//! ```
//!
//! The summary is a push's: the target's counts come from the local session, the
//! source's from the server's `SourceDone`.

mod block;
#[cfg(feature = "testing")]
pub(crate) mod in_process;
mod track;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferry_net::WireCounter;
use ferry_proto::{Filter, Limits, Message, SessionOptions, SourceStats, TargetStats};
use ferry_tree::{Privileges, Volume};
use tokio::sync::mpsc;

use crate::client::attempt::{connect_timeout, Attempts};
use crate::client::connect::{self, Route};
use crate::client::handshake::welcome;
use crate::client::streams::{self, JoinWire, Streams};
use crate::error::EngineError;
use crate::framed::{spawn_writer, Compression, FrameReader, FrameSender};
use crate::joined::SessionStreams;
use crate::ratelimit::RateLimiter;
use crate::report::progress::Progress;
use crate::report::summary::{outcome, SourceCounts, Summary};
use crate::report::Ticker;
use crate::report::{Output, Reporter};
use crate::source::report_from_target;
use crate::target;
use track::Tracker;

/// Everything `ferry pull` needs, validated.
#[derive(Clone, Debug)]
pub struct PullConfig {
    /// The local directory to make a copy of the served volume (created if missing,
    /// its parent must exist).
    pub dest: PathBuf,
    pub route: Route,
    /// As for a push; `pull` is set by [`pull`].
    pub options: SessionOptions,
    pub output: Output,
    pub heartbeat: Duration,
    /// Sessions to try again after a network failure; files already in place are not
    /// fetched again and a cut large file resumes from its verified partial.
    pub retries: u32,
    pub progress: bool,
    /// `--bwlimit`: bytes per second this pull reads from its connection, at most.
    pub bwlimit: Option<u64>,
    /// Include/exclude rules: the server does not list what they exclude, and this
    /// side's `--delete` keeps it (unless `--delete-excluded`).
    pub filter: Filter,
    /// What this side can and cannot do with its capabilities: a `privileges` event
    /// after `start` (`--json`). `None` says nothing.
    pub privileges: Option<ferry_tree::PrivilegeReport>,
    /// `--streams`: the connections the session runs over (`options.streams` follows it).
    pub streams: Streams,
}

/// What one attempt shares with the loop around it.
struct Attempt<'a> {
    config: &'a PullConfig,
    volume: &'a Arc<Volume>,
    wire: &'a WireCounter,
    reporter: &'a Reporter,
    progress: &'a Arc<Progress>,
    limit: Option<&'a Arc<RateLimiter>>,
    /// What warnings name (the source URL).
    label: &'a str,
    /// The most streams the last attempt ran at once.
    most_streams: &'a AtomicU64,
}

/// What one attempt counts: the local target's reports (dry-run changes, examples,
/// compression) and, through the tracker, the files it resolved.
struct AttemptCounts {
    counts: Arc<Mutex<SourceCounts>>,
    tracker: Arc<Tracker>,
}

/// Runs a pull to the end and returns its summary (which carries the exit code).
/// `shutdown` resolving (a signal) stops it with exit code 20.
pub async fn pull(mut config: PullConfig, shutdown: impl Future<Output = ()>) -> Summary {
    if ferry_tree::DeviceKind::of(&config.dest).is_some() {
        return block::pull_block(config, shutdown).await;
    }
    config.options.pull = true;
    config.options.probe = false;
    config.options.streams = config.streams.asks_for_joins();
    let started = Instant::now();
    let reporter = Reporter::new(config.output.clone(), config.progress);
    let wire = WireCounter::default();
    let progress = Arc::new(Progress::new(wire.clone(), config.options.delete));
    let limit = config.bwlimit.map(|rate| Arc::new(RateLimiter::new(rate)));
    let route = &config.route;
    let source = format!("ferry://{}:{}/{}", route.host, route.port, route.volume);
    reporter.start(
        &source,
        &config.dest.display().to_string(),
        &route.volume,
        config.options.dry_run,
    );
    if let Some(report) = &config.privileges {
        reporter.privileges(report);
    }
    let mut counts = SourceCounts::default();
    // Files committed by attempts that were then cut: the next attempt finds them in
    // place and would count them unchanged (as a push does, see `push`).
    let mut carried = (0u64, 0u64);
    let mut retries = 0u64;
    let most_streams = AtomicU64::new(1);
    let created = !config.options.dry_run && std::fs::symlink_metadata(&config.dest).is_err();
    let result = match open_dest(&config.dest, config.options.dry_run) {
        Err(e) => Err(e),
        Ok(volume) => {
            let volume = Arc::new(volume);
            let ticker = Ticker::start(progress.clone(), reporter.clone());
            let attempt = Attempt {
                config: &config,
                volume: &volume,
                wire: &wire,
                reporter: &reporter,
                progress: &progress,
                limit: limit.as_ref(),
                label: &source,
                most_streams: &most_streams,
            };
            tokio::pin!(shutdown);
            let mut attempts =
                Attempts::new(config.retries, &reporter, &progress, &source, shutdown);
            let result = loop {
                let counted = AttemptCounts {
                    counts: Arc::default(),
                    tracker: Arc::new(Tracker::new(progress.clone())),
                };
                let outcome = attempts.run(run(&attempt, &counted)).await;
                counts.absorb(&counted.counts.lock().expect("counts lock"));
                match outcome {
                    Err(e) if attempts.will_retry(&e) => {
                        let (files, bytes) = counted.tracker.resolved_wanted();
                        carried.0 += files;
                        carried.1 += bytes;
                        if let Err(e) = attempts.wait(&e).await {
                            break Err(e);
                        }
                    }
                    outcome => break outcome,
                }
            };
            retries = attempts.retries;
            progress.finished();
            if let Some(ticker) = ticker {
                ticker.stop().await;
            }
            result
        }
    };
    if result.is_err() && created {
        // A failed pull leaves no empty directory of its own behind (rsync makes it only
        // once connected): a block volume's refusal asks for an image file at DEST.
        let _ = std::fs::remove_dir(&config.dest);
    }
    let result = result.map(|(stats, source)| {
        counts.add_wire(&source);
        stats
    });
    let (mut stats, exit, error) = outcome(result, &counts);
    stats.files_transferred += carried.0;
    stats.bytes_written += carried.1;
    counts.files_unchanged = counts.files_unchanged.saturating_sub(carried.0);
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

/// Opens (in a real run, first creates) the destination directory, as rsync does: the
/// last component may be missing, its parent must exist.
fn open_dest(dest: &Path, dry_run: bool) -> Result<Volume, EngineError> {
    let unusable = |what: &str, e: &dyn std::fmt::Display| {
        EngineError::usage(format!(
            "cannot {what} the destination {}: {e}; give an existing directory, or a new one in an existing directory",
            dest.display()
        ))
    };
    if !dry_run {
        return Volume::create(dest, Privileges::current())
            .map_err(|e| unusable("create or open", &e));
    }
    if !dest.exists() {
        // Nothing to compare with: plan against an empty directory that is never written.
        return Err(unusable(
            "dry-run into",
            &"it does not exist (a dry run creates nothing)",
        ));
    }
    Volume::open(dest, Privileges::current()).map_err(|e| unusable("open", &e))
}

/// One session: connect, hand the connection to the local target session, then read
/// the source's `SourceDone`.
async fn run(
    attempt: &Attempt<'_>,
    counted: &AttemptCounts,
) -> Result<(TargetStats, SourceStats), EngineError> {
    let Attempt {
        config,
        wire,
        progress,
        limit,
        reporter,
        label,
        most_streams,
        ..
    } = *attempt;
    most_streams.store(1, Relaxed);
    let AttemptCounts { counts, tracker } = counted;
    let route = &config.route;
    let limits = Limits::default();
    let inflated = Arc::new(Compression::default());
    let connect = async {
        let (stream, handshake) = connect::dial_timed(route, wire).await?;
        let (read, write) = tokio::io::split(stream);
        let seen = tracker.clone();
        let mut reader = FrameReader::new(read, limits.clone())
            .with_peer(ferry_net::TlsPeer::Server(route.server_name.clone()))
            .with_limit(limit.cloned())
            .with_observer(Box::new(move |m| seen.incoming(m)))
            .with_inflated_counts(inflated.clone());
        let (tx, writer) = spawn_writer(write, 64, config.heartbeat);
        let mut welcomed = welcome(route, config.options, &config.filter, &mut reader, &tx).await?;
        // Hello to Welcome may hold the server's admission and a proxy's delay of a
        // small write: the TLS handshake's round trip is the other measure.
        welcomed.rtt = welcomed.rtt.min(handshake);
        Ok::<_, EngineError>((reader, tx, writer, welcomed))
    };
    let (mut reader, tx, writer, welcomed) = tokio::time::timeout(route.connect_timeout, connect)
        .await
        .map_err(|_| connect_timeout(route))??;
    progress.connected();
    let (seen, asked) = (tracker.clone(), tracker.clone());
    let join_wire = JoinWire {
        read_limit: limit.cloned(),
        inflated: Some(inflated.clone()),
        observer: Some(Arc::new(move |m: &ferry_proto::Message| seen.incoming(m))),
        outgoing: Some(Arc::new(move |m: &ferry_proto::Message| asked.outgoing(m))),
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
    let streams = SessionStreams::of(welcomed.session_streams_max(), &joined);
    let outcome = session(attempt, counted, &mut reader, tx, writer, streams).await;
    // This side closes its joined streams first; the server waits for that.
    joined.close(Duration::ZERO).await;
    most_streams.store(joined.most() as u64, Relaxed);
    {
        let mut counts = counts.lock().expect("counts lock");
        counts.bytes_before_compression += inflated.raw.load(Relaxed);
        counts.bytes_after_compression += inflated.sent.load(Relaxed);
    }
    outcome
}

/// The session on a connection whose handshake is done: the local target on DEST, then
/// the source's `SourceDone`; ends once `writer` has sent everything.
async fn session<R: tokio::io::AsyncRead + Unpin>(
    attempt: &Attempt<'_>,
    counted: &AttemptCounts,
    reader: &mut FrameReader<R>,
    tx: FrameSender,
    writer: tokio::task::JoinHandle<Result<(), EngineError>>,
    streams: SessionStreams,
) -> Result<(TargetStats, SourceStats), EngineError> {
    let Attempt {
        config,
        volume,
        reporter,
        ..
    } = *attempt;
    let AttemptCounts { counts, tracker } = counted;
    let limits = Limits::default();
    let tee = Tee {
        reporter: reporter.clone(),
        counts: counts.clone(),
        tracker: tracker.clone(),
        dry_run: config.options.dry_run,
    };
    let (session_tx, tee) = tee.spawn(tx.clone());
    let session = target::run(
        volume.clone(),
        config.options,
        config.filter.clone(),
        limits,
        reader,
        session_tx,
        Arc::default(),
        streams,
    )
    .await;
    let _ = tee.await;
    let outcome = match session {
        Ok(stats) => source_done(reader).await.map(|source| (stats, source)),
        Err(e) => {
            if let Some(error) = e.to_peer() {
                let _ = tx.try_send(error);
            }
            Err(e)
        }
    };
    drop(tx);
    let written = writer.await;
    let outcome = outcome?;
    match written {
        Ok(Ok(())) => Ok(outcome),
        Ok(Err(e)) => Err(e),
        Err(e) => Err(EngineError::socket(format!("the writer failed: {e}"))),
    }
}

/// The source's last word after the target's `Done`.
async fn source_done<R: tokio::io::AsyncRead + Unpin>(
    reader: &mut FrameReader<R>,
) -> Result<SourceStats, EngineError> {
    loop {
        match reader.expect("the source's SourceDone").await? {
            Message::SourceDone { stats } => return Ok(stats),
            Message::Heartbeat => {}
            // The source stopped after the target's Done (a signal, say): its class
            // decides the exit code, as anywhere else in the session.
            Message::Error { class, message } => {
                return Err(
                    ferry_proto::SessionError::from_peer("source says", class, &message).into(),
                )
            }
            other => {
                return Err(EngineError::protocol(format!(
                    "expected SourceDone from the source, got {}",
                    other.name()
                )))
            }
        }
    }
}

/// Sits between the local target session and the connection: shows what the target
/// reports (as a pusher shows what its target sends back) and feeds the progress.
struct Tee {
    reporter: Reporter,
    counts: Arc<Mutex<SourceCounts>>,
    tracker: Arc<Tracker>,
    dry_run: bool,
}

impl Tee {
    /// The sender the session writes to, and the task that forwards to `out`. The task
    /// ends when the session drops its sender (or the connection closes).
    fn spawn(self, out: FrameSender) -> (FrameSender, tokio::task::JoinHandle<()>) {
        let (tx, mut rx) = mpsc::channel::<Message>(64);
        let task = tokio::spawn(async move {
            while let Some(message) = rx.recv().await {
                report_from_target(&message, &self.counts, &self.reporter, self.dry_run, false);
                self.tracker.outgoing(&message);
                if out.send(message).await.is_err() {
                    break;
                }
            }
        });
        (tx, task)
    }
}
