//! The discrete-event engine and the model of an LVS cluster: clients, directors running
//! IPVS, real servers and links, in integer virtual time.
//!
//! # Module map
//! - [`ipvs`]: the director's IPVS table: virtual services (scheduled by `lvs-sched`),
//!   the connection table with its timers, persistence templates and counters.
//!
//! # Invariants
//! - Never reads the wall clock, the OS random source, a socket or a file: time is
//!   virtual, randomness comes from the run's seed.
//! - Not async, knows nothing of tokio or netlink.
//! - Uses the schedulers of `lvs-sched`; never re-implements one.
//! - Same inputs and seed, same results, bit for bit.

pub mod ipvs;
