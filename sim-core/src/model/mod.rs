//! The model of an LVS cluster: what a run is made of ([`config`]; `warnings.rs`:
//! [`ClusterConfig::warnings`], what a valid configuration does that its author should
//! be told of), how it runs ([`sim`]) and what it measures ([`report`]).
//!
//! ```text
//!   clients ──access──┐                       ┌── real server 1 ──┐
//!   (populations)     │  external    internal │        …          ├── backend
//!                     ├────link───Director────┤── real server n ──┘
//!                     │            (IPVS)     │
//!                     └─────────── uplink ────┘   (DR/TUN replies bypass the director)
//! ```
//!
//! Messages (a SYN, a request, a response: trains of packets) walk fixed paths of FIFO
//! channels; which path depends on the forwarding method:
//! - NAT: both directions through the director (external and internal links, its CPU and
//!   its IPVS table, which sees the replies and counts them as OutPkts/OutBytes).
//! - DR: inbound through the director; replies from the real server's uplink straight to
//!   the client. The director and the real server must share a segment.
//! - TUN: as DR, but inbound packets carry a 20-byte outer IP header on the internal link,
//!   and the client's MSS is 20 bytes smaller (path-MTU discovery through the tunnel).

pub mod config;
mod dest;
mod dos;
pub mod report;
pub mod sim;
mod warnings;

pub use config::*;
pub use dest::DestConfig;
pub use dos::{MAX_FLOOD_RATE, MAX_FLOOD_SOURCES, SynFloodConfig};
pub use report::*;
pub use sim::Simulation;
pub use warnings::ConfigWarning;
