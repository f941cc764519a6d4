//! TODO: module pipeline.
