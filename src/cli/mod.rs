//! The command line: clap definitions and dispatch, one file per subcommand.

mod image;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// seal: a reproducible workflow runner.
#[derive(Debug, Parser)]
#[command(name = "seal", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage images in the store.
    #[command(subcommand)]
    Image(image::ImageCommand),
    /// Internal: start one container from a spec read on stdin.
    #[command(name = "__container", hide = true)]
    Container {
        /// Debugging: run the JSON container spec in FILE, print the outcome.
        #[arg(long, value_name = "FILE")]
        run_spec: Option<std::path::PathBuf>,
        /// Debugging: with --run-spec, run it N times and report start-up times.
        #[arg(long, value_name = "N", default_value_t = 1, requires = "run_spec")]
        repeat: u32,
    },
}

/// Parses the arguments, runs the command and maps errors to exit codes.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Image(cmd) => image::run(cmd),
        Command::Container { run_spec: None, .. } => {
            ExitCode::from(crate::runtime::container_main())
        }
        Command::Container {
            run_spec: Some(path),
            repeat,
        } => ExitCode::from(crate::runtime::run_spec_main(&path, repeat)),
    }
}
