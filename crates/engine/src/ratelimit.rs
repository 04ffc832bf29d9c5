//! `--bwlimit`: a token bucket in bytes per second, shared by every task that writes to
//! (or, on the target, reads from) a connection under the limit.
//!
//! ```text
//! writer task ── acquire(n).await ──▶ bucket (refills at `rate`, holds at most `burst`)
//!             ── write n bytes ─────▶ stream
//! ```
//!
//! A caller may take more than is in the bucket: the bucket goes into debt and the caller
//! sleeps until the debt would be paid back. So a single large write costs exactly its
//! size, and callers that share the bucket are served one after another at `rate`.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// The bucket never holds more than this much of a second's rate, so an idle connection
/// cannot save up a large burst.
const BURST: Duration = Duration::from_millis(100);

/// Writes under a limit are cut to at most this many bytes, so the flow stays smooth.
pub const MAX_CHUNK: usize = 64 * 1024;

#[derive(Debug)]
pub struct RateLimiter {
    /// Bytes per second.
    rate: u64,
    burst: f64,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// Bytes available now; negative while callers wait for a debt to be paid back.
    tokens: f64,
    last: Instant,
}

impl RateLimiter {
    /// A bucket that passes `rate` bytes per second (at least 1), full at the start.
    pub fn new(rate: u64) -> RateLimiter {
        let rate = rate.max(1);
        let burst = (rate as f64 * BURST.as_secs_f64()).max(1.0);
        RateLimiter {
            rate,
            burst,
            state: Mutex::new(State {
                tokens: burst,
                last: Instant::now(),
            }),
        }
    }

    /// Takes `n` bytes from the bucket, waiting as long as the bucket is in debt.
    pub async fn acquire(&self, n: usize) {
        let wait = {
            let mut state = self.state.lock().expect("rate limiter lock");
            let now = Instant::now();
            let refill = now.duration_since(state.last).as_secs_f64() * self.rate as f64;
            state.tokens = (state.tokens + refill).min(self.burst);
            state.last = now;
            state.tokens -= n as f64;
            if state.tokens >= 0.0 {
                return;
            }
            Duration::from_secs_f64(-state.tokens / self.rate as f64)
        };
        tokio::time::sleep(wait).await;
    }
}

/// Parses a `--bwlimit` value: bytes per second, with an optional suffix `K`, `M`, `G`
/// (powers of 1024, like rsync; `KiB`/`MiB`/`GiB` and a trailing `B` or `/s` are also
/// accepted). `0` means no limit.
pub fn parse_rate(text: &str) -> Result<Option<u64>, String> {
    let usage = || {
        format!(
            "--bwlimit {text:?} is not a rate; give bytes per second with an optional K, M or G \
             (powers of 1024), e.g. 500K, 50M, 1G"
        )
    };
    let mut s = text.trim();
    s = s.strip_suffix("/s").unwrap_or(s);
    let upper = s.to_ascii_uppercase();
    let mut unit = upper.as_str();
    unit = unit.strip_suffix("IB").map_or(unit, |u| u);
    unit = unit.strip_suffix('B').unwrap_or(unit);
    let (digits, factor) = match unit.chars().last() {
        Some('K') => (&unit[..unit.len() - 1], 1u64 << 10),
        Some('M') => (&unit[..unit.len() - 1], 1 << 20),
        Some('G') => (&unit[..unit.len() - 1], 1 << 30),
        _ => (unit, 1),
    };
    let number: f64 = digits.trim().parse().map_err(|_| usage())?;
    if !number.is_finite() || number < 0.0 {
        return Err(usage());
    }
    let rate = (number * factor as f64).round();
    if rate == 0.0 {
        return Ok(None);
    }
    if rate > u64::MAX as f64 / 2.0 {
        return Err(usage());
    }
    Ok(Some(rate as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Virtual seconds that writing `total` bytes in `chunk`-sized pieces takes.
    async fn seconds_for(limiter: &RateLimiter, total: usize, chunk: usize) -> f64 {
        let start = Instant::now();
        let mut left = total;
        while left > 0 {
            let n = left.min(chunk);
            limiter.acquire(n).await;
            left -= n;
        }
        start.elapsed().as_secs_f64()
    }

    #[tokio::test(start_paused = true)]
    async fn ten_megabytes_at_one_megabyte_per_second_take_ten_seconds() {
        let limiter = RateLimiter::new(1 << 20);
        let secs = seconds_for(&limiter, 10 << 20, MAX_CHUNK).await;
        // The bucket starts full (a tenth of a second's worth), so a little under 10 s.
        assert!((9.8..=10.05).contains(&secs), "took {secs} s");
    }

    #[tokio::test(start_paused = true)]
    async fn one_large_acquire_costs_its_size() {
        let limiter = RateLimiter::new(1000);
        let secs = seconds_for(&limiter, 5100, 5100).await;
        assert!((4.99..=5.01).contains(&secs), "took {secs} s");
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_bucket_saves_up_only_its_burst() {
        let limiter = RateLimiter::new(1 << 20);
        tokio::time::sleep(Duration::from_secs(60)).await;
        let secs = seconds_for(&limiter, 2 << 20, MAX_CHUNK).await;
        assert!((1.85..=2.0).contains(&secs), "took {secs} s");
    }

    #[tokio::test(start_paused = true)]
    async fn tasks_sharing_a_bucket_share_its_rate() {
        let limiter = std::sync::Arc::new(RateLimiter::new(1 << 20));
        let start = Instant::now();
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let limiter = limiter.clone();
                tokio::spawn(async move { seconds_for(&limiter, 1 << 20, 16 * 1024).await })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let secs = start.elapsed().as_secs_f64();
        assert!((3.8..=4.1).contains(&secs), "took {secs} s");
    }

    #[tokio::test(start_paused = true)]
    async fn the_writer_task_sends_at_the_limit() {
        let limiter = std::sync::Arc::new(RateLimiter::new(1 << 20));
        let (tx, writer) = crate::framed::spawn_limited_writer(
            tokio::io::sink(),
            64,
            Duration::from_secs(3600),
            Some(limiter),
        );
        let start = Instant::now();
        for i in 0..40u64 {
            let message = ferry_proto::Message::Data {
                index: 0,
                offset: i << 18,
                bytes: bytes::Bytes::from(vec![7u8; 1 << 18]),
            };
            tx.send(message).await.unwrap();
        }
        drop(tx);
        writer.await.unwrap().unwrap();
        let secs = start.elapsed().as_secs_f64();
        // 10 MiB of data (plus frame headers) at 1 MiB/s.
        assert!((9.8..=10.1).contains(&secs), "took {secs} s");
    }

    #[test]
    fn parses_rates() {
        assert_eq!(parse_rate("500K"), Ok(Some(500 << 10)));
        assert_eq!(parse_rate("50M"), Ok(Some(50 << 20)));
        assert_eq!(parse_rate("1G"), Ok(Some(1 << 30)));
        assert_eq!(parse_rate("1.5m"), Ok(Some(3 << 19)));
        assert_eq!(parse_rate("10MiB/s"), Ok(Some(10 << 20)));
        assert_eq!(parse_rate("4096"), Ok(Some(4096)));
        assert_eq!(parse_rate("0"), Ok(None));
        for bad in ["", "fast", "-1M", "1T", "M"] {
            assert!(parse_rate(bad).is_err(), "{bad} accepted");
        }
    }
}
