//! What every attempt of a connecting command (push, pull) shares: the backoff between
//! attempts, and the errors for a signal and for a route not reached in time.

use std::time::Duration;

use super::connect::Route;
use crate::error::EngineError;
use crate::exit::ExitCode;

pub(crate) fn interrupted() -> EngineError {
    EngineError::new(
        ExitCode::Interrupted,
        "interrupted by a signal; the target keeps what was complete and partial files to resume",
    )
}

/// Exponential backoff from 0.5 s, capped at 30 s, with ±50% jitter so that many
/// source pods cut by the same network event do not come back in lockstep.
pub(crate) fn backoff(attempt: u64) -> Duration {
    let base = Duration::from_millis(500).saturating_mul(1 << attempt.saturating_sub(1).min(6));
    let base = base.min(Duration::from_secs(30));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let jitter = 0.5 + f64::from(nanos % 1000) / 1000.0;
    base.mul_f64(jitter)
}

/// The error for a route that could not be reached within its deadline.
pub(crate) fn connect_timeout(route: &Route) -> EngineError {
    let via = match &route.proxy {
        Some(proxy) => format!(" through proxy {}", proxy.redacted()),
        None => String::new(),
    };
    EngineError::new(
        ExitCode::ConnectTimeout,
        format!(
            "could not reach {}:{}{via} and start a session within {} s; `ferry probe` shows which hop fails",
            route.host,
            route.port,
            route.connect_timeout.as_secs()
        ),
    )
}
