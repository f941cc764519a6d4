//! TODO: module dag.
