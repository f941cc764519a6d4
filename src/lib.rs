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
