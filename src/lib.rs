//! The `lvsim` command line as a library: the pieces of the CLI that tests and other
//! front ends reuse.
//!
//! # Module map
//! - [`commands`]: `run`, `validate`, `sweep`, `plan`, `export`, `list`: load a
//!   scenario (crate `scenarios`), simulate (`sim-core`), write reports (`reports`).
//! - [`fuzz`] (Linux): the scenario fuzzer, mutated library scenarios through `lvsim
//!   validate` and `lvsim run` under caps (`tests/scenario_fuzz.rs`, `lvsim-fuzz`).
//! - [`replay`]: `lvsim ipvs replay`, the replay file format and its two back ends (the
//!   IPVS model and, on Linux, the running kernel).
//!
//! # Invariants
//! - Scheduling and model policy lives in the library crates (`lvs-sched`, `sim-core`),
//!   the scenario format in `scenarios`, rendering in `reports`; this crate parses
//!   arguments, orchestrates runs (replications, sweep points, the plan's search), reads
//!   and writes files, and prints.

pub mod commands;
#[cfg(target_os = "linux")]
pub mod fuzz;
pub mod replay;
