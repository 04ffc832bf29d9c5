//! The command line as typed: raw clap arguments, before validation.
//!
//! The doc comments of the arguments are clap's help text, written for a terminal: a
//! `[USER[:PASSWORD]@]` there is usage syntax, not a rustdoc link.
#![allow(rustdoc::broken_intra_doc_links)]

use std::path::PathBuf;

use clap::{Args, CommandFactory, Parser, Subcommand};

/// The command line as parsed, and as shown in help, completions and the manual page.
///
/// No option's environment value is ever shown: help names the variable only
/// (`[env: FERRY_PROXY]`). A proxy URL may hold a password, and so may whatever option
/// comes next; hiding them all keeps a new option from leaking by default.
pub fn command() -> clap::Command {
    hide_env_values(Cli::command())
}

fn hide_env_values(command: clap::Command) -> clap::Command {
    command
        .mut_args(|arg| arg.hide_env_values(true))
        .mut_subcommands(hide_env_values)
}

/// A value that may hold a credential: `Debug` never shows it.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_owned()))
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// `ferry --version`: the release and the wire protocol it speaks (both sides of a
/// migration must speak the same one).
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (protocol 6)");

#[derive(Parser, Debug)]
#[command(
    name = "ferry",
    version = VERSION,
    after_help = "Every option of serve, push, pull and probe can also be set from an environment \
variable, FERRY_ and the option's name in capitals with '-' as '_' (e.g. FERRY_TLS_DIR, \
FERRY_BWLIMIT, FERRY_DELETE=true); a flag on the command line wins over the environment.",
    about = "Moves a volume's files to another host or cluster: an rsync-style delta protocol inside mutual TLS",
    long_about = None
)]
pub struct Cli {
    /// More log output (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a fresh CA with a server and a client certificate.
    Certs(CertsArgs),
    /// Run the server: receive pushes into the named volumes, and answer pulls from them.
    Serve(ServeArgs),
    /// Run the source: make a target volume an exact copy of a local directory.
    Push(PushArgs),
    /// Run the target here: make a local directory an exact copy of a served volume.
    Pull(PullArgs),
    /// Check each hop to a target volume in order and say which one fails.
    Probe(ProbeArgs),
    /// Run a push end to end on loopback with throwaway certificates and a sample tree.
    Demo(DemoArgs),
    /// Render the Kubernetes objects of one migration (target pod, service, passthrough
    /// route, source pods, secrets, network policies) from a plan file.
    Manifests(ManifestsArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(CompletionsArgs),
    /// Print the manual page (roff) generated from these definitions.
    Man,
}

#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    pub shell: clap_complete::Shell,
}

#[derive(Args, Debug)]
pub struct CertsArgs {
    /// Directory to write server/ and client/ into (each holds tls.crt, tls.key, ca.crt).
    #[arg(long)]
    pub out: PathBuf,
    /// A DNS name or IP address the server certificate is valid for (repeatable).
    #[arg(long = "server-name", required = true)]
    pub server_names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on, e.g. 0.0.0.0:6443 (port 0 picks a free port).
    #[arg(long, env = "FERRY_LISTEN")]
    pub listen: String,
    /// Directory with tls.crt, tls.key and ca.crt (the server/ half of `ferry certs`;
    /// Kubernetes mounts it from a Secret). Without it, the server keeps its own CA and
    /// certificate in --state-dir, and peers pair with it (--pair).
    #[arg(long, env = "FERRY_TLS_DIR")]
    pub tls_dir: Option<PathBuf>,
    /// Where the server keeps its own CA and certificate when no --tls-dir is given
    /// (made on the first run, reused after). Default: $XDG_STATE_HOME/ferry or
    /// ~/.local/state/ferry; /var/lib/ferry as root. Ignored with --tls-dir.
    #[arg(long, value_name = "DIR", env = "FERRY_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// A DNS name or IP address of this server for its own certificate (repeatable;
    /// without --tls-dir). Default: the names of the last run, or on the first run this
    /// host's name, localhost and its addresses. Other names make a new certificate from
    /// the same CA, so paired peers keep working. Ignored with --tls-dir (the names are
    /// those of its tls.crt).
    #[arg(
        long = "server-name",
        value_name = "NAME",
        env = "FERRY_SERVER_NAME",
        value_delimiter = ','
    )]
    pub server_names: Vec<String>,
    /// Open a pairing window: print a command with a one-time join code for the other
    /// host (`--join CODE` on push, pull or probe), which then gets a client certificate
    /// from this server's CA. The code works once and expires after --pair-ttl; the window
    /// also closes after 3 failed proofs. Not with --tls-dir.
    #[arg(long, env = "FERRY_PAIR", conflicts_with = "tls_dir")]
    pub pair: bool,
    /// How long the join code of --pair stays valid: a number with s, m or h, e.g. 15m
    /// (at most 24h).
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "15m",
        env = "FERRY_PAIR_TTL"
    )]
    pub pair_ttl: String,
    /// Refuse the client certificate with this SHA-256 fingerprint at the handshake (as
    /// logged at its enrollment, or `openssl x509 -fingerprint -sha256`). Repeatable.
    #[arg(
        long,
        value_name = "FINGERPRINT",
        env = "FERRY_REVOKE",
        value_delimiter = ','
    )]
    pub revoke: Vec<String>,
    /// Refuse the client certificates whose fingerprints FILE lists (one per line, `#`
    /// comments; lines of the state directory's `enrolled` log work as they are). Read
    /// again when it changes. Default with the state directory: STATE_DIR/revoked, if present.
    #[arg(long, value_name = "FILE", env = "FERRY_REVOKED_FILE")]
    pub revoked_file: Option<PathBuf>,
    /// A volume to serve, NAME=PATH, or NAME=PATH:ro to export it read-only (it can be
    /// pulled from, a push to it is refused). Repeatable.
    #[arg(long = "volume", required = true, env = "FERRY_VOLUME")]
    pub volumes: Vec<String>,
    /// Exit after the first push or pull session ends, with that session's exit code.
    #[arg(long, env = "FERRY_ONCE")]
    pub once: bool,
    /// Seconds of idleness after which a heartbeat is sent, so routers and load
    /// balancers never see an idle connection. 1 to 60: a peer gives up on a connection
    /// silent for 120 s.
    #[arg(long, default_value_t = 10, env = "FERRY_HEARTBEAT",
          value_parser = clap::value_parser!(u64).range(1..=60))]
    pub heartbeat: u64,
    /// Flush every received file to stable storage before it is put in place (renamed or
    /// linked at its name), whatever the source asks.
    #[arg(long, env = "FERRY_FSYNC")]
    pub fsync: bool,
    /// Serve Prometheus metrics over plain HTTP on ADDR:PORT (GET /metrics), e.g.
    /// 0.0.0.0:9100.
    #[arg(long, value_name = "ADDR", env = "FERRY_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
    /// Read at most RATE bytes per second from all sessions together (and write at most
    /// RATE): a number with an optional K, M or G (powers of 1024), e.g. 50M; 0 = no limit.
    #[arg(long, value_name = "RATE", env = "FERRY_BWLIMIT")]
    pub bwlimit: Option<String>,
    /// The most streams (connections) a session may run over, 1 to 16, the first
    /// included; 1 takes no joined streams. A client asks with push/pull --streams.
    #[arg(long, value_name = "N", default_value_t = 8, env = "FERRY_MAX_STREAMS",
          value_parser = clap::value_parser!(u16).range(1..=16))]
    pub max_streams: u16,
    #[command(flatten)]
    pub privileges: PrivilegeArgs,
}

/// How to reach a served volume: shared by push, pull and probe.
#[derive(Args, Debug, Clone)]
pub struct RouteArgs {
    /// The served volume, ferry://HOST:PORT/VOLUME (PORT defaults to 443, a route).
    #[arg(value_name = "URL")]
    pub target: String,
    /// Directory with tls.crt, tls.key and ca.crt (the client/ half of `ferry certs`).
    /// Default: the certificates from pairing with this HOST:PORT
    /// ($XDG_CONFIG_HOME/ferry/peers/HOST_PORT or ~/.config/ferry/peers/HOST_PORT).
    #[arg(long, env = "FERRY_TLS_DIR")]
    pub tls_dir: Option<PathBuf>,
    /// Pair with the server first, with the code `ferry serve --pair` printed there: the
    /// server is accepted only if its CA is the one the code names, and its client
    /// certificate is stored for later runs to this HOST:PORT. Not with --tls-dir. The
    /// code works once and expires, but until then anyone who sees it (`ps` shows command
    /// lines to every user) can pair in its place: FERRY_JOIN keeps it off the command line.
    #[arg(
        long,
        value_name = "CODE",
        env = "FERRY_JOIN",
        conflicts_with = "tls_dir"
    )]
    pub join: Option<Secret>,
    /// Name to verify in the server certificate and send as SNI (default: HOST).
    #[arg(long, env = "FERRY_SERVER_NAME")]
    pub server_name: Option<String>,
    /// HTTP proxy to tunnel through, http://[USER[:PASSWORD]@]HOST:PORT (percent-encode
    /// special characters). Default: HTTPS_PROXY / https_proxy / ALL_PROXY / all_proxy;
    /// an empty value disables the proxy. A command line is visible to every user in `ps`:
    /// give a password through the environment or --proxy-file instead.
    #[arg(long, value_name = "URL", env = "FERRY_PROXY")]
    pub proxy: Option<Secret>,
    /// Read the proxy URL from FILE (its first and only line; surrounding whitespace is
    /// ignored), so the password is not on the command line. Not with --proxy.
    #[arg(long, value_name = "FILE", env = "FERRY_PROXY_FILE")]
    pub proxy_file: Option<PathBuf>,
    /// Hosts that bypass the proxy, comma-separated: `.y.com` (subdomains), `y.com` (itself
    /// and subdomains), `1.2.3.4`, `10.0.0.0/8`, `host:port`, `*` (everything).
    /// Default: NO_PROXY / no_proxy.
    #[arg(long, env = "FERRY_NO_PROXY")]
    pub no_proxy: Option<String>,
    /// Seconds allowed for TCP connect, proxy, TLS and session start together.
    #[arg(long, default_value_t = 30, env = "FERRY_CONNECT_TIMEOUT")]
    pub connect_timeout: u64,
}

#[derive(Args, Debug)]
pub struct ProbeArgs {
    #[command(flatten)]
    pub route: RouteArgs,
    /// Also check that the volume has room for this directory (the `space` hop): a dry
    /// run of `push DIR` that transfers and changes nothing; the target counts what the
    /// push would write, against its free space.
    #[arg(long, value_name = "DIR", env = "FERRY_SOURCE")]
    pub source: Option<PathBuf>,
    /// With --source: count what `push --delete` would free (nothing without --source,
    /// so that a FERRY_DELETE meant for push does not break a probe).
    #[arg(long, env = "FERRY_DELETE")]
    pub delete: bool,
}

#[derive(Args, Debug)]
pub struct PushArgs {
    /// The directory whose contents the target volume should hold.
    pub src: PathBuf,
    #[command(flatten)]
    pub route: RouteArgs,
    #[command(flatten)]
    pub transfer: TransferArgs,
}

#[derive(Args, Debug)]
pub struct PullArgs {
    #[command(flatten)]
    pub route: RouteArgs,
    /// The local directory that should hold the volume's contents (created if missing;
    /// its parent must exist).
    pub dest: PathBuf,
    #[command(flatten)]
    pub transfer: TransferArgs,
}

/// How a transfer behaves: shared by push and pull. "Source" and "target" are the sides
/// data flows from and to (for a pull, the server and this directory).
#[derive(Args, Debug)]
pub struct TransferArgs {
    /// Leave out entries matching PATTERN (rsync rules: `*`, `**`, `?`, a leading `/`
    /// anchors at the source root, a trailing `/` matches directories only). Repeatable;
    /// with --include, the first matching rule wins. Excluded entries at the target are
    /// kept by --delete unless --delete-excluded.
    #[arg(long = "exclude", value_name = "PATTERN", env = "FERRY_EXCLUDE")]
    pub exclude: Vec<String>,
    /// Keep entries matching PATTERN even if a later --exclude matches them.
    #[arg(long = "include", value_name = "PATTERN", env = "FERRY_INCLUDE")]
    pub include: Vec<String>,
    /// Read exclude patterns from FILE, one per line (`+ PATTERN` includes, `- PATTERN`
    /// excludes, `#` and `;` start comments).
    #[arg(long = "exclude-from", value_name = "FILE", env = "FERRY_EXCLUDE_FROM")]
    pub exclude_from: Vec<PathBuf>,
    /// Also copy `lost+found` at the source root (left out by default, and left alone at
    /// the target).
    #[arg(long, env = "FERRY_INCLUDE_LOST_FOUND")]
    pub include_lost_found: bool,
    /// With --delete, also delete target entries that the filters exclude.
    #[arg(long, requires = "delete", env = "FERRY_DELETE_EXCLUDED")]
    pub delete_excluded: bool,
    /// Delete target entries that are not in the source.
    #[arg(long, env = "FERRY_DELETE")]
    pub delete: bool,
    /// Show what would change; change nothing.
    #[arg(long, short = 'n', env = "FERRY_DRY_RUN")]
    pub dry_run: bool,
    /// Compress what compresses with zstd (a cheap entropy probe skips data that does
    /// not, such as media, archives and encrypted files); for slow links.
    #[arg(long, short = 'z', env = "FERRY_COMPRESS")]
    pub compress: bool,
    /// Compare files by content (BLAKE3 on both sides), not by size and mtime.
    #[arg(long, short = 'c', env = "FERRY_CHECKSUM")]
    pub checksum: bool,
    /// Write a changed file's new content into the existing file instead of a temporary
    /// copy (no room needed for a second copy; a reader may see it half updated). Without
    /// it Ferry does so only for a file whose second copy has no room on the target.
    #[arg(long, env = "FERRY_INPLACE")]
    pub inplace: bool,
    /// Newline-delimited JSON events on stdout (schema in docs/events.md); the last line
    /// is the summary.
    #[arg(long, env = "FERRY_JSON")]
    pub json: bool,
    /// Show the live progress line on stderr even when it is not a terminal (by default
    /// it is shown only on a terminal, and not with --json).
    #[arg(long, env = "FERRY_PROGRESS")]
    pub progress: bool,
    /// List every change the target makes, one per line (`created`, `updated`, `meta`,
    /// `deleted`, then the path); with --json, as `change` events. --dry-run always does.
    #[arg(long, short = 'i', env = "FERRY_ITEMIZE_CHANGES")]
    pub itemize_changes: bool,
    /// Move at most RATE bytes per second (a push sends, a pull receives at most that):
    /// a number with an optional K, M or G (powers of 1024), e.g. 500K, 50M, 1G; 0 = no limit.
    #[arg(long, value_name = "RATE", env = "FERRY_BWLIMIT")]
    pub bwlimit: Option<String>,
    /// Seconds of idleness after which a heartbeat is sent, so routers and load
    /// balancers never see an idle connection (e.g. during a long scan). 1 to 60: a peer
    /// gives up on a connection silent for 120 s.
    #[arg(long, default_value_t = 10, env = "FERRY_HEARTBEAT",
          value_parser = clap::value_parser!(u64).range(1..=60))]
    pub heartbeat: u64,
    #[command(flatten)]
    pub privileges: PrivilegeArgs,
    /// Also write the summary JSON (the `summary` event) to PATH at exit, e.g. a pod's
    /// /dev/termination-log, so the pod status carries it.
    #[arg(long, value_name = "PATH", env = "FERRY_SUMMARY_FILE")]
    pub summary_file: Option<PathBuf>,
    /// Reconnect up to N times after a network failure (reset, timeout, proxy or router
    /// drop), with backoff; files already in place are not re-sent and a cut large file
    /// resumes from its verified partial. Auth, TLS, usage and no-space errors are never
    /// retried.
    #[arg(long, default_value_t = 0, env = "FERRY_RETRIES")]
    pub retries: u32,
    /// Connections to run the session over, 1 to 16 (at most what the server's
    /// --max-streams allows), or auto. 1 is one connection. With N >= 2 the extra ones
    /// join the session through the same proxy and route; a join that fails is a
    /// warning, not an error. Files are spread over joined streams from a later version:
    /// today joined streams only prove the path, and auto runs on one.
    #[arg(long, value_name = "N|auto", default_value = "auto", env = "FERRY_STREAMS",
          value_parser = ferry_engine::Streams::parse)]
    pub streams: ferry_engine::Streams,
    /// Ask the target to flush every file to stable storage before putting it in place
    /// (slower; survives a power loss of the target node).
    #[arg(long, env = "FERRY_FSYNC")]
    pub fsync: bool,
    /// Do not stop a transfer whose writes would exceed the target volume's free space
    /// before it fills the volume (the pre-flight space check), nor delete early to make
    /// room; the transfer then fails with exit 11 when the volume is full.
    #[arg(long, env = "FERRY_NO_SPACE_CHECK")]
    pub no_space_check: bool,
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Keep the demo's directory (certs, source, target) instead of removing it.
    #[arg(long)]
    pub keep: bool,
}

/// Who to run as: shared by serve, push and pull.
#[derive(Args, Debug, Clone, Default)]
pub struct PrivilegeArgs {
    /// Supplemental group ids, comma-separated (e.g. 1000,2000), for storage that grants
    /// access by group. As root, ferry sets exactly these groups before it touches a
    /// volume; as non-root, it checks that it already holds them (a pod's
    /// securityContext.supplementalGroups).
    #[arg(long, value_name = "LIST", env = "FERRY_SUPPLEMENTAL_GROUPS")]
    pub supplemental_groups: Option<String>,
    /// As root: after reading the TLS files (serve) and binding the port, become this
    /// plain user, UID[:GID] (GID defaults to UID), with only --supplemental-groups.
    #[arg(long, value_name = "UID[:GID]", env = "FERRY_RUN_AS")]
    pub run_as: Option<String>,
    /// With --run-as: keep exactly these capabilities across the change, comma-separated
    /// (dac_read_search, dac_override, chown, fowner, fsetid, mknod, setfcap, sys_admin),
    /// e.g. dac_read_search for a source that reads every file, or
    /// chown,fowner,fsetid,dac_override for a target that applies owners. All others are
    /// dropped, also from the bounding set. Without it, --run-as drops every capability.
    #[arg(
        long,
        value_name = "LIST",
        env = "FERRY_KEEP_CAPS",
        requires = "run_as"
    )]
    pub keep_caps: Option<String>,
}

#[derive(Args, Debug)]
pub struct ManifestsArgs {
    /// The migration plan (YAML or JSON): namespaces, PVC pairs, route host, image, proxy,
    /// supplemental groups, resources, privileges per side, retries. See README.
    #[arg(long)]
    pub plan: PathBuf,
    /// A `ferry certs` output directory; its server/ and client/ halves become the TLS
    /// Secrets. Without it no TLS Secrets are rendered (create them yourself).
    #[arg(long)]
    pub certs: Option<PathBuf>,
    /// Write one file per object into DIR instead of one YAML stream on stdout.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_names_the_protocol_it_speaks() {
        assert!(
            VERSION.ends_with(&format!("(protocol {})", ferry_proto::PROTOCOL_VERSION)),
            "{VERSION}"
        );
    }
}
