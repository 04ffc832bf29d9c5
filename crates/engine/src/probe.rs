//! `ferry probe`: walks the hops to a target volume one by one and says which one fails,
//! instead of an opaque "connection reset" from the middle of a transfer.
//!
//! ```text
//! dns ─▶ tcp (proxy or target) ─▶ CONNECT ─▶ TLS (name, CA) ─▶ client cert ─▶ volume
//! ```

use std::fmt;
use std::future::Future;

use ferry_net::{Counted, WireCounter};
use ferry_proto::{Limits, Message, RefuseReason, SessionOptions, PROTOCOL_VERSION};

use crate::client::connect::{self, Route};
use crate::client::handshake::check_streams_max;
use crate::error::EngineError;
use crate::exit::ExitCode;
use crate::framed::{spawn_writer, FrameReader};

/// The verdict on one hop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Ok(String),
    Failed(String),
    /// Not tried because an earlier hop failed, or not part of this route.
    Skipped(String),
}

#[derive(Clone, Debug)]
pub struct Hop {
    pub name: &'static str,
    pub verdict: Verdict,
}

impl fmt::Display for Hop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (word, text) = match &self.verdict {
            Verdict::Ok(text) => ("ok", text),
            Verdict::Failed(text) => ("FAIL", text),
            Verdict::Skipped(text) => ("skip", text),
        };
        write!(f, "{word:<5} {:<12} {text}", self.name)
    }
}

/// Runs every hop in order; returns the verdicts and the exit code of the first failure.
pub async fn probe(route: &Route) -> (Vec<Hop>, ExitCode) {
    let mut hops = Vec::new();
    let exit = match run(route, &mut hops).await {
        Ok(()) => ExitCode::Ok,
        Err(e) => e.exit,
    };
    for name in ["dns", "tcp", "connect", "tls", "client-cert", "volume"] {
        if !hops.iter().any(|h| h.name == name) {
            hops.push(Hop {
                name,
                verdict: Verdict::Skipped("not reached".into()),
            });
        }
    }
    (hops, exit)
}

/// Runs `step` under the route's deadline and records its verdict.
async fn hop<T>(
    hops: &mut Vec<Hop>,
    route: &Route,
    name: &'static str,
    step: impl Future<Output = Result<(T, String), EngineError>>,
) -> Result<T, EngineError> {
    let result = match tokio::time::timeout(route.connect_timeout, step).await {
        Ok(result) => result,
        Err(_) => Err(EngineError::new(
            ExitCode::ConnectTimeout,
            format!("no answer within {} s", route.connect_timeout.as_secs()),
        )),
    };
    match result {
        Ok((value, text)) => {
            hops.push(Hop {
                name,
                verdict: Verdict::Ok(text),
            });
            Ok(value)
        }
        Err(e) => {
            hops.push(Hop {
                name,
                verdict: Verdict::Failed(e.message.clone()),
            });
            Err(e)
        }
    }
}

async fn run(route: &Route, hops: &mut Vec<Hop>) -> Result<(), EngineError> {
    let (first_host, first_port, what) = match &route.proxy {
        Some(proxy) => (proxy.host().to_string(), proxy.port(), "proxy"),
        None => (route.host.clone(), route.port, "target"),
    };
    hop(hops, route, "dns", async {
        let addrs: Vec<_> = tokio::net::lookup_host((first_host.as_str(), first_port))
            .await
            .map_err(|e| EngineError::socket(format!("cannot resolve {what} {first_host}: {e}")))?
            .map(|a| a.ip().to_string())
            .collect();
        let via = if route.proxy.is_some() {
            format!("; the proxy resolves {}", route.host)
        } else {
            String::new()
        };
        Ok((
            (),
            format!("{what} {first_host} -> {}{via}", addrs.join(", ")),
        ))
    })
    .await?;
    let tcp = hop(hops, route, "tcp", async {
        let tcp = connect::tcp(route).await?;
        let peer = tcp
            .peer_addr()
            .map(|a| a.to_string())
            .unwrap_or_else(|_| "?".into());
        Ok((tcp, format!("connected to {what} at {peer}")))
    })
    .await?;
    let wire = WireCounter::default();
    let stream = Counted::new(tcp, wire);
    let stream = match &route.proxy {
        Some(proxy) => {
            hop(hops, route, "connect", async {
                let stream = connect::tunnel(route, stream).await?;
                Ok((
                    stream,
                    format!(
                        "proxy {} opened a tunnel to {}:{}",
                        proxy.redacted(),
                        route.host,
                        route.port
                    ),
                ))
            })
            .await?
        }
        None => {
            hops.push(Hop {
                name: "connect",
                verdict: Verdict::Skipped("no proxy on this route".into()),
            });
            stream
        }
    };
    let tls = hop(hops, route, "tls", async {
        let config = ferry_net::client_config(&ferry_net::TlsDir::new(&route.tls_dir))?;
        let name = ferry_net::server_name(&route.server_name)?;
        let tls = ferry_net::tls_connect(config, name, stream).await?;
        Ok((
            tls,
            format!(
                "server certificate is valid for {} and signed by our ca.crt",
                route.server_name
            ),
        ))
    })
    .await?;
    let (read, write) = tokio::io::split(tls);
    let mut reader = FrameReader::new(read, Limits::default())
        .with_peer(ferry_net::TlsPeer::Server(route.server_name.clone()));
    let (tx, _writer) = spawn_writer(write, 4, crate::framed::DEFAULT_HEARTBEAT);
    let options = SessionOptions {
        probe: true,
        ..SessionOptions::default()
    };
    // TLS 1.3 tells a client that its certificate was refused only on its first read,
    // so the answer to Hello settles both the client certificate and the volume.
    let hello = Message::Hello {
        version: PROTOCOL_VERSION,
        volume: route.volume.as_bytes().to_vec(),
        options,
        filter: Default::default(),
    };
    let answer = async {
        tx.send(hello)
            .await
            .map_err(|_| EngineError::socket("the connection closed"))?;
        // A slow admission can let the server's Heartbeat come before its answer.
        loop {
            match reader.expect("the answer to Hello").await? {
                Message::Heartbeat => continue,
                answer => break Ok::<_, EngineError>(answer),
            }
        }
    };
    let answer = hop(hops, route, "client-cert", async {
        let answer = answer.await?;
        Ok((answer, "the target accepted our client certificate".into()))
    })
    .await?;
    hop(hops, route, "volume", async {
        match answer {
            Message::Welcome {
                space, streams_max, ..
            } => {
                check_streams_max(streams_max)?;
                Ok((
                    (),
                    format!(
                        "volume {} is present and writable{}",
                        route.volume,
                        match space {
                            Some(s) => format!(
                                "; {} bytes free ({} more reserved for root), {} inodes",
                                s.free_bytes, s.reserved_bytes, s.free_inodes
                            ),
                            None => String::new(),
                        }
                    ),
                ))
            }
            Message::Refused { reason, message } => Err(EngineError::new(
                match reason {
                    RefuseReason::VersionMismatch => ExitCode::ProtocolVersion,
                    _ => ExitCode::StartFailed,
                },
                format!("target says: {}", ferry_proto::peer_text(&message)),
            )),
            Message::Error { class, message } => Err(ferry_proto::SessionError::from_peer(
                "the server could not start the session; it says",
                class,
                &message,
            )
            .into()),
            other => Err(EngineError::protocol(format!(
                "expected Welcome, got {}",
                other.name()
            ))),
        }
    })
    .await
}
