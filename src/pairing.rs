//! Pairing as the command line sees it: which client certificates a route uses
//! (`--tls-dir`, or the peer directory `--join` fills), `--pair-ttl`, the pairing run
//! before push, pull and probe, and the one command `serve --pair` prints.
//!
//! The formats and checks are `ferry_net::pairing`'s, the exchange `ferry_engine::join`'s.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use ferry_engine::ExitCode;
use ferry_net::pairing::{peers, JoinCode};

use crate::args::{self, RouteArgs};
use crate::config::TargetUrl;

/// Which client certificates to use: `--tls-dir`, or the peer directory of HOST:PORT,
/// filled by `--join CODE` first when given.
pub fn credentials(args: &RouteArgs, target: &TargetUrl) -> Result<(PathBuf, Option<JoinCode>)> {
    if let Some(dir) = &args.tls_dir {
        return Ok((dir.clone(), None));
    }
    let root = peers::peers_root(|key| std::env::var(key).ok()).context(
        "neither HOME nor XDG_CONFIG_HOME is set, so there is no place for paired certificates: set one, or give --tls-dir",
    )?;
    let dir = root.join(peers::peer_dir_name(&target.host, target.port));
    if let Some(code) = &args.join {
        let code = code
            .expose()
            .parse::<JoinCode>()
            .map_err(|e| anyhow::anyhow!("--join: this is not a join code: {e}"))?;
        return Ok((dir, Some(code)));
    }
    if !peers::is_paired(&dir) {
        bail!(
            "no certificates for {}:{} (looked in {}): pair with it once (run `ferry serve --pair` there, then give the --join CODE it prints here), or give --tls-dir with tls.crt, tls.key and ca.crt",
            target.host,
            target.port,
            dir.display()
        );
    }
    Ok((dir, None))
}

/// The longest pairing window.
const MAX_PAIR_TTL_S: u64 = 24 * 3600;

/// `--pair-ttl`: a number with `s`, `m` or `h` (a bare number is seconds), at most 24h.
pub fn duration(text: &str) -> Result<Duration> {
    let usage =
        || format!("--pair-ttl {text:?} is not a duration; give a number with s, m or h, e.g. 15m");
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let number: u64 = number.parse().ok().with_context(usage)?;
    let seconds = match unit {
        "s" => number,
        "m" => number.checked_mul(60).with_context(usage)?,
        "h" => number.checked_mul(3600).with_context(usage)?,
        _ => bail!(usage()),
    };
    if seconds == 0 {
        bail!("--pair-ttl must be at least 1s");
    }
    // A join code is a secret on a screen: it should not stay good for days.
    if seconds > MAX_PAIR_TTL_S {
        bail!("--pair-ttl {text} is longer than 24h; pair within a day (run `serve --pair` again for a new code)");
    }
    Ok(Duration::from_secs(seconds))
}

/// `--join CODE`: pairs with the route's server before the command runs (and exits with
/// the failure's code if it fails). Says where the certificate went, unless `quiet`.
pub async fn pair_first(route: &ferry_engine::Route, quiet: bool) -> Result<(), ExitCode> {
    let Some(code) = &route.join else {
        return Ok(());
    };
    match ferry_engine::join(route, code).await {
        Ok(joined) => {
            if !quiet {
                eprintln!(
                    "ferry: paired with {}:{}: this host's certificate ({}) is in {}; later runs to {}:{} need no --join",
                    route.host,
                    route.port,
                    joined.fingerprint,
                    joined.dir.display(),
                    route.host,
                    route.port
                );
            }
            Ok(())
        }
        Err(e) => {
            eprintln!("ferry: pairing failed: {}", e.message);
            Err(e.exit)
        }
    }
}

/// What `serve --pair` prints after its `listening` line: the one command to run on the
/// other host, with the join code (the only place the code's secret is ever shown).
pub fn pair_command(
    volume: Option<&str>,
    addr: std::net::SocketAddr,
    first_name: &Option<String>,
    code: &str,
    args: &args::ServeArgs,
) -> String {
    let host = match (addr.ip().is_unspecified(), first_name) {
        (true, Some(name)) => name.clone(),
        _ => match addr.ip() {
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        },
    };
    let volume = volume.unwrap_or("VOLUME");
    format!(
        "pairing: on the other host, run this once within {} (pull and probe take --join too):\n  ferry push SRC ferry://{host}:{}/{volume} --join {code}\n",
        args.pair_ttl,
        addr.port()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pairing_durations() {
        assert_eq!(duration("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(duration("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(duration("1s").unwrap(), Duration::from_secs(1));
        assert_eq!(duration("30").unwrap(), Duration::from_secs(30));
        assert_eq!(duration("24h").unwrap(), Duration::from_secs(86400));
        for bad in [
            "",
            "0s",
            "m",
            "5d",
            "-1m",
            "1.5m",
            "99999999999999999999h",
            "25h",
            "18446744073709551615s",
        ] {
            assert!(duration(bad).is_err(), "{bad} accepted");
        }
    }
}
