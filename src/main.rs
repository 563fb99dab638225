//! `headwater`: the command line and the daemon's edge. Exit codes:
//! 0 success, 1 a runtime failure, 2 a configuration problem.

mod check;
mod config;
mod log_cmd;
mod logging;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::logging::LogFormat;

pub const EXIT_RUNTIME: u8 = 1;
pub const EXIT_CONFIG: u8 = 2;

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
        env = "HEADWATER_CONFIG"
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
            tracing::error!(
                sources = config.sources.len(),
                sinks = config.sinks.len(),
                "the pipeline runtime is not built yet; `headwater check` validates this configuration"
            );
            Err(ExitCode::from(EXIT_RUNTIME))
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
