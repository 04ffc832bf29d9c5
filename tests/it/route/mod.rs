//! Reaching a target the way a migration does: through an HTTP CONNECT proxy with basic auth
//! (tinyproxy) and an SNI-routing passthrough router (HAProxy, as the OpenShift router),
//! with `--proxy` / `--no-proxy` / the proxy environment, heartbeats against a router's idle
//! timeout, and `ferry probe` naming the hop that fails.
//!
//! Everything listens on 127.0.0.1; the route host is chosen by `--server-name` (the SNI),
//! so no DNS is needed.

// Fixtures.
mod bulk;
mod daemon;
mod fake_proxy;
mod hostname;
mod probe_run;
mod router;
mod tinyproxy;
mod topology;

// Tests.
mod env_proxy;
mod idle;
mod no_proxy;
mod pairing;
mod probe;
mod proxy_errors;
mod ranges;
mod ranges_changed;
mod secrets;
mod streams;
mod streams_tree;
mod through;
mod unknown_route;
