//! The discrete-event engine and the model of an LVS cluster: clients, directors running
//! IPVS, real servers and links, in integer virtual time.
//!
//! # Module map
//! - [`engine`]: the event queue, ordered by `(time, insertion sequence)`.
//! - [`rng`]: the run's seed and its named sub-streams (ChaCha8).
//! - [`dist`], [`arrival`]: distributions of sizes and demands; arrival processes.
//! - [`link`]: links and other FIFO resources (director CPU), computed without events.
//! - [`cpu`]: a real server's processors (processor sharing, worker pool, backlog).
//! - [`feedback`]: simulated feedbackd agents and masters (the daemons' state machines).
//! - [`ha`]: health checks, director fail-over (heartbeat, VRRP), active-active (Saru).
//! - [`model`]: the cluster model: configuration, the simulation loop, the report.
//! - [`ref1`]: LVS-REF-1, the reference benchmark, as a model configuration.
//! - [`stats`]: histograms, batch means, time integrals.
//! - [`theory`]: queueing formulas the model is validated against.
//!
//! # Invariants
//! - Never reads the wall clock, the OS random source, a socket or a file: time is
//!   virtual, randomness comes from the run's seed.
//! - Not async, knows nothing of tokio or netlink.
//! - Uses the schedulers of `lvs-sched` and the IPVS table of `lvs-ipvs` (the director's
//!   services, connection table, persistence, counters, sync); never re-implements them.
//! - Same inputs and seed, same results, bit for bit.

pub mod arrival;
pub mod cpu;
pub mod dist;
pub mod engine;
pub mod feedback;
pub mod ha;
pub mod link;
pub mod model;
pub mod ref1;
pub mod rng;
pub mod stats;
pub mod theory;
