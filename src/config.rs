//! Validated configuration: raw arguments become engine configs, or a usage error that
//! says what was wrong and what to type instead.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use ferry_engine::{
    Export, Output, PrivilegeReport, PullConfig, PushConfig, Route, ServeConfig, ServerIdentity,
    Side,
};
use ferry_net::pairing::digest::parse_fingerprint;
use ferry_net::pairing::state;
use ferry_proto::SessionOptions;

use crate::args::{PullArgs, PushArgs, RouteArgs, ServeArgs, TransferArgs};

/// A parsed `ferry://HOST[:PORT]/VOLUME`.
#[derive(Debug, PartialEq, Eq)]
pub struct TargetUrl {
    pub host: String,
    pub port: u16,
    pub volume: String,
}

/// The port of an OpenShift route, used when the URL names none.
const DEFAULT_PORT: u16 = 443;

pub fn parse_target(url: &str) -> Result<TargetUrl> {
    let usage = "expected ferry://HOST:PORT/VOLUME, e.g. ferry://dvm-app.apps.example.com:443/data";
    let Some(rest) = url.strip_prefix("ferry://") else {
        bail!("target {url:?} is not a ferry:// URL; {usage}");
    };
    let Some((authority, volume)) = rest.split_once('/') else {
        bail!("target {url:?} names no volume; {usage}");
    };
    if volume.is_empty() || volume.contains('/') {
        bail!("target {url:?}: the volume must be one non-empty name; {usage}");
    }
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let Some((host, after)) = bracketed.split_once(']') else {
            bail!("target {url:?}: unclosed '[' in the host; {usage}");
        };
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        bail!("target {url:?} names no host; {usage}");
    }
    let port = match port {
        Some(port) => port
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .with_context(|| {
                format!("target {url:?}: port {port:?} is not a number from 1 to 65535")
            })?,
        None => DEFAULT_PORT,
    };
    Ok(TargetUrl {
        host: host.to_string(),
        port,
        volume: volume.to_string(),
    })
}

/// The route to a target: URL, TLS directory, SNI name and proxy (explicit or from the
/// environment, filtered by the no-proxy rules).
pub fn route(args: &RouteArgs) -> Result<Route> {
    let target = parse_target(&args.target)?;
    let explicit = match (&args.proxy, &args.proxy_file) {
        (Some(_), Some(file)) => bail!(
            "--proxy (or FERRY_PROXY) and --proxy-file {} both name the proxy; give one \
             (--proxy-file keeps a password out of `ps`)",
            file.display()
        ),
        (Some(proxy), None) => Some(proxy.expose().to_owned()),
        (None, Some(file)) => Some(proxy_file(file)?),
        (None, None) => None,
    };
    let proxy = ferry_net::choose_proxy(
        explicit.as_deref(),
        args.no_proxy.as_deref(),
        &target.host,
        target.port,
        |key| std::env::var(key).ok(),
    )?;
    let (tls_dir, join) = crate::pairing::credentials(args, &target)?;
    Ok(Route {
        server_name: args
            .server_name
            .clone()
            .unwrap_or_else(|| target.host.clone()),
        host: target.host,
        port: target.port,
        volume: target.volume,
        proxy,
        tls_dir,
        join,
        connect_timeout: Duration::from_secs(args.connect_timeout.max(1)),
    })
}

/// `--proxy-file FILE`: the proxy URL, the file's one line with surrounding whitespace
/// trimmed. An empty or unreadable file is an error, not "no proxy" (`--proxy ""` says
/// that): a secret that failed to mount must not send the traffic around the proxy.
/// Errors never quote the file's content; a file every user may read gets a warning when
/// the URL holds a password.
fn proxy_file(path: &Path) -> Result<String> {
    let shown = path.display();
    let bytes = std::fs::read(path).with_context(|| {
        format!("cannot read --proxy-file {shown}; it should hold the proxy URL, http://USER:PASSWORD@HOST:PORT")
    })?;
    let Ok(text) = String::from_utf8(bytes) else {
        bail!("--proxy-file {shown} is not UTF-8 text; it should hold the proxy URL, http://USER:PASSWORD@HOST:PORT");
    };
    let url = text.trim();
    if url.is_empty() {
        bail!("--proxy-file {shown} is empty; it should hold the proxy URL, http://USER:PASSWORD@HOST:PORT (for no proxy, give --proxy \"\")");
    }
    if url.lines().count() > 1 {
        bail!("--proxy-file {shown} holds more than one line; it should hold only the proxy URL");
    }
    let parsed =
        ferry_net::ProxyUrl::parse(url).with_context(|| format!("--proxy-file {shown}"))?;
    let world_readable = std::fs::metadata(path)
        .map(|meta| std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o004 != 0)
        .unwrap_or(false);
    if world_readable && parsed.has_credentials() {
        eprintln!(
            "ferry: warning: --proxy-file {shown} holds a proxy password and every user can read it; chmod o-r it"
        );
    }
    Ok(url.to_owned())
}

/// `--bwlimit RATE` in bytes per second; `None` for no limit.
fn bwlimit(rate: Option<&str>) -> Result<Option<u64>> {
    match rate {
        Some(rate) => ferry_engine::parse_rate(rate).map_err(anyhow::Error::msg),
        None => Ok(None),
    }
}

/// `quiet`: `-q` was given, so no live line unless `--progress` asks for it.
pub fn push_config(args: &PushArgs, quiet: bool) -> Result<PushConfig> {
    let route = route(&args.route)?;
    if !args.src.is_dir() && !is_device_or_image(&args.src) {
        bail!(
            "source {} is not a directory, a block device or a disk image file; give the directory whose contents the volume should hold, or the device or image to sync onto a block volume",
            args.src.display()
        );
    }
    let transfer = transfer(&args.transfer, "push", quiet)?;
    Ok(PushConfig {
        src: args.src.clone(),
        route,
        options: transfer.options,
        output: transfer.output,
        heartbeat: transfer.heartbeat,
        retries: args.transfer.retries,
        progress: transfer.progress,
        bwlimit: transfer.bwlimit,
        filter: transfer.filter,
        privileges: Some(PrivilegeReport::current(Side::Source)),
        streams: args.transfer.streams,
    })
}

/// A block device or a regular file (a disk image): pushed block by block.
fn is_device_or_image(path: &std::path::Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(path)
        .map(|m| m.file_type().is_block_device() || m.is_file())
        .unwrap_or(false)
}

/// `quiet` as for [`push_config`].
pub fn pull_config(args: &PullArgs, quiet: bool) -> Result<PullConfig> {
    let route = route(&args.route)?;
    let transfer = transfer(&args.transfer, "pull", quiet)?;
    Ok(PullConfig {
        dest: args.dest.clone(),
        route,
        options: SessionOptions {
            pull: true,
            ..transfer.options
        },
        output: transfer.output,
        heartbeat: transfer.heartbeat,
        retries: args.transfer.retries,
        progress: transfer.progress,
        bwlimit: transfer.bwlimit,
        filter: transfer.filter,
        privileges: Some(PrivilegeReport::current(Side::Target)),
        streams: args.transfer.streams,
    })
}

/// What push and pull validate alike.
struct Transfer {
    options: SessionOptions,
    output: Output,
    heartbeat: Duration,
    progress: bool,
    bwlimit: Option<u64>,
    filter: ferry_proto::Filter,
}

fn transfer(args: &TransferArgs, command: &str, quiet: bool) -> Result<Transfer> {
    Ok(Transfer {
        options: SessionOptions {
            delete: args.delete,
            dry_run: args.dry_run,
            checksum: args.checksum,
            probe: false,
            fsync: args.fsync,
            itemize: args.itemize_changes,
            delete_excluded: args.delete_excluded,
            compress: args.compress,
            pull: false,
            block: false,
            no_space_check: args.no_space_check,
            inplace: args.inplace,
            // Set by push and pull from `--streams` (a block session never asks).
            streams: false,
        },
        output: if args.json {
            Output::Json
        } else {
            Output::Text
        },
        heartbeat: Duration::from_secs(args.heartbeat.max(1)),
        progress: args.progress || (!args.json && !quiet && std::io::stderr().is_terminal()),
        bwlimit: bwlimit(args.bwlimit.as_deref())?,
        filter: crate::filters::build(args, command)?,
    })
}

/// `--volume NAME=PATH[:ro]`.
fn export(spec: &str) -> Result<Export> {
    let Some((name, path)) = spec.split_once('=') else {
        bail!("--volume {spec:?} is not NAME=PATH, e.g. --volume data=/mnt/data (or data=/mnt/data:ro to export it read-only)");
    };
    let (path, read_only) = match path.strip_suffix(":ro") {
        Some(path) => (path, true),
        None => (path, false),
    };
    if name.is_empty() || name.contains('/') || path.is_empty() {
        bail!("--volume {spec:?}: NAME must be a non-empty name without '/', PATH a directory");
    }
    Ok(Export {
        name: name.to_string(),
        path: PathBuf::from(path),
        read_only,
    })
}

pub fn serve_config(args: &ServeArgs) -> Result<ServeConfig> {
    let listen: SocketAddr = args.listen.parse().with_context(|| {
        format!(
            "--listen {:?} is not ADDR:PORT, e.g. 0.0.0.0:6443 or [::]:6443",
            args.listen
        )
    })?;
    let volumes = args
        .volumes
        .iter()
        .map(|spec| export(spec))
        .collect::<Result<Vec<_>>>()?;
    let identity = match &args.tls_dir {
        Some(dir) => ServerIdentity::Dir(dir.clone()),
        None => {
            let is_root = rustix::process::geteuid().is_root();
            let dir = match &args.state_dir {
                Some(dir) => dir.clone(),
                None => state::default_state_dir(is_root, |key| std::env::var(key).ok())
                    .context("no --tls-dir, and neither HOME nor XDG_STATE_HOME is set for the state directory: give --state-dir DIR (or --tls-dir)")?,
            };
            ServerIdentity::State {
                dir,
                names: args.server_names.clone(),
            }
        }
    };
    let revoke = args
        .revoke
        .iter()
        .map(|text| {
            parse_fingerprint(text).with_context(|| {
                format!("--revoke {text:?} is not a SHA-256 fingerprint: give the 64 hex digits logged at enrollment (sha256:...)")
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(ServeConfig {
        listen,
        identity,
        pair_ttl: if args.pair {
            Some(crate::pairing::duration(&args.pair_ttl)?)
        } else {
            None
        },
        revoke,
        revoked_file: args.revoked_file.clone(),
        volumes,
        once: args.once,
        heartbeat: Duration::from_secs(args.heartbeat.max(1)),
        fsync: args.fsync,
        metrics_listen: match &args.metrics_listen {
            Some(addr) => Some(addr.parse().with_context(|| {
                format!("--metrics-listen {addr:?} is not ADDR:PORT, e.g. 0.0.0.0:9100")
            })?),
            None => None,
        },
        bwlimit: bwlimit(args.bwlimit.as_deref())?,
        max_streams: args.max_streams,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_target_urls() {
        let t = parse_target("ferry://host.example:8443/data").unwrap();
        assert_eq!(
            t,
            TargetUrl {
                host: "host.example".into(),
                port: 8443,
                volume: "data".into()
            }
        );
        let t = parse_target("ferry://[::1]:9/v").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 9));
        assert_eq!(parse_target("ferry://h/v").unwrap().port, 443);
        for bad in [
            "http://h:1/v",
            "ferry://h:1",
            "ferry://h:1/",
            "ferry://h:x/v",
            "ferry://:1/v",
            "ferry://h:1/a/b",
            "ferry://h:0/v",
        ] {
            assert!(parse_target(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn parses_volume_exports_with_an_optional_read_only_suffix() {
        let e = export("data=/mnt/data").unwrap();
        assert_eq!((e.name.as_str(), e.read_only), ("data", false));
        assert_eq!(e.path, PathBuf::from("/mnt/data"));
        let e = export("logs=/mnt/a=b:ro").unwrap();
        assert_eq!((e.name.as_str(), e.read_only), ("logs", true));
        assert_eq!(e.path, PathBuf::from("/mnt/a=b"));
        for bad in ["data", "=/x", "a/b=/x", "data=", "data=:ro"] {
            assert!(export(bad).is_err(), "{bad} accepted");
        }
    }
}
