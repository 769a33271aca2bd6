//! The feedbackd agent/master protocol: wire codec, the `feedbackd-agent.conf` grammar and
//! the sans-IO `Agent` and `Master` state machines (`handle_*`/`poll_*`).
//!
//! Both the live daemons (tokio, TCP) and the simulator (virtual time) drive these state
//! machines, so a behaviour seen on a live director can be replayed in a scenario.
//!
//! # Module map
//! - [`wire`]: frames and messages, encode and a decoder that never panics.
//! - [`auth`]: pre-shared key, session keys, tags, sequence numbers ([`auth::Channel`]).
//! - [`agent`]: the agent's state machine, one per director connection; [`backoff`]: its
//!   reconnection delays.
//! - [`master`]: the master's state machine, all agents and the weight law; [`drive`]: the
//!   order in which a driver takes its output (events, frames, closes).
//! - [`keys`]: the master's keys file (per-agent keys and claims) and its `Auth` setting.
//! - [`journal`]: a master's inputs and decisions, recorded for replay; [`journal_file`]:
//!   the journal as files (rotation between lines, appended runs read back).
//! - [`admission`]: which agent connections the master admits (allow-list, caps) and the
//!   accept loop's backoff; [`ratelimit`]: log lines per cause per second.
//! - [`conf`]: the `feedbackd-agent.conf` grammar.
//! - [`agentcheck`]: HAProxy's agent-check reply (one text line), written and read.
//! - [`cpuload`]: the cpuload computation (`/proc/stat` counters → busy fraction).
//! - [`types`]: admin state, service specs (on `lvs_ipvs`'s protocol, forwarding and
//!   service key), networks, and the
//!   master's connection, real-server and table-entry keys.
//!
//! Imports point one way: `types` ← `wire` (frames, and the session key that tags them) ←
//! `auth` ← `keys` ← `master`, and `journal` (on `types` and `wire`) ← `master`.
//!
//! # Invariants
//! - Pure: never reads a clock, a socket, a file, the environment or an OS random source.
//!   Time comes in as `now` ([`lvs_sched::Time`]); nonces and jitter come in as arguments.
//! - A decoder never panics, whatever the bytes; sizes are bounded.
//! - An unauthenticated or malformed frame never produces a weight change: a frame is
//!   authenticated and sequence-checked before it is decoded into a message, and any
//!   failure closes the connection.

pub mod admission;
pub mod agent;
pub mod agentcheck;
pub mod auth;
pub mod backoff;
pub mod conf;
pub mod cpuload;
pub mod drive;
#[doc(hidden)]
pub mod fuzzing;
pub mod journal;
pub mod journal_file;
pub mod keys;
pub mod master;
pub mod ratelimit;
pub mod types;
pub mod wire;

pub use lvs_sched::{Duration, Time};
