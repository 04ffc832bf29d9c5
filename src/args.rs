//! The command line as typed: raw clap arguments, before validation.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "ferry",
    version,
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
    /// Run the target: receive pushes into the named volumes.
    Serve(ServeArgs),
    /// Run the source: make a target volume an exact copy of a local directory.
    Push(PushArgs),
    /// Run a push end to end on loopback with throwaway certificates and a sample tree.
    Demo(DemoArgs),
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
    #[arg(long)]
    pub listen: String,
    /// Directory with tls.crt, tls.key and ca.crt (the server/ half of `ferry certs`).
    #[arg(long)]
    pub tls_dir: PathBuf,
    /// A volume to serve, NAME=PATH (repeatable).
    #[arg(long = "volume", required = true)]
    pub volumes: Vec<String>,
    /// Exit after the first push session ends, with that session's exit code.
    #[arg(long)]
    pub once: bool,
}

#[derive(Args, Debug)]
pub struct PushArgs {
    /// The directory whose contents the target volume should hold.
    pub src: PathBuf,
    /// The target, ferry://HOST:PORT/VOLUME.
    pub target: String,
    /// Directory with tls.crt, tls.key and ca.crt (the client/ half of `ferry certs`).
    #[arg(long)]
    pub tls_dir: PathBuf,
    /// Name to verify in the server certificate and send as SNI (default: HOST).
    #[arg(long)]
    pub server_name: Option<String>,
    /// Delete target entries that are not in the source.
    #[arg(long)]
    pub delete: bool,
    /// Show what would change; change nothing.
    #[arg(long, short = 'n')]
    pub dry_run: bool,
    /// Compare files by content (BLAKE3 on both sides), not by size and mtime.
    #[arg(long, short = 'c')]
    pub checksum: bool,
    /// Newline-delimited JSON events on stdout; the last line is the summary.
    #[arg(long)]
    pub json: bool,
    /// Seconds allowed for TCP connect, TLS and session start together.
    #[arg(long, default_value_t = 30)]
    pub connect_timeout: u64,
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Keep the demo's directory (certs, source, target) instead of removing it.
    #[arg(long)]
    pub keep: bool,
}
