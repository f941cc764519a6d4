//! TODO: module schedule.
