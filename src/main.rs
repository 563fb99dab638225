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

// With glibc's malloc the daemon's RSS under a full-speed catch-up was about
// twice its live heap (per-thread arenas, freed pages kept); jemalloc, with
// the decay settings in .cargo/config.toml, stays close to it.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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

#[derive(Debug, clap::Args)]
struct RunArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Drop this PostgreSQL source's replication slot — also one this data
    /// directory cannot prove it created — and take a new snapshot
    /// (repeatable). Never touches a slot of another database.
    #[arg(long, value_name = "SOURCE")]
    resnapshot: Vec<String>,
}

#[derive(Debug, clap::Args)]
struct ReplayArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// The archive's URL (`file:///dir`, `s3://bucket/prefix`…); S3
    /// credentials come from the parquet sink writing there, else `AWS_…`.
    #[arg(long = "from")]
    from: String,
    /// Topic globs to replay (default: every topic).
    #[arg(long, value_delimiter = ',')]
    topics: Vec<String>,
    /// Only changes committed at or after this time (RFC 3339).
    #[arg(long, value_parser = parse_time)]
    since: Option<headwater_core::Timestamp>,
    /// Only changes committed before this time (RFC 3339).
    #[arg(long, value_parser = parse_time)]
    until: Option<headwater_core::Timestamp>,
    /// Deliver to this sink of the configuration.
    #[arg(long, conflicts_with = "to_log", required_unless_present = "to_log")]
    to_sink: Option<String>,
    /// Append to the embedded log as this source's events (stop the
    /// daemon first).
    #[arg(long)]
    to_log: Option<String>,
}

fn parse_time(text: &str) -> Result<headwater_core::Timestamp, String> {
    let time = humantime::parse_rfc3339_weak(text)
        .map_err(|e| format!("`{text}` is not an RFC 3339 time like 2026-01-31T12:00:00Z: {e}"))?;
    let micros = time
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| format!("`{text}` is before 1970"))?
        .as_micros();
    i64::try_from(micros)
        .map(headwater_core::Timestamp::Micros)
        .map_err(|_| format!("`{text}` is too far in the future"))
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon: sources → transforms → log → sinks.
    Run(RunArgs),
    /// Validate the configuration and probe every endpoint and prerequisite.
    Check(ConfigArg),
    /// Read a Parquet archive back and deliver its change events again.
    Replay(ReplayArgs),
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
        Command::Run(RunArgs {
            config: arg,
            resnapshot,
        }) => {
            let mut config = load(&arg)?;
            config.request_resnapshots(&resnapshot).map_err(|e| {
                eprintln!("{e}");
                ExitCode::from(EXIT_CONFIG)
            })?;
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
        Command::Replay(args) => {
            let config = load(&args.config)?;
            let count = runtime()?.block_on(replay(&config, args)).map_err(|e| {
                eprintln!("replay failed: {e}");
                ExitCode::from(EXIT_RUNTIME)
            })?;
            eprintln!("replayed {count} change events");
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

async fn replay(config: &Config, args: ReplayArgs) -> headwater_core::Result<u64> {
    use headwater::replay;
    use headwater_sink::parquet::ArchiveFilter;

    let options = replay::store_options_for(config, &args.from);
    let filter = ArchiveFilter {
        topics: args.topics,
        since: args.since,
        until: args.until,
    };
    if let Some(name) = args.to_sink {
        let Some(sink_config) = config.sinks.get(&name) else {
            return Err(headwater_core::Error::decode(
                "the replay target",
                format!("there is no sink `{name}` in the configuration"),
            ));
        };
        let mut sink = sink_config.build(&name).await?;
        return replay::to_sink(&args.from, &options, filter, sink.as_mut()).await;
    }
    let source = args.to_log.unwrap_or_default();
    let (log, schemas, checkpoints) = runtime::open_data_dir(config).await?;
    let appender = runtime::LogAppender::open(
        source.into(),
        log.clone(),
        schemas,
        std::sync::Arc::default(),
        checkpoints,
        std::sync::Arc::default(),
    )
    .await?
    .without_replay_guard();
    let count = replay::to_log(&args.from, &options, filter, appender).await?;
    log.flush()
        .await
        .map_err(|e| headwater_core::Error::component("flushing the log", e))?;
    Ok(count)
}
