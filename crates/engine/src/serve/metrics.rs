//! The target's counters, shared by the accept loop and every session as atomics, and
//! rendered in the Prometheus text format (version 0.0.4) for `--metrics-listen`.
//!
//! ```text
//! accept loop ─┐                       ┌─▶ render() ─▶ GET /metrics (http.rs)
//! connections ─┼─▶ Arc<Metrics> ───────┘
//! sessions ────┘   (one VolumeMetrics per served volume)
//! ```

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use crate::exit::ExitCode;
use crate::target::VolumeMetrics;

/// Why a connection never reached its Hello.
#[derive(Clone, Copy, Debug)]
pub enum HandshakeFailure {
    /// TLS failed: no or a refused client certificate, not TLS at all.
    Tls,
    /// TLS and Hello took longer than the handshake deadline.
    Timeout,
    /// The connection ended or sent something else before a Hello.
    NoHello,
    /// Evicted for a newer connection while every pre-authentication slot was taken
    /// (or, once authenticated, every slot for a Hello).
    Overload,
}

/// How a `Join` was answered (`ferry_stream_joins_total{result=...}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JoinResult {
    Joined,
    /// Another protocol version.
    Version,
    /// No session with that key.
    Unknown,
    /// The session's key with another client certificate or SNI than its opener's.
    Identity,
    /// The session is finishing or over.
    Closed,
    /// Over the session's limit, or the server's.
    TooMany,
    /// That stream joined before.
    Taken,
}

const JOIN_RESULTS: [&str; 7] = [
    "joined", "version", "unknown", "identity", "closed", "too_many", "taken",
];

/// How often connections failing before their Hello are summed up in the log.
pub const FAILURE_LOG_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

/// The log of connections that fail before their Hello: the first of each interval in
/// detail, the rest as one summary line per interval with counts by reason. Anyone can
/// open connections, so a line per connection would let a peer flood the log; the
/// metric counts every one.
#[derive(Debug, Default)]
pub struct FailureLog {
    state: Mutex<FailureLogState>,
}

#[derive(Debug, Default)]
struct FailureLogState {
    /// Whether this interval's detailed line has been written.
    detailed: bool,
    /// Failures since then, by reason, not logged yet.
    unlogged: [u64; HANDSHAKE_REASONS.len()],
}

impl FailureLog {
    /// Counts a failure in `metrics` and logs `detail()` if it is the first since the
    /// last summary.
    pub fn failed(
        &self,
        metrics: &Metrics,
        why: HandshakeFailure,
        detail: impl FnOnce() -> String,
    ) {
        metrics.handshake_failed(why);
        let mut state = self.state.lock().expect("failure log lock");
        if state.detailed {
            state.unlogged[why as usize] += 1;
        } else {
            state.detailed = true;
            drop(state);
            let detail = detail();
            tracing::warn!(
                "{detail} (connections failing before their Hello: one is shown, the rest summed every {} s)",
                FAILURE_LOG_INTERVAL.as_secs()
            );
        }
    }

    /// Logs a refused join that presented a session's key with another identity than
    /// the session's opener, if it is the first line of this interval (the metric
    /// `ferry_stream_joins_total{result="identity"}` counts every one).
    pub fn join_refused(&self, detail: impl FnOnce() -> String) {
        let mut state = self.state.lock().expect("failure log lock");
        if state.detailed {
            return;
        }
        state.detailed = true;
        drop(state);
        tracing::warn!(
            "{} (one such line per {} s at most)",
            detail(),
            FAILURE_LOG_INTERVAL.as_secs()
        );
    }

    /// Writes the summary of the failures not logged since the last call, if any, and
    /// starts a new interval; the serve loop calls it every [`FAILURE_LOG_INTERVAL`].
    pub fn summarize(&self) {
        let mut state = self.state.lock().expect("failure log lock");
        let unlogged = std::mem::take(&mut state.unlogged);
        state.detailed = false;
        drop(state);
        let total: u64 = unlogged.iter().sum();
        if total == 0 {
            return;
        }
        let by_reason: Vec<String> = unlogged
            .iter()
            .zip(HANDSHAKE_REASONS)
            .filter(|(n, _)| **n > 0)
            .map(|(n, reason)| format!("{reason} {n}"))
            .collect();
        tracing::warn!(
            "{total} more connections failed before their Hello in the last {} s ({}); \
             many \"overload\" or \"timeout\" mean someone opens connections without \
             authenticating (see ferry_handshake_failures_total)",
            FAILURE_LOG_INTERVAL.as_secs(),
            by_reason.join(", ")
        );
    }
}

const HANDSHAKE_REASONS: [&str; 4] = ["tls", "timeout", "no_hello", "overload"];
const REFUSE_REASONS: [&str; 5] = [
    "version",
    "unknown_volume",
    "busy",
    "unavailable",
    "read_only",
];
const ERROR_CLASSES: [&str; 7] = [
    "protocol",
    "file_io",
    "socket",
    "timeout",
    "interrupted",
    "start",
    "other",
];

#[derive(Debug)]
pub struct Metrics {
    pub sessions_active: AtomicU64,
    pub sessions_total: AtomicU64,
    handshake_failures: [AtomicU64; HANDSHAKE_REASONS.len()],
    refused: [AtomicU64; REFUSE_REASONS.len()],
    session_errors: [AtomicU64; ERROR_CLASSES.len()],
    stream_joins: [AtomicU64; JOIN_RESULTS.len()],
    volumes: BTreeMap<String, Arc<VolumeMetrics>>,
}

impl Metrics {
    pub fn new<'a>(volumes: impl IntoIterator<Item = &'a String>) -> Metrics {
        Metrics {
            sessions_active: AtomicU64::new(0),
            sessions_total: AtomicU64::new(0),
            handshake_failures: Default::default(),
            refused: Default::default(),
            session_errors: Default::default(),
            stream_joins: Default::default(),
            volumes: volumes
                .into_iter()
                .map(|name| (name.clone(), Arc::default()))
                .collect(),
        }
    }

    pub fn volume(&self, name: &str) -> Arc<VolumeMetrics> {
        self.volumes.get(name).cloned().unwrap_or_default()
    }

    pub fn handshake_failed(&self, why: HandshakeFailure) {
        self.handshake_failures[why as usize].fetch_add(1, Relaxed);
    }

    pub fn refused(&self, reason: ferry_proto::RefuseReason) {
        use ferry_proto::RefuseReason::*;
        let i = match reason {
            VersionMismatch => 0,
            UnknownVolume => 1,
            VolumeBusy => 2,
            VolumeUnavailable => 3,
            ReadOnly => 4,
            // Answers to a `Join`, not to a `Hello`: `ferry_stream_joins_total` counts them.
            UnknownSession | JoinClosed | StreamTaken | TooManyStreams => return,
        };
        self.refused[i].fetch_add(1, Relaxed);
    }

    pub fn stream_join(&self, result: JoinResult) {
        self.stream_joins[result as usize].fetch_add(1, Relaxed);
    }

    pub fn session_failed(&self, exit: ExitCode) {
        let i = match exit {
            ExitCode::Protocol | ExitCode::ProtocolVersion => 0,
            ExitCode::FileIo => 1,
            ExitCode::SocketIo => 2,
            ExitCode::DataTimeout | ExitCode::ConnectTimeout => 3,
            ExitCode::Interrupted => 4,
            ExitCode::StartFailed => 5,
            _ => 6,
        };
        self.session_errors[i].fetch_add(1, Relaxed);
    }

    /// The Prometheus text exposition (`text/plain; version=0.0.4`).
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut family = |name: &str, kind: &str, help: &str, samples: Vec<(String, u64)>| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        let plain = |v: &AtomicU64| vec![(String::new(), v.load(Relaxed))];
        let labelled = |label: &str, names: &[&str], values: &[AtomicU64]| {
            names
                .iter()
                .zip(values)
                .map(|(n, v)| (format!("{{{label}=\"{n}\"}}"), v.load(Relaxed)))
                .collect::<Vec<_>>()
        };
        let per_volume = |get: fn(&VolumeMetrics) -> &AtomicU64| {
            self.volumes
                .iter()
                .map(|(name, v)| {
                    let label = format!("{{volume=\"{}\"}}", label_value(name));
                    (label, get(v).load(Relaxed))
                })
                .collect::<Vec<_>>()
        };
        family(
            "ferry_sessions_active",
            "gauge",
            "Push sessions running now.",
            plain(&self.sessions_active),
        );
        family(
            "ferry_sessions_total",
            "counter",
            "Push sessions admitted.",
            plain(&self.sessions_total),
        );
        family(
            "ferry_handshake_failures_total",
            "counter",
            "Connections that failed before their Hello, by reason.",
            labelled("reason", &HANDSHAKE_REASONS, &self.handshake_failures),
        );
        family(
            "ferry_sessions_refused_total",
            "counter",
            "Hellos answered with Refused, by reason.",
            labelled("reason", &REFUSE_REASONS, &self.refused),
        );
        family(
            "ferry_session_errors_total",
            "counter",
            "Sessions that ended on a fatal error, by class.",
            labelled("class", &ERROR_CLASSES, &self.session_errors),
        );
        family(
            "ferry_stream_joins_total",
            "counter",
            "Connections that asked to join a running session as another stream, by answer.",
            labelled("result", &JOIN_RESULTS, &self.stream_joins),
        );
        family(
            "ferry_volume_sessions_total",
            "counter",
            "Push sessions admitted, by volume.",
            per_volume(|v| &v.sessions),
        );
        family(
            "ferry_volume_received_bytes_total",
            "counter",
            "File content received (literal data and delta instructions), by volume.",
            per_volume(|v| &v.received_bytes),
        );
        family(
            "ferry_volume_written_bytes_total",
            "counter",
            "Bytes of the files written into place, by volume.",
            per_volume(|v| &v.written_bytes),
        );
        family(
            "ferry_volume_files_written_total",
            "counter",
            "Files written into place, by volume.",
            per_volume(|v| &v.files_written),
        );
        family(
            "ferry_volume_file_errors_total",
            "counter",
            "Per-file errors at the target, by volume.",
            per_volume(|v| &v.file_errors),
        );
        out
    }
}

/// A label value with `\`, `"` and newlines escaped, as the text format requires.
fn label_value(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_counted_one_by_one_and_logged_once_per_interval() {
        let m = Metrics::new(&[]);
        let log = FailureLog::default();
        let mut shown = 0;
        for _ in 0..100 {
            log.failed(&m, HandshakeFailure::Overload, || {
                shown += 1;
                String::new()
            });
        }
        assert_eq!(shown, 1, "only the first failure of an interval is shown");
        assert_eq!(
            m.handshake_failures[HandshakeFailure::Overload as usize].load(Relaxed),
            100
        );
        assert_eq!(
            log.state.lock().unwrap().unlogged[HandshakeFailure::Overload as usize],
            99
        );
        log.summarize();
        assert_eq!(
            log.state.lock().unwrap().unlogged,
            [0; HANDSHAKE_REASONS.len()]
        );
        log.failed(&m, HandshakeFailure::Tls, || {
            shown += 1;
            String::new()
        });
        assert_eq!(shown, 2, "a new interval shows its first failure again");
    }

    #[test]
    fn renders_every_family_with_its_labels() {
        let names = ["data".to_string(), "we\"ird".to_string()];
        let m = Metrics::new(&names);
        m.sessions_total.fetch_add(2, Relaxed);
        m.handshake_failed(HandshakeFailure::Tls);
        m.session_failed(ExitCode::FileIo);
        m.stream_join(JoinResult::Identity);
        m.volume("data").received_bytes.fetch_add(4096, Relaxed);
        let text = m.render();
        for line in [
            "# TYPE ferry_sessions_total counter",
            "ferry_sessions_total 2",
            "ferry_sessions_active 0",
            "ferry_handshake_failures_total{reason=\"tls\"} 1",
            "ferry_session_errors_total{class=\"file_io\"} 1",
            "ferry_stream_joins_total{result=\"identity\"} 1",
            "ferry_volume_received_bytes_total{volume=\"data\"} 4096",
            "ferry_volume_received_bytes_total{volume=\"we\\\"ird\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} missing:\n{text}");
        }
    }
}
