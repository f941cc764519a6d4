//! `seal dag`: the plan as a graph.

use std::path::PathBuf;

use clap::Args;

use super::output::{CliError, Outcome};
use super::validate::{input_error, parse_param};
use crate::dag::Format;
use crate::pipeline::{self, LoadOptions};

#[derive(Debug, Args)]
pub struct DagArgs {
    /// The pipeline file.
    pub pipeline: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Dot)]
    pub format: Format,
    /// Override a parameter: --param key=value.
    #[arg(long = "param", short = 'p', value_name = "KEY=VALUE", value_parser = parse_param)]
    pub params: Vec<(String, String)>,
}

pub fn run(args: DagArgs) -> Result<Option<Outcome>, CliError> {
    let options = LoadOptions {
        params: args.params,
    };
    let loaded = pipeline::load(&args.pipeline, &options).map_err(input_error)?;
    let plan = crate::dag::plan(&loaded).map_err(input_error)?;
    print!("{}", crate::dag::render_graph(&plan, args.format));
    Ok(None)
}
