//! The source side: `ferry push SRC ferry://HOST:PORT/VOLUME`.
//!
//! ```text
//!            ┌─ walker thread ─▶ lister task ─┐
//! SRC tree ──┤                                ├─▶ writer task ─▶ TLS ─▶ target
//!            └─ sender threads (read, hash, ◀─┤
//!               delta) ◀── Want/Signature ────┴── reader (this task) ◀─ TLS
//! ```
//!
//! The reader never blocks on the writer, so the two directions cannot deadlock: wants
//! go to an unbounded queue whose length the target bounds by its window.

mod list;
mod send;

pub(crate) use list::Shared;

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use ferry_net::WireCounter;
use ferry_proto::{
    escape, ChangeKind, EntryKind, ErrorClass, FileFailure, Filter, Limits, Message, Meta,
    SessionOptions, TargetStats, PROTOCOL_VERSION,
};
use ferry_tree::{SourceRoot, WalkOptions, Walker};
use tokio::io::AsyncRead;

use crate::connect::{self, Route};
use crate::display::Ticker;
use crate::error::EngineError;
use crate::exit::ExitCode;
use crate::framed::{spawn_compressing_writer, FrameReader, FrameSender};
use crate::progress::Progress;
use crate::ratelimit::RateLimiter;
use crate::report::{Output, Reporter};
use crate::summary::{NotAppliedExample, SourceCounts, Summary};
use send::Ask;

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
}

/// Sender threads: file reads, hashing and delta search run here.
const SENDERS: usize = 2;
/// Signatures a target may be sending at once, each up to `Limits::max_signature`: a
/// target computes two at a time, so more is a peer making the source buffer without
/// bound.
const SIGNATURES_IN_FLIGHT: usize = 4;

/// Runs a push to the end and returns its summary (which carries the exit code).
/// `shutdown` resolving (a signal) stops the push with exit code 20.
pub async fn push(config: PushConfig, shutdown: impl Future<Output = ()>) -> Summary {
    let started = Instant::now();
    let reporter = Reporter::new(config.output, config.progress);
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
    let ticker = Ticker::start(progress.clone(), reporter.clone());
    let session = Session {
        config: &config,
        wire: &wire,
        reporter: &reporter,
        progress: &progress,
        limit: limit.as_ref(),
    };

    tokio::pin!(shutdown);
    let mut counts = SourceCounts::default();
    // Files the target committed in sessions that were then cut: those it resolved
    // before the cut, and whole files sent that the next attempt finds unchanged.
    let mut carried = TargetStats::default();
    // Of those, the ones the cut attempt had resolved: the next attempt finds them
    // unchanged and counts them so, while they were in fact transferred.
    let mut resolved_by_cut_attempts = 0u64;
    let delivered = Arc::new(Mutex::new(HashMap::new()));
    let mut retries = 0u64;
    let result = loop {
        let shared = Arc::new(Shared {
            live: progress.clone(),
            delivered: delivered.clone(),
            ..Shared::default()
        });
        progress.start_attempt();
        let attempt = tokio::select! {
            result = run(&session, &shared) => result,
            () = &mut shutdown => Err(interrupted()),
        };
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
            Err(e) if e.is_retryable() && retries < u64::from(config.retries) => {
                let (files, bytes) = *shared.resolved_wanted.lock().expect("resolved lock");
                carried.files_transferred += files;
                carried.bytes_written += bytes;
                resolved_by_cut_attempts += files;
                retries += 1;
                progress.retrying();
                let delay = backoff(retries);
                reporter.warning(
                    &target,
                    &format!(
                        "{e}; retry {retries} of {} in {:.1} s",
                        config.retries,
                        delay.as_secs_f64()
                    ),
                );
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = &mut shutdown => break Err(interrupted()),
                }
            }
            Err(e) => break Err(e),
        }
    };
    let (mut stats, exit, error) = match result {
        Ok(stats) => {
            let exit = if stats.file_errors > 0 || counts.read_errors > 0 {
                ExitCode::Partial
            } else if counts.vanished > 0 {
                ExitCode::Vanished
            } else {
                ExitCode::Ok
            };
            (stats, exit, None)
        }
        Err(e) => (TargetStats::default(), e.exit, Some(e.message)),
    };
    stats.files_transferred += carried.files_transferred;
    stats.bytes_written += carried.bytes_written;
    counts.files_unchanged = counts
        .files_unchanged
        .saturating_sub(resolved_by_cut_attempts);
    progress.finished();
    if let Some(ticker) = ticker {
        ticker.stop().await;
    }
    let last = progress.snapshot();
    let elapsed = started.elapsed().as_secs_f64().max(1e-3);
    reporter.progress(&last, last.processed as f64 / elapsed, Some(0.0));
    let mut summary = Summary::new(
        &counts,
        &stats,
        retries,
        wire.total(),
        started.elapsed(),
        exit,
        error,
    );
    summary.errors = reporter.errors();
    reporter.summary(&summary);
    summary
}

pub(crate) fn interrupted() -> EngineError {
    EngineError::new(
        ExitCode::Interrupted,
        "interrupted by a signal; the target keeps what was complete and partial files to resume",
    )
}

/// Exponential backoff from 0.5 s, capped at 30 s, with ±50% jitter so that many
/// source pods cut by the same network event do not come back in lockstep.
pub(crate) fn backoff(attempt: u64) -> Duration {
    let base = Duration::from_millis(500).saturating_mul(1 << attempt.saturating_sub(1).min(6));
    let base = base.min(Duration::from_secs(30));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let jitter = 0.5 + f64::from(nanos % 1000) / 1000.0;
    base.mul_f64(jitter)
}

/// What every session of one push shares.
struct Session<'a> {
    config: &'a PushConfig,
    wire: &'a WireCounter,
    reporter: &'a Reporter,
    progress: &'a Arc<Progress>,
    limit: Option<&'a Arc<RateLimiter>>,
}

async fn run(session: &Session<'_>, shared: &Arc<Shared>) -> Result<TargetStats, EngineError> {
    let Session {
        config,
        wire,
        reporter,
        progress,
        limit,
    } = *session;
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
        let stream = connect::dial(route, wire).await?;
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
        handshake(route, config.options, &config.filter, &mut reader, &tx).await?;
        // The target took the options with its Welcome: from here on, frames that pay go
        // compressed.
        shared
            .compression
            .on
            .store(config.options.compress, Relaxed);
        Ok::<_, EngineError>((reader, tx, writer))
    };
    let (mut reader, tx, writer) = tokio::time::timeout(route.connect_timeout, connect)
        .await
        .map_err(|_| connect_timeout(route))??;
    progress.connected();
    let source = Source {
        root: walker.source_root(),
        walker,
        root_meta,
        limits: &limits,
        shared,
        reporter,
        dry_run: config.options.dry_run,
    };
    let outcome = source_session(source, &mut reader, tx).await;
    let written = writer.await;
    let stats = outcome?;
    match written {
        Ok(Ok(())) => Ok(stats),
        Ok(Err(e)) => Err(e),
        Err(e) => Err(EngineError::socket(format!("the writer failed: {e}"))),
    }
}

/// The source's part of one session, on a connection whose handshake is done.
pub(crate) struct Source<'a> {
    /// The tree to send (`walker` walks it).
    pub root: SourceRoot,
    pub walker: Walker,
    pub root_meta: Meta,
    pub limits: &'a Limits,
    pub shared: &'a Arc<Shared>,
    pub reporter: &'a Reporter,
    pub dry_run: bool,
}

/// Runs the source's part of a session (a push's, or a pull that `ferry serve` answers):
/// sends the root and the listing and answers the target's wants until its `Done`.
/// Returns when every sender has stopped and `tx` is dropped; the caller owns the writer.
pub(crate) async fn source_session<R: AsyncRead + Unpin>(
    source: Source<'_>,
    reader: &mut FrameReader<R>,
    tx: FrameSender,
) -> Result<TargetStats, EngineError> {
    let Source {
        root,
        walker,
        root_meta,
        limits,
        shared,
        reporter,
        dry_run,
    } = source;
    tx.send(Message::Root { meta: root_meta })
        .await
        .map_err(|_| EngineError::socket("the connection closed"))?;

    let lister = tokio::spawn(list::run_lister(
        walker,
        limits.clone(),
        shared.clone(),
        tx.clone(),
        reporter.clone(),
    ));
    let (fatal_tx, mut fatal) = tokio::sync::mpsc::unbounded_channel();
    let (work_tx, senders) = spawn_senders(&root, shared, limits, &tx, fatal_tx);
    // A sender that hits a fatal error (a hostile signature, a dead connection) ends the
    // session at once instead of leaving the reader waiting for replies.
    let outcome = tokio::select! {
        biased;
        Some(e) = fatal.recv() => Err(e),
        outcome = read_replies(reader, shared, limits, &work_tx, reporter, dry_run) => outcome,
    };
    drop(work_tx);
    let outcome = match outcome {
        Ok(stats) => match lister.await {
            Ok(Ok(())) => Ok(stats),
            Ok(Err(e)) => Err(e),
            Err(e) => Err(EngineError::file_io(format!("the lister failed: {e}"))),
        },
        Err(e) => {
            lister.abort();
            if e.exit == ExitCode::Protocol {
                let _ = tx.try_send(Message::Error {
                    class: ErrorClass::Protocol,
                    message: e.message.clone(),
                });
            }
            Err(e)
        }
    };
    drop(tx);
    for sender in senders {
        let _ = tokio::task::spawn_blocking(move || sender.join()).await;
    }
    outcome
}

/// The error for a route that could not be reached within its deadline.
pub(crate) fn connect_timeout(route: &Route) -> EngineError {
    let via = match &route.proxy {
        Some(proxy) => format!(" through proxy {}", proxy.redacted()),
        None => String::new(),
    };
    EngineError::new(
        ExitCode::ConnectTimeout,
        format!(
            "could not reach {}:{}{via} and start a session within {} s; `ferry probe` shows which hop fails",
            route.host,
            route.port,
            route.connect_timeout.as_secs()
        ),
    )
}

/// Sends Hello and reads the target's answer.
pub async fn handshake<R: AsyncRead + Unpin>(
    route: &Route,
    options: SessionOptions,
    filter: &Filter,
    reader: &mut FrameReader<R>,
    tx: &FrameSender,
) -> Result<(), EngineError> {
    tx.send(Message::Hello {
        version: PROTOCOL_VERSION,
        volume: route.volume.as_bytes().to_vec(),
        options,
        filter: filter.clone(),
    })
    .await
    .map_err(|_| EngineError::socket("the connection closed"))?;
    match reader.expect("the target's answer to Hello").await? {
        Message::Welcome { version } if version == PROTOCOL_VERSION => Ok(()),
        Message::Welcome { version } => Err(EngineError::new(
            ExitCode::ProtocolVersion,
            format!("target speaks protocol {version}, this ferry speaks {PROTOCOL_VERSION}; run the same ferry version on both sides"),
        )),
        Message::Refused { reason, message } => {
            let exit = match reason {
                ferry_proto::RefuseReason::VersionMismatch => ExitCode::ProtocolVersion,
                _ => ExitCode::StartFailed,
            };
            let error = EngineError::new(exit, format!("target refused the session: {message}"));
            // Busy is often our own previous session, not yet noticed dead at the target.
            Err(if reason == ferry_proto::RefuseReason::VolumeBusy {
                error.transient()
            } else {
                error
            })
        }
        other => Err(EngineError::protocol(format!(
            "expected Welcome from the target, got {}",
            other.name()
        ))),
    }
}

/// A file to send, and how the target asked for it.
struct Work {
    index: u64,
    ask: Ask,
}

fn spawn_senders(
    root: &SourceRoot,
    shared: &Arc<Shared>,
    limits: &Limits,
    tx: &FrameSender,
    fatal: tokio::sync::mpsc::UnboundedSender<EngineError>,
) -> (std_mpsc::Sender<Work>, Vec<std::thread::JoinHandle<()>>) {
    let (work_tx, work_rx) = std_mpsc::channel::<Work>();
    let work_rx = Arc::new(Mutex::new(work_rx));
    let handles = (0..SENDERS)
        .map(|i| {
            let work_rx = work_rx.clone();
            let shared = shared.clone();
            let limits = limits.clone();
            let tx = tx.clone();
            let fatal = fatal.clone();
            let root = root.clone();
            std::thread::Builder::new()
                .name(format!("ferry-send-{i}"))
                .spawn(move || loop {
                    let work = match work_rx.lock().expect("work lock").recv() {
                        Ok(work) => work,
                        Err(_) => return,
                    };
                    let Some(info) = shared.file(work.index) else {
                        continue;
                    };
                    // Recorded before its FileEnd can go out, so the target's Ack (which
                    // removes it) can never arrive first and leave it behind.
                    shared
                        .delivered
                        .lock()
                        .expect("delivered lock")
                        .insert(info.path.as_bytes().to_vec(), info.size);
                    let progress = &shared.live;
                    match send::send_file(
                        &root, work.index, &info, work.ask, &limits, &tx, progress,
                    ) {
                        Ok(sent) => {
                            let mut counts = shared.counts.lock().expect("counts lock");
                            counts.bytes_literal += sent.stats.literal;
                            counts.bytes_matched += sent.stats.copied;
                            counts.files_delta += u64::from(sent.as_delta);
                            counts.bytes_resumed += sent.resumed;
                            match sent.failure {
                                Some(FileFailure::Vanished | FileFailure::Changed) => {
                                    counts.vanished += 1
                                }
                                Some(FileFailure::ReadError) => counts.read_errors += 1,
                                None => {}
                            }
                        }
                        Err(e) => {
                            // The session learns first, so that the peer hanging up on
                            // our Error cannot be mistaken for the cause.
                            let protocol =
                                (e.exit == ExitCode::Protocol).then(|| e.message.clone());
                            let _ = fatal.send(e);
                            if let Some(message) = protocol {
                                let _ = tx.blocking_send(Message::Error {
                                    class: ErrorClass::Protocol,
                                    message,
                                });
                            }
                            return;
                        }
                    }
                })
                .expect("spawn sender thread")
        })
        .collect();
    (work_tx, handles)
}

/// Handles the target's replies until `Done`.
async fn read_replies<R: AsyncRead + Unpin>(
    reader: &mut FrameReader<R>,
    shared: &Shared,
    limits: &Limits,
    work_tx: &std_mpsc::Sender<Work>,
    reporter: &Reporter,
    dry_run: bool,
) -> Result<TargetStats, EngineError> {
    let mut signatures: HashMap<u64, Vec<u8>> = HashMap::new();
    let queue = |work: Work| {
        work_tx
            .send(work)
            .map_err(|_| EngineError::file_io("the sender threads stopped"))
    };
    loop {
        let message = reader.expect("the target's replies").await?;
        match message {
            Message::Want { index, delta } => {
                if !shared.want(index) {
                    return Err(EngineError::protocol(format!(
                        "target asked for entry {index}, which is not a listed, unresolved file (or was asked for twice already)"
                    )));
                }
                if delta {
                    if signatures.len() >= SIGNATURES_IN_FLIGHT {
                        return Err(EngineError::protocol(format!(
                            "target sent more than {SIGNATURES_IN_FLIGHT} signatures at once"
                        )));
                    }
                    signatures.insert(index, Vec::new());
                } else {
                    queue(Work {
                        index,
                        ask: Ask::Whole,
                    })?;
                }
            }
            Message::Signature { index, bytes, last } => {
                let sig = signatures.get_mut(&index).ok_or_else(|| {
                    EngineError::protocol(format!(
                        "signature for entry {index}, which was not asked for as a delta"
                    ))
                })?;
                if sig.len() + bytes.len() > limits.max_signature {
                    return Err(EngineError::protocol(format!(
                        "signature for entry {index} exceeds {} bytes",
                        limits.max_signature
                    )));
                }
                sig.extend_from_slice(&bytes);
                if last {
                    let signature = signatures.remove(&index).unwrap_or_default();
                    queue(Work {
                        index,
                        ask: Ask::Delta(signature),
                    })?;
                }
            }
            Message::Resume {
                index,
                offset,
                hash,
            } => {
                if !shared.want(index) {
                    return Err(EngineError::protocol(format!(
                        "target asked to resume entry {index}, which is not a listed, unresolved file (or was asked for twice already)"
                    )));
                }
                queue(Work {
                    index,
                    ask: Ask::Resume(offset, hash),
                })?;
            }
            Message::Ack { through } => shared.ack(through)?,
            message @ (Message::Change { .. }
            | Message::FileError { .. }
            | Message::NotApplied { .. }) => {
                report_from_target(&message, &shared.counts, reporter, dry_run)
            }
            Message::Done { stats } => return Ok(stats),
            Message::Error { class, message } => {
                let exit = match class {
                    ErrorClass::Protocol => ExitCode::Protocol,
                    ErrorClass::FileIo => ExitCode::FileIo,
                    ErrorClass::Interrupted => ExitCode::Interrupted,
                };
                return Err(EngineError::new(exit, format!("target: {message}")));
            }
            Message::Heartbeat => {}
            other => {
                return Err(EngineError::protocol(format!(
                    "unexpected {} from the target",
                    other.name()
                )))
            }
        }
    }
}

/// Shows what the target reports of its changes and errors (`Change`, `FileError`,
/// `NotApplied`), and counts it; other messages are left alone. Used where the target
/// is the peer (push) and where it is this process (pull).
pub(crate) fn report_from_target(
    message: &Message,
    counts: &Mutex<SourceCounts>,
    reporter: &Reporter,
    dry_run: bool,
) {
    match message {
        Message::Change { path, kind, entry } => {
            let content = matches!(kind, ChangeKind::Created | ChangeKind::Updated);
            if dry_run && content && *entry == EntryKind::File {
                counts.lock().expect("counts lock").files_would_change += 1;
            }
            reporter.change(path, *kind, *entry)
        }
        Message::FileError { path, message } => {
            reporter.file_error("target", &escape(path), message)
        }
        Message::NotApplied {
            path,
            owner,
            xattrs,
            special,
        } => {
            let mut what = Vec::new();
            if *owner {
                what.push("owner");
            }
            if *xattrs > 0 {
                what.push("xattrs");
            }
            if *special {
                what.push("special");
            }
            let mut counts = counts.lock().expect("counts lock");
            if counts.not_applied_examples.len() < 10 {
                counts.not_applied_examples.push(NotAppliedExample {
                    path: escape(path),
                    what,
                });
            }
        }
        _ => {}
    }
}
