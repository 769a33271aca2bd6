//! `feedbackd-master`: runs on the director, accepts agents and rewrites the IPVS weights in
//! the kernel (generic netlink by default), adding real servers on the fly.
//!
//! # Invariants
//! - Protocol and weight law live in `feedbackd-proto` and `lvs-sched`; this crate only
//!   drives them with tokio, TCP and netlink.
//! - Never lets an unauthenticated or malformed report change a weight.
//! - Never flushes the kernel table: it adopts existing entries.
//!

pub mod ipvs;
