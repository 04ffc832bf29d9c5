//! Reaching the target the way pods do: TCP to the target or to an HTTP proxy, a CONNECT
//! tunnel through the proxy, then mutual TLS with the route host as SNI and verified name.
//!
//! ```text
//! tcp(host | proxy) ─▶ Counted ─▶ [connect_tunnel(host:port)] ─▶ tls_connect(sni)
//! ```

use std::path::PathBuf;
use std::time::Duration;

use ferry_net::{Counted, ProxyUrl, TlsDir, WireCounter};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::error::EngineError;

/// Where and how to reach a target volume.
#[derive(Clone, Debug)]
pub struct Route {
    pub host: String,
    pub port: u16,
    pub volume: String,
    /// Name verified in the server certificate and sent as SNI.
    pub server_name: String,
    /// The HTTP proxy to tunnel through, if any (already filtered by no-proxy rules).
    pub proxy: Option<ProxyUrl>,
    pub tls_dir: PathBuf,
    /// `--join CODE`: pair first (see [`crate::join`]), storing into `tls_dir`.
    pub join: Option<ferry_net::pairing::JoinCode>,
    /// One deadline for TCP connect, proxy, TLS and session start.
    pub connect_timeout: Duration,
}

/// The stream a session runs over.
pub type SessionStream = TlsStream<Counted<TcpStream>>;

/// Opens TCP (directly or through the proxy) and TLS to the route.
pub async fn dial(route: &Route, wire: &WireCounter) -> Result<SessionStream, EngineError> {
    Ok(dial_timed(route, wire).await?.0)
}

/// [`dial`], and how long the TLS handshake took: one round trip to the server (through
/// the tunnel) and the handshake's own work, a measure of the round trip that no
/// proxy's small-write delay and no admission at the server adds to.
pub async fn dial_timed(
    route: &Route,
    wire: &WireCounter,
) -> Result<(SessionStream, Duration), EngineError> {
    let tls = ferry_net::client_config(&TlsDir::new(&route.tls_dir))?;
    let name = ferry_net::server_name(&route.server_name)?;
    let tcp = tcp(route).await?;
    let stream = tunnel(route, Counted::new(tcp, wire.clone())).await?;
    let started = std::time::Instant::now();
    let stream = ferry_net::tls_connect(tls, name, stream).await?;
    Ok((stream, started.elapsed()))
}

/// TCP to the first hop: the proxy if there is one, else the target.
pub async fn tcp(route: &Route) -> Result<TcpStream, EngineError> {
    let tcp = match &route.proxy {
        Some(proxy) => ferry_net::connect_proxy(proxy, route.connect_timeout).await?,
        None => ferry_net::connect(&route.host, route.port, route.connect_timeout).await?,
    };
    ferry_net::tune(&tcp)?;
    Ok(tcp)
}

/// Asks the proxy (if any) for a tunnel to the target.
pub async fn tunnel(
    route: &Route,
    stream: Counted<TcpStream>,
) -> Result<Counted<TcpStream>, EngineError> {
    match &route.proxy {
        Some(proxy) => Ok(ferry_net::connect_tunnel(stream, proxy, &route.host, route.port).await?),
        None => Ok(stream),
    }
}
