//! `headwater`: the command line and the daemon's edge. Exit codes:
//! 0 success, 1 a runtime failure, 2 a configuration problem.

mod log_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use tokio_util::sync::CancellationToken;

use headwater::config::Config;
use headwater::logging::{self, LogFormat};
use headwater::{check, runtime, EXIT_CONFIG, EXIT_RUNTIME};

#[derive(Debug, Parser)]
#[command(
    name = "headwater",
    version,
    about = "Change-data-capture from PostgreSQL and MySQL into a durable log, Kafka, Parquet and search"
)]
struct Cli {
    /// Log lines as human-readable text or JSON. The level comes from
    /// HEADWATER_LOG or RUST_LOG (default `info`).
    #[arg(long, value_enum, default_value = "human", global = true)]
    log_format: LogFormat,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Args)]
struct ConfigArg {
    /// The configuration file.
    #[arg(
        short = 'c',
        long = "config",
        default_value = "./headwater.toml",
        env = "HEADWATER_CONFIG",
        global = true
    )]
    file: PathBuf,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon: sources → transforms → log → sinks.
    Run(ConfigArg),
    /// Validate the configuration and probe every endpoint and prerequisite.
    Check(ConfigArg),
    /// Inspect the embedded log.
    Log {
        #[command(flatten)]
        config: ConfigArg,
        #[command(subcommand)]
        command: log_cmd::LogCommand,
    },
}

fn load(arg: &ConfigArg) -> Result<Config, ExitCode> {
    Config::load(&arg.file).map_err(|e| {
        eprint!("{e}");
        ExitCode::from(EXIT_CONFIG)
    })
}

fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("headwater")
        .build()
        .map_err(|e| {
            eprintln!("cannot start the async runtime: {e}");
            ExitCode::from(EXIT_RUNTIME)
        })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.log_format);
    match run(cli.command) {
        Ok(code) | Err(code) => code,
    }
}

fn run(command: Command) -> Result<ExitCode, ExitCode> {
    match command {
        Command::Check(arg) => {
            let config = load(&arg)?;
            Ok(runtime()?.block_on(check::run(&arg.file, &config)))
        }
        Command::Run(arg) => {
            let config = load(&arg)?;
            runtime()?.block_on(async {
                let shutdown = CancellationToken::new();
                tokio::spawn(cancel_on_signal(shutdown.clone()));
                runtime::run(config, &arg.file, shutdown)
                    .await
                    .map_err(|e| {
                        tracing::error!(error = %e, "headwater could not start");
                        ExitCode::from(EXIT_RUNTIME)
                    })
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Log { config, command } => {
            let config = load(&config)?;
            log_cmd::run(command, &config.data_dir).map_err(|e| {
                eprintln!("{e:#}");
                ExitCode::from(EXIT_RUNTIME)
            })?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// SIGTERM or SIGINT starts an orderly shutdown; a second one exits at once
/// (nothing is lost: what was not committed is delivered again).
async fn cancel_on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop headwater with SIGKILL");
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = int.recv() => tracing::info!("SIGINT received"),
    }
    shutdown.cancel();
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::warn!("second signal: exiting without waiting");
    std::process::exit(i32::from(EXIT_RUNTIME));
}
