//! `steward bench` (being written).

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use crate::cli::Cli;

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// A short run.
    #[arg(long)]
    pub quick: bool,
}

pub async fn run(_cli: &Cli, _args: &BenchArgs) -> Result<ExitCode> {
    anyhow::bail!("not yet")
}
