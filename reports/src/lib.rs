//! Reports of lvsim runs: `summary.json`, CSV time series and a self-contained
//! `report.html` with plotters charts and ipvsadm-style tables.
//!
//! # Invariants
//! - Never runs a simulation: it renders results it is given.
//! - Output is deterministic for the same results (no timestamps, no map iteration order).
//!
//! Status: the crate is laid out; reports arrive with the scenario issue.
