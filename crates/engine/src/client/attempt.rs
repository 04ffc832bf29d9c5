//! The attempts of a connecting command (push, pull): each runs until it ends or a
//! signal stops it, and after a network failure the next comes after a backoff, as many
//! times as `--retries` allows. Also the errors for a signal and for a route not reached
//! in time.
//!
//! ```text
//! loop { Attempts::run(attempt) ─▶ Ok ─▶ done
//!                                 └▶ Err(e) ─▶ will_retry(e)? ─no─▶ fail with e
//!                                                └ yes ─▶ (carry what the cut attempt did) ─▶ wait ─▶ loop }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use super::connect::Route;
use crate::error::EngineError;
use crate::exit::ExitCode;
use crate::report::progress::Progress;
use crate::report::Reporter;

/// The attempts of one command; `S` is the signal that stops it.
pub(crate) struct Attempts<'a, S: Future<Output = ()>> {
    /// Retries `--retries` allows.
    allowed: u32,
    /// Retries so far.
    pub retries: u64,
    reporter: &'a Reporter,
    progress: &'a Progress,
    /// What the warnings name (the command's peer URL).
    label: &'a str,
    shutdown: Pin<&'a mut S>,
}

impl<'a, S: Future<Output = ()>> Attempts<'a, S> {
    /// `shutdown` resolving (a signal) stops the attempt running, or the wait for the next.
    pub fn new(
        allowed: u32,
        reporter: &'a Reporter,
        progress: &'a Progress,
        label: &'a str,
        shutdown: Pin<&'a mut S>,
    ) -> Self {
        Attempts {
            allowed,
            retries: 0,
            reporter,
            progress,
            label,
            shutdown,
        }
    }

    /// Runs one attempt to its end, or until a signal ([`interrupted`]).
    pub async fn run<T>(
        &mut self,
        attempt: impl Future<Output = Result<T, EngineError>>,
    ) -> Result<T, EngineError> {
        self.progress.start_attempt();
        tokio::select! {
            result = attempt => result,
            () = &mut self.shutdown => Err(interrupted()),
        }
    }

    /// Whether another attempt follows `error`: a network failure or timeout, with
    /// retries left.
    pub fn will_retry(&self, error: &EngineError) -> bool {
        error.is_retryable() && self.retries < u64::from(self.allowed)
    }

    /// Says why the next attempt comes, and waits for it (the backoff); a signal
    /// meanwhile ends the command.
    pub async fn wait(&mut self, error: &EngineError) -> Result<(), EngineError> {
        self.retries += 1;
        self.progress.retrying();
        let delay = backoff(self.retries);
        self.reporter.warning(
            self.label,
            &format!(
                "{error}; retry {} of {} in {:.1} s",
                self.retries,
                self.allowed,
                delay.as_secs_f64()
            ),
        );
        tokio::select! {
            () = tokio::time::sleep(delay) => Ok(()),
            () = &mut self.shutdown => Err(interrupted()),
        }
    }
}

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
