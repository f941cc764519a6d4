//! `seal validate`: check a pipeline without running it.

use std::path::PathBuf;

use clap::Args;

use super::output::{CliError, EXIT_IMAGE, EXIT_INPUT, Outcome};
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
    check_images(&loaded)?;
    let steps = loaded.steps.len();
    let instances = plan.instances.len();
    println!(
        "{}: valid ({steps} steps, {instances} step instances, {} images)",
        args.pipeline.display(),
        loaded.images.len()
    );
    Ok(None)
}

/// Checks that every image can be prepared (in the store, or in its layout or
/// archive), without copying or unpacking anything.
fn check_images(pipeline: &pipeline::Pipeline) -> Result<(), CliError> {
    let store = crate::image::Store::open(None).map_err(|e| CliError::new(EXIT_IMAGE, e))?;
    let mut reports = Vec::new();
    for image in &pipeline.images {
        if let Err(error) = store.check_available(&image.reference) {
            let place = format!(
                "{}:{}:{}",
                pipeline.source.path.display(),
                image.pos.line,
                image.pos.column
            );
            let context = format!("{place}: image `{}` ({})", image.name, image.written);
            reports.push(miette::Report::new(error).wrap_err(context));
        }
    }
    if reports.is_empty() {
        return Ok(());
    }
    let summary = format!("{} image(s) cannot be prepared", reports.len());
    Err(CliError::many(EXIT_IMAGE, reports, summary))
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
