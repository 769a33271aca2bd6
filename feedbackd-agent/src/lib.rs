//! `feedbackd-agent`: runs on each real server, measures its serving capacity (CPU load from
//! `/proc/stat` by default) and reports it to `feedbackd-master` on every configured
//! director. Reads the original `/etc/feedbackd-agent.conf` grammar.
//!
//! # Invariants
//! - Protocol logic lives in `feedbackd-proto`; this crate only drives it with tokio,
//!   TCP, signals and load modules.
//! - Never changes IPVS itself.
//!

pub mod load;
