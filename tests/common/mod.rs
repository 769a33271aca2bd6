//! Helpers shared by the root package's integration tests.

pub mod cli;
pub mod deploy;
pub mod reports;
pub mod vm;
