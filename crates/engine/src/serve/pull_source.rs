//! A pull, at the server: the client is the target and this side the source. Runs a
//! push's source part on the served volume, then tells the puller what only a source
//! knows (`SourceDone`), so its report says what a pusher's would.
//!
//! ```text
//! served volume ─▶ walker, senders (source::source_session) ─▶ TLS ─▶ puller's target session
//!                                                           ◀─ Want / Signature / Ack / Done
//!                  SourceDone{counts} ────────────────────────▶
//! ```

use std::path::Path;
use std::sync::Arc;

use ferry_proto::{Filter, Limits, Message, SessionOptions, TargetStats};
use ferry_tree::{WalkOptions, Walker};
use tokio::io::AsyncRead;

use crate::error::EngineError;
use crate::framed::{Compression, FrameReader, FrameSender};
use crate::joined::SessionStreams;
use crate::report::{Output, Reporter};
use crate::source::{source_session, Shared, Source};

/// What a pull session sends from.
pub struct Pulled<'a> {
    /// The served volume's directory.
    pub path: &'a Path,
    pub options: SessionOptions,
    /// The puller's filter: what it excludes is not listed (and the puller protects it).
    pub filter: Filter,
    pub limits: &'a Limits,
    /// The connection writer's compression, whose counts the puller is told.
    pub compression: Arc<Compression>,
}

/// Runs the source's part of a pull to the puller's `Done`, then sends `SourceDone`.
pub async fn run<R: AsyncRead + Unpin>(
    pulled: Pulled<'_>,
    reader: &mut FrameReader<R>,
    tx: FrameSender,
    streams: SessionStreams,
) -> Result<TargetStats, EngineError> {
    let unreadable = |e| EngineError::file_io(format!("cannot read the volume to send it: {e}"));
    let walker = Walker::new(
        pulled.path,
        WalkOptions {
            checksum: pulled.options.checksum,
        },
        pulled.limits.clone(),
    )
    .map_err(unreadable)?
    .with_filter(pulled.filter);
    let root_meta = walker.root_meta().map_err(unreadable)?;
    let shared = Arc::new(Shared {
        compression: pulled.compression,
        ..Shared::default()
    });
    // The puller reports its changes and errors itself; here they are log lines.
    let reporter = Reporter::new(Output::Log, false);
    let source = Source {
        root: walker.source_root(),
        walker,
        root_meta,
        limits: pulled.limits,
        shared: &shared,
        reporter: &reporter,
        dry_run: pulled.options.dry_run,
    };
    let stats = source_session(source, reader, tx.clone(), streams).await?;
    let counts = shared.counts.lock().expect("counts lock").to_wire();
    tx.send(Message::SourceDone { stats: counts })
        .await
        .map_err(|_| EngineError::socket("the connection closed before SourceDone"))?;
    Ok(stats)
}
