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
use super::hub::{Hubs, Registration};
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
    joins: Option<(Arc<Hubs>, Registration)>,
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
    // As `connection` runs a session taking joins: its gate closes as Done goes out.
    let tx = match &joins {
        Some((_, registration)) => registration.closing_on_done(tx),
        None => tx,
    };
    let result = target::run(
        volume,
        options,
        filter,
        limits,
        &mut reader,
        tx.clone(),
        Arc::default(),
        crate::joined::SessionStreams::one(),
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
    if let Some((hubs, registration)) = joins {
        registration.end(&hubs).await;
    }
    let _ = writer.await;
    (code, error)
}

/// A connection that joins a session of `hubs` as `stream` with `key`, from a client of
/// certificate `identity` under `sni`, over memory: the server's answer, and the
/// client's end (a joined stream lives as long as it is held).
pub(crate) async fn join(
    hubs: &Hubs,
    key: [u8; 32],
    stream: u16,
    identity: [u8; 32],
    sni: Option<String>,
) -> (
    std::io::Result<Option<ferry_proto::Message>>,
    FrameReader<tokio::io::DuplexStream>,
) {
    let (server, client) = tokio::io::duplex(64 * 1024);
    let (read, write) = tokio::io::split(server);
    let (tx, writer) = crate::framed::spawn_writer(write, 8, crate::framed::DEFAULT_HEARTBEAT);
    let joining = super::hub::Joining {
        key: ferry_proto::session::stream::SessionKey::new(key),
        stream,
        joiner: super::hub::Opener { identity, sni },
        reader: FrameReader::new(read, Limits::default()).boxed(),
        tx,
        writer,
        compression: Default::default(),
    };
    let metrics = super::metrics::Metrics::new(&[]);
    super::hub::answer(
        hubs,
        &metrics,
        &super::metrics::FailureLog::default(),
        joining,
    )
    .await;
    let mut client = FrameReader::new(client, Limits::default());
    let answer = client
        .next()
        .await
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.message));
    (answer, client)
}
