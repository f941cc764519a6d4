//! `seal image`: import and inspect images in the store.

use std::path::PathBuf;

use clap::Subcommand;

use super::output::{CliError, Outcome};

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Turn a root file system (directory or tarball) into a single-layer OCI image.
    Import {
        /// A directory or a tar archive holding the root file system.
        source: PathBuf,
        /// The image name to record, e.g. `local/busybox`.
        #[arg(long)]
        tag: String,
    },
}

pub fn run(cmd: ImageCommand) -> Result<Option<Outcome>, CliError> {
    match cmd {
        ImageCommand::Import { .. } => Ok(Some(Outcome::Failed(1))),
    }
}
