//! The client's half of the handshake: `Hello` with the session's options and filter,
//! and the server's answer (`Welcome`, or `Refused` with its reason mapped to an exit code).

use std::time::{Duration, Instant};

use ferry_proto::session::stream::SessionKey;
use ferry_proto::{Filter, Limits, Message, SessionOptions, VolumeSpace, PROTOCOL_VERSION};
use tokio::io::AsyncRead;

use super::connect::Route;
use crate::error::EngineError;
use crate::exit::ExitCode;
use crate::framed::{FrameReader, FrameSender};

/// What a `Welcome` said, and how long it took.
#[derive(Clone, Debug)]
pub struct Welcomed {
    /// What the target says of its volume's free space (a push's; `None` from the server
    /// of a pull).
    pub space: Option<VolumeSpace>,
    /// The CPUs the server may use.
    pub cores: u32,
    /// The streams this session may have, stream 0 included (1 to 16).
    pub streams_max: u16,
    /// The key a joining connection presents (iff `streams_max > 1`; never logged).
    pub key: Option<SessionKey>,
    /// From sending Hello to reading Welcome: one round trip, plus the admission.
    pub rtt: Duration,
}

impl Welcomed {
    /// The streams the session runs with: `streams_max` when the server handed out a key
    /// to join with (the streams option is on), else 1 (one stream, protocol 5's frames).
    pub fn session_streams_max(&self) -> u16 {
        match self.key {
            Some(_) => self.streams_max,
            None => 1,
        }
    }
}

/// Sends Hello and reads the target's answer: with `Welcome`, what the target says of its
/// volume's free space (a push's; `None` from the server of a pull).
pub async fn handshake<R: AsyncRead + Unpin>(
    route: &Route,
    options: SessionOptions,
    filter: &Filter,
    reader: &mut FrameReader<R>,
    tx: &FrameSender,
) -> Result<Option<VolumeSpace>, EngineError> {
    Ok(welcome(route, options, filter, reader, tx).await?.space)
}

/// [`handshake`], with all the `Welcome` says.
pub async fn welcome<R: AsyncRead + Unpin>(
    route: &Route,
    options: SessionOptions,
    filter: &Filter,
    reader: &mut FrameReader<R>,
    tx: &FrameSender,
) -> Result<Welcomed, EngineError> {
    let sent = Instant::now();
    tx.send(Message::Hello {
        version: PROTOCOL_VERSION,
        volume: route.volume.as_bytes().to_vec(),
        options,
        filter: filter.clone(),
    })
    .await
    .map_err(|_| EngineError::socket("the connection closed"))?;
    // The server's writer sends a Heartbeat after a quiet interval, which a slow
    // admission (opening the volume, a probe's write check) can reach before Welcome.
    let answer = loop {
        match reader.expect("the target's answer to Hello").await? {
            Message::Heartbeat => continue,
            answer => break answer,
        }
    };
    match answer {
        Message::Welcome {
            version,
            space,
            cores,
            streams_max,
            key,
        } if version == PROTOCOL_VERSION => {
            check_streams_max(streams_max)?;
            if streams_max > 1 && !options.streams {
                return Err(EngineError::protocol(format!(
                    "the target's Welcome offers {streams_max} streams, but this side did not ask for streams (--streams 1); the target is broken or not a Ferry server"
                )));
            }
            Ok(Welcomed {
                space,
                cores,
                streams_max,
                key,
                rtt: sent.elapsed(),
            })
        }
        Message::Welcome { version, .. } => Err(EngineError::new(
            ExitCode::ProtocolVersion,
            format!("target speaks protocol {version}, this ferry speaks {PROTOCOL_VERSION}; run the same ferry version on both sides"),
        )),
        Message::Refused { reason, message } => {
            let exit = match reason {
                ferry_proto::RefuseReason::VersionMismatch => ExitCode::ProtocolVersion,
                _ => ExitCode::StartFailed,
            };
            let error = EngineError::new(
                exit,
                format!(
                    "target refused the session; it says: {}",
                    ferry_proto::peer_text(&message)
                ),
            );
            // Busy is often our own previous session, not yet noticed dead at the target.
            Err(if reason == ferry_proto::RefuseReason::VolumeBusy {
                error.transient()
            } else {
                error
            })
        }
        // The server could not take the Hello (it says why): its class decides.
        Message::Error { class, message } => {
            Err(ferry_proto::SessionError::from_peer("the server could not start the session; it says", class, &message).into())
        }
        other => Err(EngineError::protocol(format!(
            "expected Welcome from the target, got {}",
            other.name()
        ))),
    }
}

/// A session has stream 0 at least, and no more than [`Limits::max_streams`]: a server
/// that offers otherwise breaks the protocol (exit 12).
pub fn check_streams_max(streams_max: u16) -> Result<(), EngineError> {
    let max = Limits::default().max_streams;
    if streams_max == 0 || streams_max > max {
        return Err(EngineError::protocol(format!(
            "the target's Welcome offers {streams_max} streams for this session; a session has 1 to {max} (the target is broken or not a Ferry server)"
        )));
    }
    Ok(())
}
