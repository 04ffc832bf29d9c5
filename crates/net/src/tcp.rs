//! Plain TCP: listening, connecting with a deadline, and socket tuning.
//!
//! Tuning aims at long transfers through routers and load balancers that cut idle
//! connections: keepalive probes well inside their usual idle timeouts, and no Nagle delay
//! on small protocol messages. Buffer sizes stay with the kernel, whose autotuning beats
//! any fixed number on both loopback and long fat links.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use socket2::{Domain, Protocol, SockRef, Socket, TcpKeepalive, Type};
use tokio::net::{TcpListener, TcpStream};

use crate::error::NetError;

const BACKLOG: i32 = 1024;
const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEPALIVE_PROBES: u32 = 6;

/// Binds `addr` with `SO_REUSEADDR` (so a restarted server does not wait out TIME_WAIT)
/// and a backlog of 1024. Must be called inside a tokio runtime.
pub fn listen(addr: SocketAddr) -> Result<TcpListener, NetError> {
    let listener = listen_std(addr)?;
    TcpListener::from_std(listener).map_err(|source| NetError::Bind { addr, source })
}

/// [`listen`] without a runtime: a bound, non-blocking std listener, for a process that
/// binds its port before it drops privileges and starts the runtime.
pub fn listen_std(addr: SocketAddr) -> Result<std::net::TcpListener, NetError> {
    let bind = |source| NetError::Bind { addr, source };
    let socket =
        Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP)).map_err(bind)?;
    socket.set_reuse_address(true).map_err(bind)?;
    socket.set_nonblocking(true).map_err(bind)?;
    socket.bind(&addr.into()).map_err(bind)?;
    socket.listen(BACKLOG).map_err(bind)?;
    Ok(socket.into())
}

/// Resolves `host` and tries its addresses in order until one connects. The whole thing,
/// resolution included, is bounded by `timeout`.
pub async fn connect(host: &str, port: u16, timeout: Duration) -> Result<TcpStream, NetError> {
    with_timeout(host, port, timeout, connect_any(host, port)).await
}

/// Applies the connection tuning; both ends call it on every established stream.
pub fn tune(stream: &TcpStream) -> Result<(), NetError> {
    let socket = SockRef::from(stream);
    let keepalive = TcpKeepalive::new()
        .with_time(KEEPALIVE_IDLE)
        .with_interval(KEEPALIVE_INTERVAL)
        .with_retries(KEEPALIVE_PROBES);
    socket
        .set_tcp_nodelay(true)
        .and_then(|()| socket.set_tcp_keepalive(&keepalive))
        .map_err(|source| NetError::Tune { source })
}

async fn with_timeout<T>(
    host: &str,
    port: u16,
    timeout: Duration,
    attempt: impl Future<Output = Result<T, NetError>>,
) -> Result<T, NetError> {
    tokio::time::timeout(timeout, attempt)
        .await
        .unwrap_or_else(|_| {
            Err(NetError::Timeout {
                host: host.to_owned(),
                port,
                after: timeout,
            })
        })
}

async fn connect_any(host: &str, port: u16) -> Result<TcpStream, NetError> {
    let addrs = tokio::net::lookup_host((host, port))
        .await
        .map_err(|source| NetError::Resolve {
            host: host.to_owned(),
            port,
            source,
        })?;
    let mut last: Option<(SocketAddr, io::Error)> = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(error) => {
                tracing::debug!(%host, %addr, %error, "connect attempt failed");
                last = Some((addr, error));
            }
        }
    }
    Err(match last {
        Some((addr, source)) => NetError::Connect {
            host: host.to_owned(),
            port,
            addr,
            source,
        },
        None => NetError::NoAddress {
            host: host.to_owned(),
            port,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::NetErrorClass;

    #[tokio::test(start_paused = true)]
    async fn a_hung_attempt_becomes_a_timeout_naming_host_and_port() {
        let hung = std::future::pending::<Result<(), NetError>>();
        let error = with_timeout("dvm.example", 443, Duration::from_secs(10), hung)
            .await
            .unwrap_err();
        assert_eq!(error.class(), NetErrorClass::Timeout);
        let message = error.to_string();
        assert!(message.contains("dvm.example:443"), "{message}");
        assert!(message.contains("10s"), "{message}");
    }

    #[tokio::test]
    async fn an_unresolvable_host_is_a_connect_class_resolve_error() {
        // `.invalid` is reserved (RFC 2606) and never resolves.
        let error = connect("nothing.invalid", 443, Duration::from_secs(30))
            .await
            .unwrap_err();
        assert!(matches!(error, NetError::Resolve { .. }), "{error:?}");
        assert_eq!(error.class(), NetErrorClass::Connect);
        assert!(error.to_string().contains("nothing.invalid"), "{error}");
    }
}
