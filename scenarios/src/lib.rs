//! The scenario file format (RON) and its validation into a typed model.
//!
//! `library/` beside this crate holds the scenario library.
//!
//! # Invariants
//! - Unknown fields are rejected; every error names file, line, column and what was
//!   expected.
//! - Never runs a simulation and never writes files: it parses and validates.
//!
//! Status: the crate is laid out; the format arrives with the scenario issue.
