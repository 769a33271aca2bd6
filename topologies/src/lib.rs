//! Named LVS topologies (the LVS tutorial's NAT, DR and TUN examples, HA pairs) and the
//! exporters that turn one into deployment files (ipvsadm commands, feedbackd-agent.conf,
//! keepalived.conf).
//!
//! # Invariants
//! - Data and text only: never runs a simulation, never touches the network or the kernel.
//!
//! Status: the crate is laid out; topologies arrive with the scenario issue.
