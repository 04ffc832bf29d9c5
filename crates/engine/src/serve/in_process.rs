//! `serve`'s part of one push session, in-process (feature `testing`): what
//! `connection` does once a Hello is admitted, over any stream instead of TLS, and the
//! exit code `serve --once` would exit with. For `crate::testing`; not an API.
//!
//! Left out, as they come before the session or only count it: TLS, the Hello and its
//! admission (version, volume, locks, slots), `--bwlimit`, `--fsync` and the metrics.

use std::sync::Arc;
use std::time::Duration;

use ferry_proto::{Filter, Limits, SessionOptions};
use ferry_tree::Volume;
use tokio::io::{AsyncRead, AsyncWrite};

use super::connection::session_exit;
use crate::exit::ExitCode;
use crate::framed::{spawn_compressing_writer, Compression, FrameReader};
use crate::target;

/// Runs the target's session on `volume` over `read` and `write` (the source's Root is
/// the first frame expected), tells the source why it failed as `serve` does, waits
/// for the writer, and returns the session's exit code and error message.
pub(crate) async fn push_target<R, W>(
    volume: Arc<Volume>,
    options: SessionOptions,
    filter: Filter,
    read: R,
    write: W,
    heartbeat: Duration,
) -> (ExitCode, Option<String>)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let limits = Limits::default();
    let mut reader = FrameReader::new(read, limits.clone());
    // Off: only a pull's source compresses.
    let compression = Some(Arc::new(Compression::default()));
    let (tx, writer) = spawn_compressing_writer(write, 64, heartbeat, None, compression);
    let result = target::run(
        volume,
        options,
        filter,
        limits,
        &mut reader,
        tx.clone(),
        Arc::default(),
    )
    .await;
    let code = session_exit(&result);
    let error = match result {
        Ok(_) => None,
        Err(e) => {
            if let Some(error) = e.to_peer() {
                let _ = tx.send(error).await;
            }
            Some(e.message)
        }
    };
    drop(tx);
    let _ = writer.await;
    (code, error)
}
