//! TODO: module cache.
