//! TODO: module provenance.
