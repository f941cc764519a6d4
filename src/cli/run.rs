//! `seal run`: run a pipeline.

use clap::Args;

use super::output::{CliError, GlobalArgs, Outcome};

#[derive(Debug, Args)]
pub struct RunArgs {}

pub fn run(_args: RunArgs, _global: &GlobalArgs) -> Result<Option<Outcome>, CliError> {
    Ok(None)
}
