//! The command line: clap definitions and dispatch, one file per subcommand.
//!
//! Exit codes: 0 success; 1 the run finished but a step failed; 2 bad input
//! (arguments, pipeline, parameters); 3 an image could not be found, verified
//! or unpacked; 4 the environment failed (namespaces, file system, locks);
//! 130 interrupted.

mod dag;
mod image;
mod lock;
mod output;
mod run;
mod validate;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use output::{CliError, Outcome, ProgressMode, exit_code};

/// seal: a reproducible workflow runner.
#[derive(Debug, Parser)]
#[command(name = "seal", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: output::GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a pipeline: schema, references, images, cycles and input files.
    Validate(validate::ValidateArgs),
    /// Run a pipeline.
    Run(run::RunArgs),
    /// Pin the pipeline's images that are named by tag, in a lock file next to it.
    Lock(lock::LockArgs),
    /// Print the pipeline's step instances and their edges as DOT or Mermaid.
    Dag(dag::DagArgs),
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
    // The container processes must not set up logging or anything else first.
    if let Command::Container { run_spec, repeat } = &cli.command {
        return ExitCode::from(match run_spec {
            None => crate::runtime::container_main(),
            Some(path) => crate::runtime::run_spec_main(path, *repeat),
        });
    }
    output::init(&cli.global);
    let result = match cli.command {
        Command::Validate(args) => validate::run(args),
        Command::Run(args) => run::run(args, &cli.global),
        Command::Dag(args) => dag::run(args),
        Command::Lock(args) => lock::run(args),
        Command::Image(cmd) => image::run(cmd),
        Command::Container { .. } => unreachable!("handled above"),
    };
    exit_code(result)
}
