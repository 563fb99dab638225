//! `headwater log …`: inspect the embedded log.

use std::path::Path;

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum LogCommand {
    /// List topics with their partitions and offsets.
    Topics,
}

pub fn run(command: LogCommand, data_dir: &Path) -> anyhow::Result<()> {
    match command {
        LogCommand::Topics => anyhow::bail!("the log at {} cannot be listed yet", data_dir.display()),
    }
}
