//! Admission of a connection's first frame: a `Hello` checked (version, options, the
//! volume asked for, read-only exports, block sessions) and granted its volume lock and
//! session slot, with the `Welcome` that answers it; a `Join` handed on to the hub;
//! anything else refused. What a session then runs is `connection`'s.

use std::sync::Arc;

use ferry_proto::{escape, ErrorClass, Message, RefuseReason, VolumeSpace, PROTOCOL_VERSION};
use ferry_tree::Volume;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;

use crate::exit::ExitCode;
use crate::framed::{FrameReader, FrameSender};
use crate::serve::hub::{Opener, Registration};
use crate::serve::metrics::{HandshakeFailure, JoinResult};
use crate::serve::{block, Export};

use super::{Shared, VolumeLock, HELLO_TIMEOUT, MAX_SESSIONS};

/// A session admitted: what it runs on, and the lock and slot it holds until it ends.
pub(super) struct Admitted<'a> {
    pub export: Export,
    /// The opened volume for a push; `None` for a pull (the source walks `export.path`).
    pub volume: Option<Arc<Volume>>,
    /// The opened device or image of a block session.
    pub device: Option<ferry_tree::Device>,
    pub options: ferry_proto::SessionOptions,
    pub filter: ferry_proto::Filter,
    pub lock: VolumeLock<'a>,
    pub slot: OwnedSemaphorePermit,
    /// The session's place among those taking joins (`streams_max > 1`).
    pub registration: Option<Registration>,
}

pub(super) enum Admission<'a> {
    Admitted(Box<Admitted<'a>>),
    /// A `Join` of this version: the hub answers it.
    Join(Box<(ferry_proto::session::stream::SessionKey, u16, Opener)>),
    /// Refused, or a probe that was answered: either way no session ran.
    Refused,
}

pub(super) async fn admit<'a, R: tokio::io::AsyncRead + Unpin>(
    shared: &'a Shared,
    reader: &mut FrameReader<R>,
    tx: &FrameSender,
    deadline: Instant,
    opener: Opener,
) -> Admission<'a> {
    let failed = |why, detail: String| shared.failures.failed(&shared.metrics, why, || detail);
    let refuse = |reason, message: String| async move {
        tracing::warn!("refused: {message}");
        shared.metrics.refused(reason);
        let _ = tx.send(Message::Refused { reason, message }).await;
        Admission::Refused
    };
    let hello = match tokio::time::timeout_at(deadline, reader.next()).await {
        Ok(Ok(Some(hello))) => hello,
        Ok(Ok(None)) => {
            failed(
                HandshakeFailure::NoHello,
                "a client closed the connection before its Hello".to_owned(),
            );
            return Admission::Refused;
        }
        // A Hello from another version of Ferry: tell it why, rather than just close.
        Ok(Err(e)) if e.exit == ExitCode::ProtocolVersion => {
            return refuse(
                RefuseReason::VersionMismatch,
                format!(
                    "{} (this target runs {})",
                    e.message,
                    env!("CARGO_PKG_VERSION")
                ),
            )
            .await;
        }
        Ok(Err(e)) => {
            failed(HandshakeFailure::NoHello, format!("before Hello: {e}"));
            // The client is authenticated: say what was wrong with its Hello (a filter
            // over the limits, a bad field) rather than just close.
            let _ = tx
                .send(Message::Error {
                    class: ErrorClass::Protocol,
                    message: format!("the target could not read the Hello: {}", e.message),
                })
                .await;
            return Admission::Refused;
        }
        Err(_) => {
            failed(
                HandshakeFailure::Timeout,
                format!("no Hello within {} s of TLS", HELLO_TIMEOUT.as_secs()),
            );
            return Admission::Refused;
        }
    };
    if let Message::Join {
        version,
        key,
        stream,
    } = hello
    {
        if version != PROTOCOL_VERSION {
            shared.metrics.stream_join(JoinResult::Version);
            return refuse(
                RefuseReason::VersionMismatch,
                format!("this server speaks protocol {PROTOCOL_VERSION}, the joining client {version}; run the same ferry version on both sides"),
            )
            .await;
        }
        return Admission::Join(Box::new((key, stream, opener)));
    }
    let Message::Hello {
        version,
        volume,
        options,
        filter,
    } = hello
    else {
        shared.metrics.handshake_failed(HandshakeFailure::NoHello);
        let _ = tx
            .send(Message::Error {
                class: ErrorClass::Protocol,
                message: format!("expected Hello, got {}", hello.name()),
            })
            .await;
        return Admission::Refused;
    };
    if version != PROTOCOL_VERSION {
        return refuse(
            RefuseReason::VersionMismatch,
            format!("this target speaks protocol {PROTOCOL_VERSION}, the source {version}; run the same ferry version on both sides"),
        )
        .await;
    }
    let name = String::from_utf8_lossy(&volume).into_owned();
    let Some(export) = shared.volumes.get(&name) else {
        let mut known: Vec<_> = shared.volumes.keys().cloned().collect();
        known.sort();
        return refuse(
            RefuseReason::UnknownVolume,
            format!(
                "no volume named {:?} here; this target serves: {}",
                escape(&volume),
                known.join(", ")
            ),
        )
        .await;
    };
    let path = &export.path;
    // A probe checks that a push could write (it creates and removes a temp file): for a
    // read-only export it is refused like the push, whatever else the Hello asks.
    if export.read_only && (!options.pull || options.probe) {
        return refuse(
            RefuseReason::ReadOnly,
            format!("volume {name} is exported read-only (--volume {name}=PATH:ro): it can be pulled from, not pushed to; export it without :ro to receive pushes"),
        )
        .await;
    }
    let block_volume = shared.block_volumes.contains(&name);
    if let Some(message) = block::mismatch(&name, block_volume, &options).filter(|_| !options.probe)
    {
        return refuse(RefuseReason::VolumeUnavailable, message).await;
    }
    if options.probe {
        let verdict = match block_volume {
            true => block::open(path, false).map(|_| None),
            false => Volume::open(path, shared.privileges)
                .and_then(|v| v.check_writable().map(|()| welcome_space(&v))),
        };
        return match verdict {
            Ok(space) => {
                let _ = tx.send(welcome(space, 1, None)).await;
                tracing::info!(volume = %name, "probe: volume present and writable");
                Admission::Refused
            }
            Err(e) => {
                refuse(
                    if e.is_read_only_fs() {
                        RefuseReason::ReadOnly
                    } else {
                        RefuseReason::VolumeUnavailable
                    },
                    format!("volume {name} is not writable at the target: {e}"),
                )
                .await
            }
        };
    }
    if !shared.busy.lock().expect("busy lock").insert(name.clone()) {
        return refuse(
            RefuseReason::VolumeBusy,
            format!("volume {name} is busy with another session; wait for it to finish (one push or pull per volume at a time)"),
        )
        .await;
    }
    let lock = VolumeLock {
        shared,
        name: name.clone(),
    };
    let Ok(slot) = shared.sessions.clone().try_acquire_owned() else {
        return refuse(
            RefuseReason::VolumeBusy,
            format!("this target is running its limit of {MAX_SESSIONS} sessions; try again when one ends"),
        )
        .await;
    };
    let device = match options.block {
        true => match block::open(path, options.pull) {
            Ok(device) => Some(device),
            Err(e) => {
                return refuse(
                    RefuseReason::VolumeUnavailable,
                    format!("volume {name} cannot be opened at the server: {e}"),
                )
                .await
            }
        },
        false => None,
    };
    let volume = if options.pull || options.block {
        None
    } else {
        match Volume::open(path, shared.privileges) {
            Ok(volume) => Some(Arc::new(volume)),
            Err(e) => {
                return refuse(
                    RefuseReason::VolumeUnavailable,
                    format!("volume {name} cannot be opened at the target: {e}"),
                )
                .await
            }
        }
    };
    // Registered before the Welcome that hands out the key: the client joins at once.
    let registration = shared.hubs.admit(&options, shared.max_streams, opener);
    let (streams_max, key) = registration
        .as_ref()
        .map_or((1, None), |r| (r.streams_max, Some(r.key.clone())));
    if tx
        .send(welcome(
            volume.as_deref().and_then(welcome_space),
            streams_max,
            key,
        ))
        .await
        .is_err()
    {
        if let Some(registration) = registration {
            registration.end(&shared.hubs).await;
        }
        return Admission::Refused;
    }
    Admission::Admitted(Box::new(Admitted {
        export: export.clone(),
        volume,
        device,
        options,
        filter,
        lock,
        slot,
        registration,
    }))
}

/// The `Welcome` that admits a session of `streams_max` streams (joined with `key` iff
/// more than 1).
fn welcome(
    space: Option<VolumeSpace>,
    streams_max: u16,
    key: Option<ferry_proto::session::stream::SessionKey>,
) -> Message {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    Message::Welcome {
        version: PROTOCOL_VERSION,
        space,
        cores: u32::try_from(cores).unwrap_or(u32::MAX),
        streams_max,
        key,
    }
}

/// What a push's (or probe's) `Welcome` says of the volume's free space; `None` if it
/// cannot be read (the session's own check then warns).
fn welcome_space(volume: &Volume) -> Option<VolumeSpace> {
    let free = volume.space().ok()?;
    Some(VolumeSpace {
        free_bytes: free.bytes,
        reserved_bytes: free.reserved,
        free_inodes: free.inodes.unwrap_or(0),
        block_size: free.block,
    })
}
