//! The `/etc/feedbackd-agent.conf` grammar: the original one, as it is, plus extensions.
//!
//! CONTRACT STUB: the public items below are fixed; the bodies are to be written.
//!
//! ```text
//! director = 192.168.6.1
//! service = http
//!         protocol = TCP
//!         port = 80
//!         module = cpuload.so
//!         forwarding = NAT
//! ```

use core::net::IpAddr;
use core::time::Duration;

use crate::types::{Forwarding, Protocol};

/// The master's default TCP port.
pub const DEFAULT_MASTER_PORT: u16 = 7878;

/// A parsed agent configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct AgentConf {
    /// Every director to report to (`director = ADDR[:PORT]`, repeatable), in file order.
    pub directors: Vec<DirectorConf>,
    /// The agent's name in the master's table (`agent_id = NAME`); default: the host name,
    /// chosen by the daemon.
    pub agent_id: Option<String>,
    /// How often to measure and report (`interval = 1s` or `interval_ms = 1000`).
    pub interval: Duration,
    /// A file holding the pre-shared key (`key_file = PATH`).
    pub key_file: Option<String>,
    /// Give up on a master that has not answered for this long, and reconnect
    /// (`master_timeout = 10s`); default 3 intervals, at least 3 s.
    pub master_timeout: Option<Duration>,
    /// The services, in file order.
    pub services: Vec<ServiceConf>,
}

/// One `director = ...` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectorConf {
    /// Host name or address, as written.
    pub host: String,
    /// TCP port (default [`DEFAULT_MASTER_PORT`]).
    pub port: u16,
    /// The line it is on (1-based).
    pub line: u32,
}

/// One `service = NAME` block.
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceConf {
    /// The name after `service =`.
    pub name: String,
    /// `protocol = TCP|UDP|SCTP` (default TCP).
    pub protocol: Protocol,
    /// `port = N` (required; the name `http` etc. gives a default when it is a well-known one).
    pub port: u16,
    /// `vip = ADDR` (extension): only match this VIP.
    pub vip: Option<IpAddr>,
    /// `fwmark = N` (extension): a firewall-mark service.
    pub fwmark: Option<u32>,
    /// `forwarding = NAT|DR|TUN` (default NAT).
    pub forwarding: Forwarding,
    /// `address = ADDR` (extension): the real server address to register.
    pub address: Option<IpAddr>,
    /// `module = NAME[.so] [key=value ...]`, repeatable; none written means cpuload.
    pub modules: Vec<ModuleConf>,
    /// `combine = min|mean|product` (extension): how several modules' capacities combine.
    pub combine: Combine,
    /// The line of `service =` (1-based).
    pub line: u32,
}

/// One `module = ...` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleConf {
    /// Which module.
    pub kind: ModuleKind,
    /// Its `key=value` settings, in order.
    pub settings: Vec<(String, String)>,
    /// The line it is on (1-based).
    pub line: u32,
}

/// The load modules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModuleKind {
    /// CPU idle fraction from `/proc/stat` deltas (`cpuload.so`, the default).
    Cpuload,
    /// 1-minute load average per CPU (`loadavg`).
    Loadavg,
    /// Available memory fraction (`memory`).
    Memory,
    /// CPU pressure stall information, `/proc/pressure/cpu` (`psi`).
    Psi,
    /// Established connections on the service port against a maximum (`connections`).
    Connections,
    /// An external command's output (`command`).
    Command,
    /// A number read from a file (`file`).
    File,
}

/// How several modules' capacities combine into one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Combine {
    /// The most constrained resource decides (default).
    #[default]
    Min,
    /// The arithmetic mean.
    Mean,
    /// The product.
    Product,
}

/// A configuration error, with the line it is on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ConfError {
    /// 1-based line number (0 when the error is about the file as a whole).
    pub line: u32,
    /// What is wrong and what is expected.
    pub message: String,
}

/// Parses an agent configuration.
pub fn parse(text: &str) -> Result<AgentConf, ConfError> {
    let _ = text;
    unimplemented!("contract stub")
}
