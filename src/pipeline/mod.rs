//! The pipeline file: YAML model, params, templating and validation.
//!
//! [`load`] reads a file into a checked [`Pipeline`]; every problem it finds
//! names the file, line and column.

pub mod check;
pub mod diag;
mod load;
pub mod lock;
pub mod model;
pub mod node;
pub mod render;
pub mod schema;
pub mod template;
pub mod units;

pub use diag::{PipelineError, Problem};
pub use load::{LoadOptions, load, load_images};
pub use model::{Command, Located, Pipeline, Resources, Step};
