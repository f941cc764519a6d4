//! seal: a reproducible workflow runner.
//!
//! A YAML pipeline becomes a DAG of step instances; every instance runs in a
//! container image pinned by digest, started by seal's own rootless runtime,
//! and every run records a provenance manifest.

pub mod cli;
pub mod dag;
pub mod image;
pub mod pipeline;
pub mod provenance;
pub mod runtime;
pub mod schedule;

/// An error and its causes on one line, `outer: cause: cause`.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
