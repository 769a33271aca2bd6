//! Named LVS topologies (the LVS tutorial's NAT, DR and TUN examples, ...) and the
//! exporters that turn one into deployment files (ipvsadm commands, feedbackd-agent.conf,
//! keepalived.conf), and the import of `ipvsadm-save` output as a director's services.
//!
//! # Invariants
//! - Data and text only: never runs a simulation, never touches the network or the kernel.
//! - The named topologies are RON text (`library/*.ron`) in the scenario format's
//!   topology fields, so a scenario that names one can override any of its fields.

pub mod model;

pub use model::{
    Backend, Channel, Cpu, Director, Flag, Forwarding, Protocol, RealServer, Scheduler, Server, Service,
    Timeouts, Topology,
};

/// A built-in topology.
#[derive(Clone, Copy, Debug)]
pub struct Named {
    /// Its name (`tutorial-nat`).
    pub name: &'static str,
    /// One line saying what it is.
    pub description: &'static str,
    /// RON text of a [`Topology`].
    pub source: &'static str,
}

/// The built-in topologies, by name.
pub const NAMED: &[Named] = &[];

/// The built-in topology of that name.
pub fn named(name: &str) -> Option<&'static Named> {
    NAMED.iter().find(|n| n.name == name)
}

/// A topology that cannot be used: where (a path such as `servers[2].gateway` or
/// `directors[0].services[1].real_servers[0].server`), and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct TopologyError {
    /// Path of the field at fault, in the scenario format.
    pub path: String,
    /// What is wrong, in words a person understands.
    pub message: String,
}

impl Topology {
    /// The topology with every `count: N` server entry written out as N servers named
    /// `NAME1`..`NAMEN` with consecutive addresses, and every real-server reference to a
    /// group name written out as one reference per member (in member order). A name used
    /// twice, an address overflow or a reference to no server is an error.
    pub fn expand(&self) -> Result<Topology, TopologyError> {
        unimplemented!("topologies: expand")
    }
}

pub mod export;
pub mod import;
