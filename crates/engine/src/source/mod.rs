//! The source's part of a session, on a connection whose handshake is done: the one a
//! push runs, and the one `ferry serve` runs to answer a pull. The protocol's rules are
//! the source core's (`ferry_proto::session::source`); this module drives it: walks the
//! tree, reads and sends the files the target asks for, and shows what it reports.
//!
//! ```text
//!            ┌─ walker thread ──Listing──▶ ┌────────────────────┐
//! SRC tree ──┤                             │ driver: SourceCore │──▶ writer ─▶ TLS ─▶ target
//!            └─ sender threads ◀──Work──── └────────────────────┘
//!               (read, hash, delta) ─Answer─▲        ▲
//!               └─ Data/Delta/FileEnd ─▶ writer      └── Want/Signature/Ack/Done ◀─ TLS
//! ```
//!
//! One task (the driver, [`drive`]) owns the core; the walker and the senders are
//! threads that talk to it over channels. The target's frames are read while the writer
//! is busy, so the two directions cannot deadlock: the work they cause is bounded by the
//! core (wants by the window, signatures by [`Limits::signature_window`]).

mod drive;
mod list;
mod report;
mod send;
mod senders;
mod shared;
mod small;

pub(crate) use report::report_from_target;
pub(crate) use shared::Shared;

use ferry_proto::session::source::SourceCore;
use ferry_proto::{ErrorClass, Limits, Message, Meta, TargetStats};
use ferry_tree::{SourceRoot, Walker};
use tokio::io::AsyncRead;

use crate::error::EngineError;
use crate::exit::ExitCode;
use crate::framed::{FrameReader, FrameSender};
use crate::joined::{EarlyGone, SessionStreams};
use crate::report::Reporter;
use drive::Driver;

/// Sender threads of stream 0: file reads, hashing and delta search run here (two, so
/// one's reads overlap the other's sends). A joined stream has one of its own.
const SENDERS: usize = 2;

/// The source's part of one session, on a connection whose handshake is done.
pub(crate) struct Source<'a> {
    /// The tree to send (`walker` walks it).
    pub root: SourceRoot,
    pub walker: Walker,
    pub root_meta: Meta,
    pub limits: &'a Limits,
    pub shared: &'a std::sync::Arc<Shared>,
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
    streams: SessionStreams,
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
    let (listings, walk) = list::spawn_walker(walker)?;
    let (answers_tx, answers) = tokio::sync::mpsc::unbounded_channel();
    let multi = streams.is_multi();
    let kit = senders::Kit {
        root,
        limits: limits.clone(),
        shared: shared.clone(),
        answers: answers_tx,
        batching: multi,
    };
    let stream0 = senders::spawn(&kit, 0, SENDERS, &tx);
    let most_senders = SENDERS + usize::from(streams.streams_max.saturating_sub(1));
    let core = SourceCore::new(limits.clone(), most_senders, root_meta);
    let driver = Driver {
        core: match multi {
            true => core.with_streams(streams.streams_max),
            false => core,
        },
        shared,
        reporter,
        limits,
        dry_run,
        outlets: vec![Some(stream0.work)],
        threads: stream0.threads,
        kit,
        incoming: streams.incoming,
        early_gone: EarlyGone::default(),
        streams_max: streams.streams_max,
        asked: (0, 0),
        said: (false, false),
        walk: Some(walk),
    };
    // The driver (and with it the senders' queues) is gone when this returns; it hands
    // back the sender threads to wait for.
    let (outcome, senders) = driver.run(reader, &tx, listings, answers).await;
    if let Err(e) = &outcome {
        if e.exit == ExitCode::Protocol {
            let _ = tx.try_send(Message::Error {
                class: ErrorClass::Protocol,
                message: e.message.clone(),
            });
        }
    }
    drop(tx);
    for sender in senders {
        let _ = tokio::task::spawn_blocking(move || sender.join()).await;
    }
    outcome
}
