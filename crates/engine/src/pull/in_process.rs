//! The puller's session in-process (feature `testing`): what `pull` does once its
//! handshake is done, over any stream instead of TLS, and the exit code `ferry pull`
//! would exit with. For `crate::testing`; not an API.
//!
//! Left out, as they come before the session or only show it: connecting, the Hello,
//! retries, `--bwlimit`, the live progress line and the printed report (the reporter
//! only logs, as a server's does).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ferry_net::WireCounter;
use ferry_proto::{Filter, Limits, SessionOptions};
use tokio::io::{AsyncRead, AsyncWrite};

use super::{open_dest, session, Attempt, AttemptCounts, PullConfig, Tracker};
use crate::client::connect::Route;
use crate::exit::ExitCode;
use crate::framed::{spawn_writer, Compression, FrameReader};
use crate::report::progress::Progress;
use crate::report::summary::{outcome, SourceCounts};
use crate::report::{Output, Reporter};

/// Pulls into `dest` over `read` and `write` (the source's Root is the first frame
/// expected) until the source's `SourceDone` or an error, and returns the exit code and
/// error message of the pull's summary.
pub(crate) async fn pull_target<R, W>(
    dest: &Path,
    mut options: SessionOptions,
    filter: Filter,
    read: R,
    write: W,
    heartbeat: Duration,
) -> (ExitCode, Option<String>)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    options.pull = true;
    options.probe = false;
    let volume = match open_dest(dest, options.dry_run) {
        Ok(volume) => Arc::new(volume),
        Err(e) => return (e.exit, Some(e.message)),
    };
    let config = PullConfig {
        dest: dest.to_path_buf(),
        route: in_process_route(),
        options,
        output: Output::Log,
        heartbeat,
        retries: 0,
        progress: false,
        bwlimit: None,
        filter,
        privileges: None,
        streams: Default::default(),
    };
    let wire = WireCounter::default();
    let reporter = Reporter::new(config.output.clone(), false);
    let progress = Arc::new(Progress::new(wire.clone(), options.delete));
    let most_streams = std::sync::atomic::AtomicU64::new(1);
    let attempt = Attempt {
        config: &config,
        volume: &volume,
        wire: &wire,
        reporter: &reporter,
        progress: &progress,
        limit: None,
        label: "in-process",
        most_streams: &most_streams,
    };
    let counted = AttemptCounts {
        counts: Arc::default(),
        tracker: Arc::new(Tracker::new(progress.clone())),
    };
    let seen = counted.tracker.clone();
    let mut reader = FrameReader::new(read, Limits::default())
        .with_observer(Box::new(move |m| seen.incoming(m)))
        .with_inflated_counts(Arc::new(Compression::default()));
    let (tx, writer) = spawn_writer(write, 64, heartbeat);
    let result = session(
        &attempt,
        &counted,
        &mut reader,
        tx,
        writer,
        crate::joined::SessionStreams::one(),
    )
    .await;
    // As `pull` sums its one attempt up.
    let mut counts = SourceCounts::default();
    counts.absorb(&counted.counts.lock().expect("counts lock"));
    let result = result.map(|(stats, source)| {
        counts.add_wire(&source);
        stats
    });
    let (_, exit, error) = outcome(result, &counts);
    (exit, error)
}

/// A route that is never dialled: the session runs over the stream it is given.
fn in_process_route() -> Route {
    Route {
        host: "in-process".into(),
        port: 0,
        volume: "in-process".into(),
        server_name: "in-process".into(),
        proxy: None,
        tls_dir: Default::default(),
        join: None,
        connect_timeout: Duration::from_secs(1),
    }
}
