//! `seal validate`: check a pipeline without running it.

use std::path::PathBuf;

use clap::Args;

use super::output::{CliError, EXIT_INPUT, Outcome};
use crate::pipeline::{self, LoadOptions};

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The pipeline file.
    pub pipeline: PathBuf,
    /// Override a parameter: --param key=value (value read as YAML).
    #[arg(long = "param", short = 'p', value_name = "KEY=VALUE", value_parser = parse_param)]
    pub params: Vec<(String, String)>,
}

/// Parses `key=value`.
pub fn parse_param(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!("`{text}` is not KEY=VALUE")),
    }
}

/// Loads and plans the pipeline; a pipeline that plans is valid.
pub fn run(args: ValidateArgs) -> Result<Option<Outcome>, CliError> {
    let options = LoadOptions {
        params: args.params,
    };
    let loaded = pipeline::load(&args.pipeline, &options).map_err(input_error)?;
    let plan = crate::dag::plan(&loaded).map_err(input_error)?;
    let steps = loaded.steps.len();
    let instances = plan.instances.len();
    println!(
        "{}: valid ({steps} steps, {instances} step instances, {} images)",
        args.pipeline.display(),
        loaded.images.len()
    );
    Ok(None)
}

/// A pipeline problem as a user-facing error.
pub fn input_error(error: pipeline::PipelineError) -> CliError {
    match error {
        pipeline::PipelineError::Invalid { path, problems } if problems.len() > 1 => {
            let summary = format!(
                "pipeline `{}` has {} problems",
                path.display(),
                problems.len()
            );
            let reports = problems.into_iter().map(miette::Report::new).collect();
            CliError::many(EXIT_INPUT, reports, summary)
        }
        other => CliError::new(EXIT_INPUT, other),
    }
}
