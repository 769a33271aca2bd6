//! The feedbackd agent/master protocol: wire codec, the `feedbackd-agent.conf` grammar and
//! the sans-IO `Agent` and `Master` state machines (`handle_*`/`poll_*`).
//!
//! Both the live daemons (tokio, TCP) and the simulator (virtual time) drive these state
//! machines, so a behaviour seen on a live director can be replayed in a scenario.
//!
//! # Invariants
//! - Pure: never reads a clock, a socket, a file, the environment or an OS random source.
//! - A decoder never panics, whatever the bytes; sizes are bounded.
//! - An unauthenticated or malformed frame never produces a weight change.
//!

pub mod conf;
pub mod types;
