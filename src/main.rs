//! `ferry`: parse the command line, set up logging, call the engine, exit with its code.

mod args;
mod capabilities;
mod config;
mod demo;
mod filters;
mod manifests;
mod pairing;
mod privileges;
mod probe_space;

use std::io::{IsTerminal, Write};
use std::process::ExitCode as ProcessExit;

use clap::FromArgMatches;
use ferry_engine::{ExitCode, Side};

use args::{Cli, Command};
use privileges::Identity;

fn main() -> ProcessExit {
    let cli = match args::command()
        .try_get_matches()
        .and_then(|matches| Cli::from_arg_matches(&matches))
    {
        Ok(cli) => cli,
        Err(e) => return clap_exit(&e),
    };
    init_logging(&cli);
    raise_open_file_limit();
    let bound = match before_runtime(&cli) {
        Ok(bound) => bound,
        Err((e, code)) => {
            eprintln!("ferry: {e:#}");
            return ProcessExit::from(code.code());
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("ferry-io")
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("ferry: cannot start the runtime: {e}");
            return ProcessExit::from(ExitCode::FileIo.code());
        }
    };
    let code = runtime.block_on(run(cli, bound));
    // Dropping the runtime would wait for every blocking task still running, however
    // long: after a signal, a session's work stops within a step (its stop flag is set
    // as the session is dropped), and this bounds the wait for anything that does not.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    ProcessExit::from(code.code())
}

/// Prints clap's help, version or usage error. Help and version exit 0; a usage error
/// exits 1 (usage) as Ferry's own usage errors do, not clap's 2, which is Ferry's
/// "protocol version mismatch".
fn clap_exit(e: &clap::Error) -> ProcessExit {
    let _ = e.print();
    if e.use_stderr() {
        ProcessExit::from(ExitCode::Usage.code())
    } else {
        ProcessExit::from(ExitCode::Ok.code())
    }
}

/// What must happen while the process is still one thread (credentials are per thread,
/// see `privileges`): `serve` reads its TLS files and binds its port, which may need root;
/// then serve, push and pull take on the asked-for groups, `--run-as` identity and kept
/// capabilities, raise what they were permitted (see `capabilities`), say what they cannot
/// do with it, and check that their volumes or source are usable as that identity. All
/// later threads inherit it.
fn before_runtime(cli: &Cli) -> Result<Option<ferry_engine::Bound>, (anyhow::Error, ExitCode)> {
    let usage = |e: anyhow::Error| (e, ExitCode::Usage);
    match &cli.command {
        Command::Serve(args) => {
            let config = config::serve_config(args).map_err(usage)?;
            let identity = Identity::from_args(&args.privileges).map_err(usage)?;
            let bound = ferry_engine::bind(&config).map_err(|e| {
                let code = e.exit;
                (anyhow::Error::new(e), code)
            })?;
            identity.apply().map_err(usage)?;
            // Every volume can be pulled from; writable ones also receive pushes.
            let mut sides = vec![Side::Source];
            if config.volumes.iter().any(|v| !v.read_only) {
                sides.insert(0, Side::Target);
            }
            capabilities::raise_effective(&sides);
            capabilities::warn_up_front(&sides, cli.quiet);
            if identity.is_requested() {
                privileges::check_revocations(&config).map_err(usage)?;
                for export in &config.volumes {
                    let label = format!("volume {}:", export.name);
                    privileges::check_access(&label, &export.path, !export.read_only)
                        .map_err(usage)?;
                }
            }
            Ok(Some(bound))
        }
        Command::Push(args) => {
            let identity = Identity::from_args(&args.transfer.privileges).map_err(usage)?;
            identity.apply().map_err(usage)?;
            capabilities::raise_effective(&[Side::Source]);
            capabilities::warn_up_front(&[Side::Source], cli.quiet);
            if identity.is_requested() {
                privileges::check_access("source", &args.src, false).map_err(usage)?;
            }
            Ok(None)
        }
        Command::Pull(args) => {
            let identity = Identity::from_args(&args.transfer.privileges).map_err(usage)?;
            identity.apply().map_err(usage)?;
            capabilities::raise_effective(&[Side::Target]);
            capabilities::warn_up_front(&[Side::Target], cli.quiet);
            if identity.is_requested() && args.dest.exists() {
                privileges::check_access("destination", &args.dest, true).map_err(usage)?;
            }
            Ok(None)
        }
        _ => Ok(None),
    }
}

async fn run(cli: Cli, bound: Option<ferry_engine::Bound>) -> ExitCode {
    let result = match &cli.command {
        Command::Certs(args) => ferry_net::generate(&args.out, &args.server_names)
            .map(|()| {
                println!("wrote {0}/server and {0}/client", args.out.display());
                ExitCode::Ok
            })
            .map_err(|e| anyhow::Error::new(e).context("ferry certs")),
        Command::Serve(args) => match config::serve_config(args) {
            Ok(config) => {
                let pair = bound
                    .as_ref()
                    .and_then(|bound| bound.join_code())
                    .map(|(code, names)| (code, names.first().cloned()));
                let volume = config.volumes.first().map(|export| export.name.clone());
                let ready = |addr: std::net::SocketAddr| {
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "listening {addr}");
                    if let Some((code, name)) = &pair {
                        let _ = write!(
                            out,
                            "{}",
                            pairing::pair_command(volume.as_deref(), addr, name, code, args)
                        );
                    }
                    let _ = out.flush();
                };
                match bound {
                    Some(bound) => {
                        ferry_engine::serve_bound(config, bound, shutdown_signal(), ready).await
                    }
                    None => ferry_engine::serve(config, shutdown_signal(), ready).await,
                }
                .map_err(anyhow::Error::new)
            }
            Err(e) => return usage(e),
        },
        Command::Push(args) => match config::push_config(args, cli.quiet) {
            Ok(config) => {
                if let Err(code) = pairing::pair_first(&config.route, cli.quiet).await {
                    return code;
                }
                let summary = ferry_engine::push(config, shutdown_signal()).await;
                if let Some(path) = &args.transfer.summary_file {
                    write_summary(path, &summary);
                }
                Ok(summary.exit)
            }
            Err(e) => return usage(e),
        },
        Command::Pull(args) => match config::pull_config(args, cli.quiet) {
            Ok(config) => {
                if let Err(code) = pairing::pair_first(&config.route, cli.quiet).await {
                    return code;
                }
                let summary = ferry_engine::pull(config, shutdown_signal()).await;
                if let Some(path) = &args.transfer.summary_file {
                    write_summary(path, &summary);
                }
                Ok(summary.exit)
            }
            Err(e) => return usage(e),
        },
        Command::Manifests(args) => manifests::run(args).map(|()| ExitCode::Ok),
        Command::Probe(args) => match config::route(&args.route) {
            Ok(route) => {
                if let Err(code) = pairing::pair_first(&route, cli.quiet).await {
                    return code;
                }
                let (mut hops, mut code) = ferry_engine::probe(&route).await;
                if let Some(src) = &args.source {
                    let hop = match code {
                        ExitCode::Ok => {
                            let (hop, space) =
                                probe_space::space_hop(route, src, args.delete).await;
                            code = space;
                            hop
                        }
                        _ => probe_space::not_reached(),
                    };
                    hops.push(hop);
                }
                for hop in hops {
                    println!("{hop}");
                }
                Ok(code)
            }
            Err(e) => return usage(e),
        },
        Command::Demo(args) => demo::run(args.keep).await,
        Command::Completions(args) => {
            let mut command = args::command();
            clap_complete::generate(args.shell, &mut command, "ferry", &mut std::io::stdout());
            Ok(ExitCode::Ok)
        }
        Command::Man => clap_mangen::Man::new(args::command())
            .render(&mut std::io::stdout())
            .map(|()| ExitCode::Ok)
            .map_err(|e| anyhow::anyhow!("cannot write the manual page: {e}")),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            let code = e
                .chain()
                .find_map(|cause| cause.downcast_ref::<ferry_engine::EngineError>())
                .map(|e| e.exit)
                .unwrap_or(ExitCode::Usage);
            eprintln!("ferry: {e:#}");
            code
        }
    }
}

/// `--summary-file`: the `summary` event as one JSON line (a pod's termination message).
/// A failure to write it is reported but does not change the push's exit code.
fn write_summary(path: &std::path::Path, summary: &ferry_engine::Summary) {
    let written = serde_json::to_value(summary)
        .map(|json| json.to_string())
        .map_err(std::io::Error::other)
        .and_then(|json| std::fs::write(path, json + "\n"));
    if let Err(e) = written {
        eprintln!("ferry: cannot write the summary to {}: {e}", path.display());
    }
}

fn usage(e: anyhow::Error) -> ExitCode {
    eprintln!("ferry: {e:#}");
    ExitCode::Usage
}

/// Resolves on SIGINT or SIGTERM (a pod being deleted). The handlers are installed
/// before this returns, so a signal that arrives as soon as `serve` says it is listening
/// is not lost to the default action.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let interrupt = signal(SignalKind::interrupt());
    let terminate = signal(SignalKind::terminate());
    async move {
        match (interrupt, terminate) {
            (Ok(mut interrupt), Ok(mut terminate)) => {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                }
            }
            _ => std::future::pending().await,
        }
    }
}

/// Files in flight each hold their directory open; lift the soft limit to the hard one
/// (as most servers do) so a wide window never runs out of descriptors.
fn raise_open_file_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, limit) {
            tracing::debug!("cannot raise the open-file limit: {e}");
        }
    }
}

fn init_logging(cli: &Cli) {
    let default = match (cli.quiet, cli.verbose, &cli.command) {
        (true, _, _) => "error",
        (_, 0, Command::Serve(_)) => "info",
        (_, 0, _) => "warn",
        (_, 1, _) => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colours only on a terminal: a pod's log or a file gets plain lines.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}
