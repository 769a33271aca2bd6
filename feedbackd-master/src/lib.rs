//! `feedbackd-master`: runs on the director, accepts agents and rewrites the IPVS weights in
//! the kernel (generic netlink by default), adding real servers on the fly.
//!
//! # Modules
//! - [`ipvs`]: the kernel's IPVS table through generic netlink (`ipvs::netlink`, its pure
//!   codec in `ipvs::netlink::codec`), the `ipvsadm` command, or a dry run; one
//!   enum-dispatched `Backend`. `docs/feedbackd-backends.md` describes them.
//! - `src/bin/feedbackd-ipvs-check/`: a test and benchmark tool for the backends, run in
//!   the VM by `tests/ipvs_backends.rs` (`probe`) and by hand (`bench`); not installed.
//!
//! # Invariants
//! - Protocol and weight law live in `feedbackd-proto` and `lvs-sched`; this crate only
//!   drives them with tokio, TCP and netlink.
//! - Never lets an unauthenticated or malformed report change a weight.
//! - Never flushes the kernel table: it adopts existing entries.
//!

pub mod ipvs;
