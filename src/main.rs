//! `ferry`: parse the command line, set up logging, call the engine, exit with its code.

mod args;
mod config;
mod demo;

use std::io::Write;
use std::process::ExitCode as ProcessExit;

use clap::Parser;
use ferry_engine::ExitCode;

use args::{Cli, Command};

fn main() -> ProcessExit {
    let cli = Cli::parse();
    init_logging(&cli);
    raise_open_file_limit();
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
    let code = runtime.block_on(run(cli));
    ProcessExit::from(code.code())
}

async fn run(cli: Cli) -> ExitCode {
    let result = match &cli.command {
        Command::Certs(args) => ferry_net::generate(&args.out, &args.server_names)
            .map(|()| {
                println!("wrote {0}/server and {0}/client", args.out.display());
                ExitCode::Ok
            })
            .map_err(|e| anyhow::Error::new(e).context("ferry certs")),
        Command::Serve(args) => match config::serve_config(args) {
            Ok(config) => ferry_engine::serve(config, shutdown_signal(), |addr| {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "listening {addr}");
                let _ = out.flush();
            })
            .await
            .map_err(anyhow::Error::new),
            Err(e) => return usage(e),
        },
        Command::Push(args) => match config::push_config(args) {
            Ok(config) => Ok(ferry_engine::push(config, shutdown_signal()).await.exit),
            Err(e) => return usage(e),
        },
        Command::Probe(args) => match config::route(&args.route) {
            Ok(route) => {
                let (hops, code) = ferry_engine::probe(&route).await;
                for hop in hops {
                    println!("{hop}");
                }
                Ok(code)
            }
            Err(e) => return usage(e),
        },
        Command::Demo(args) => demo::run(args.keep).await,
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
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}
