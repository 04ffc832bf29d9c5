//! A connecting command's block session (`push` of a device or disk image, `pull` into
//! one): connect, `Hello` with `block` set, run this side's part (a [`BlockSide`] the
//! command gives), retry after a network failure (the next attempt compares blocks
//! again, so what already matches is not sent again), and report the summary.
//!
//! Must not import a command or a role: the command hands its role in as a `BlockSide`.

use std::future::Future;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;

use ferry_net::WireCounter;
use ferry_proto::{Filter, Limits, SessionOptions};
use tokio::io::ReadHalf;

use super::attempt::{connect_timeout, Attempts};
use super::connect::{self, Route, SessionStream};
use super::handshake::handshake;
use crate::error::EngineError;
use crate::framed::{spawn_compressing_writer, Compression, FrameReader, FrameSender};
use crate::ratelimit::RateLimiter;
use crate::report::block::BlockOutcome;
use crate::report::progress::Progress;
use crate::report::summary::{outcome, Summary};
use crate::report::{Output, Reporter, Ticker};

/// This side's part of a block session, on a connection whose handshake is done.
pub(crate) trait BlockSide {
    /// Runs it to the end. `tx` sends to the peer; an error the peer should hear of is
    /// sent by the caller.
    fn run(
        &self,
        reader: &mut FrameReader<ReadHalf<SessionStream>>,
        tx: FrameSender,
        progress: &Progress,
    ) -> impl Future<Output = Result<BlockOutcome, EngineError>>;
}

/// What a block command was given.
pub(crate) struct BlockClient<'a> {
    pub route: &'a Route,
    pub options: SessionOptions,
    pub output: Output,
    pub heartbeat: std::time::Duration,
    pub retries: u32,
    pub progress: bool,
    /// `--bwlimit`, applied to what this side writes (push) or reads (pull).
    pub bwlimit: Option<u64>,
    /// The source and target as the `start` event names them.
    pub from: String,
    pub to: String,
    pub privileges: Option<&'a ferry_tree::PrivilegeReport>,
}

/// Runs a block command to the end and returns its summary.
pub(crate) async fn run_block(
    client: BlockClient<'_>,
    side: impl BlockSide,
    shutdown: impl Future<Output = ()>,
) -> Summary {
    let started = Instant::now();
    let reporter = Reporter::new(client.output.clone(), client.progress);
    let wire = WireCounter::default();
    let progress = Arc::new(Progress::new(wire.clone(), false));
    let limit = client.bwlimit.map(|rate| Arc::new(RateLimiter::new(rate)));
    let route = client.route;
    let label = format!("ferry://{}:{}/{}", route.host, route.port, route.volume);
    reporter.start(
        &client.from,
        &client.to,
        &route.volume,
        client.options.dry_run,
    );
    if let Some(report) = client.privileges {
        reporter.privileges(report);
    }
    let ticker = Ticker::start(progress.clone(), reporter.clone());
    let compression = Arc::new(Compression::default());
    tokio::pin!(shutdown);
    let mut attempts = Attempts::new(client.retries, &reporter, &progress, &label, shutdown);
    let result = if client.options.dry_run && client.options.pull {
        Err(EngineError::usage(
            "--dry-run is not supported for a pull into a device or disk image yet (only a push can say what it would send); run without it: only changed blocks are written",
        ))
    } else {
        loop {
            let attempt = attempt(
                &client,
                &side,
                &wire,
                &progress,
                limit.as_ref(),
                &compression,
            );
            match attempts.run(attempt).await {
                Ok(done) => break Ok(done),
                Err(e) => {
                    if !attempts.will_retry(&e) {
                        break Err(e);
                    }
                    if let Err(e) = attempts.wait(&e).await {
                        break Err(e);
                    }
                }
            }
        }
    };
    let block = result.as_ref().ok().cloned();
    let mut counts = block.as_ref().map(BlockOutcome::counts).unwrap_or_default();
    counts.bytes_before_compression = compression.raw.load(Relaxed);
    counts.bytes_after_compression = compression.sent.load(Relaxed);
    if client.options.dry_run {
        // What would change, as a tree's dry run says it: nothing was transferred.
        counts.files_would_change = u64::from(counts.bytes_literal + block_zeros(&block) > 0);
    }
    let (mut stats, exit, error) = outcome(result.map(|b| b.target_stats()), &counts);
    if client.options.dry_run {
        stats.files_transferred = 0;
    }
    progress.finished();
    if let Some(ticker) = ticker {
        ticker.stop().await;
    }
    let mut summary = Summary::new(
        &counts,
        &stats,
        attempts.retries,
        wire.total(),
        started.elapsed(),
        exit,
        error,
    );
    summary.block = block.map(|b| b.summary());
    reporter.finish(&progress, summary)
}

fn block_zeros(block: &Option<BlockOutcome>) -> u64 {
    block.as_ref().map_or(0, |b| b.zeros)
}

/// One session. What a failed one had sent shows only in `bytes_on_wire`: the counts
/// are the last attempt's.
async fn attempt(
    client: &BlockClient<'_>,
    side: &impl BlockSide,
    wire: &WireCounter,
    progress: &Progress,
    limit: Option<&Arc<RateLimiter>>,
    compression: &Arc<Compression>,
) -> Result<BlockOutcome, EngineError> {
    let route = client.route;
    let limits = Limits::default();
    let pull = client.options.pull;
    let connect = async {
        let stream = connect::dial(route, wire).await?;
        let (read, write) = tokio::io::split(stream);
        let mut reader = FrameReader::new(read, limits.clone())
            .with_peer(ferry_net::TlsPeer::Server(route.server_name.clone()));
        if pull {
            reader = reader
                .with_limit(limit.cloned())
                .with_inflated_counts(compression.clone());
        }
        let (tx, writer) = spawn_compressing_writer(
            write,
            64,
            client.heartbeat,
            if pull { None } else { limit.cloned() },
            (!pull).then(|| compression.clone()),
        );
        handshake(route, client.options, &Filter::default(), &mut reader, &tx).await?;
        if !pull {
            compression.on.store(client.options.compress, Relaxed);
        }
        Ok::<_, EngineError>((reader, tx, writer))
    };
    let (mut reader, tx, writer) = tokio::time::timeout(route.connect_timeout, connect)
        .await
        .map_err(|_| connect_timeout(route))??;
    progress.connected();
    let outcome = side.run(&mut reader, tx.clone(), progress).await;
    if let Err(e) = &outcome {
        if let Some(error) = e.to_peer() {
            let _ = tx.try_send(error);
        }
    }
    drop(tx);
    let written = writer.await;
    let done = outcome?;
    match written {
        Ok(Ok(())) => Ok(done),
        Ok(Err(e)) => Err(e),
        Err(e) => Err(EngineError::socket(format!("the writer failed: {e}"))),
    }
}
