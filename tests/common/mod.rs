//! Helpers shared by the root package's integration tests.

pub mod deploy;
pub mod vm;
