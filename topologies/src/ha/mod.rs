//! The high-availability part of a topology, as a person writes it: health checks of a
//! service's real servers ([`HealthCheck`]), and a fail-over or active-active group of
//! directors with connection synchronisation ([`Ha`]).
//!
//! Every default is the tool's own, read from sim-core's configuration types
//! (`sim_core::ha`), so there is one source. [`HealthCheck::config`] and [`Ha::config`]
//! turn the schema into those types, checking each value with an error that names its
//! field. A few fields only matter to the exporters (`virtual_router_id`, `auth_pass`,
//! interface names, `syncid`, the negotiate check's request and answer): the simulator
//! treats a healthy server's page as matching.
//!
//! # Modules
//! - this file: [`Ha`], the group (members, interfaces), the sync daemon, and the enums
//!   the others share ([`Side`], [`Medium`], ...).
//! - `check.rs`: [`HealthCheck`].
//! - `failover.rs`: [`Failover`] (heartbeat, VRRP, active-active) and its checks.

use serde::{Deserialize, Serialize};
use sim_core::ha as sim;

use crate::{Director, TopologyError};

mod check;
mod failover;

pub use check::{CheckKind, Checker, Fallback, HealthCheck, NANNY_REENTRY_S};
pub use failover::{Failover, PULSE_DEADTIME_S, PULSE_KEEPALIVE_S, default_priorities};

pub(crate) fn error<T>(path: impl Into<String>, message: impl Into<String>) -> Result<T, TopologyError> {
    Err(TopologyError { path: path.into(), message: message.into() })
}

/// Seconds as the simulator's integer time.
pub(crate) fn secs(x: f64) -> lvs_sched::Duration {
    sim_core::dist::secs_to_duration(x)
}

pub(crate) fn ms(x: f64) -> lvs_sched::Duration {
    sim_core::dist::secs_to_duration(x * 1e-3)
}

pub(crate) fn in_ms(d: lvs_sched::Duration) -> f64 {
    d.as_nanos() as f64 / 1e6
}

/// A duration field: finite, and > 0 (not rounding to 0 ns) unless `zero_ok`.
pub(crate) fn duration(
    path: &str,
    x: f64,
    scale: f64,
    zero_ok: bool,
) -> Result<lvs_sched::Duration, TopologyError> {
    if !(x.is_finite() && x >= 0.0) {
        return error(path, format!("must be a number >= 0, got {x}"));
    }
    let d = secs(x * scale);
    if !zero_ok && d == lvs_sched::Duration::ZERO {
        return error(path, format!("must be > 0, got {x}"));
    }
    Ok(d)
}

/// A name written into a configuration file: not empty, no spaces, quotes or braces.
pub(crate) fn word(path: &str, what: &str, s: &str) -> Result<(), TopologyError> {
    if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control() || "\"'{}#!".contains(c)) {
        return error(path, format!("{s:?} is not a valid {what} (no spaces, quotes, braces, # or !)"));
    }
    Ok(())
}

/// A director-side interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Side {
    /// Towards the clients (the VIP's network).
    External,
    /// Towards the real servers.
    Internal,
}

impl From<Side> for sim::Side {
    fn from(s: Side) -> Self {
        match s {
            Side::External => sim::Side::External,
            Side::Internal => sim::Side::Internal,
        }
    }
}

impl From<sim::Side> for Side {
    fn from(s: sim::Side) -> Self {
        match s {
            sim::Side::External => Side::External,
            sim::Side::Internal => Side::Internal,
        }
    }
}

/// A medium heartbeat's keepalives travel on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Medium {
    /// A serial cable or crossover link between the directors (`serial /dev/ttyS0`).
    Dedicated,
    /// One of the directors' networks (`bcast eth0`).
    Lan(Side),
}

impl From<Medium> for sim::Medium {
    fn from(m: Medium) -> Self {
        match m {
            Medium::Dedicated => sim::Medium::Dedicated,
            Medium::Lan(s) => sim::Medium::Lan(s.into()),
        }
    }
}

/// A router or host ipfail pings to tell which director sees more of the network.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PingNode {
    /// Name, for reports.
    pub name: String,
    /// Its address (`ping ADDRESS` in ha.cf).
    pub address: std::net::IpAddr,
    /// Which of the directors' interfaces reaches it.
    pub side: Side,
}

/// How active-active directors split the connection space.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SplitBy {
    /// Blocks of client source ports.
    #[default]
    SourcePort,
    /// Blocks of client source addresses.
    SourceAddress,
}

/// Who runs the IPVS sync daemon.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncMode {
    /// A master daemon on the first member, backup daemons on the others.
    #[default]
    MasterBackup,
    /// Every member sends its connections to every other and receives theirs.
    PeerToPeer,
}

/// A fail-over (or active-active) group of directors.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ha {
    /// The member directors by name, the primary first. A member without `services` of
    /// its own runs the primary's.
    pub directors: Vec<String>,
    /// heartbeat, VRRP (keepalived) or active-active (Saru).
    pub failover: Failover,
    /// The IPVS connection sync daemon; none: a fail-over loses the connections.
    #[serde(default)]
    pub sync: Option<SyncDaemon>,
    /// One-way delay of the messages between members (keepalives, adverts) \[ms\].
    #[serde(default = "default_member_latency")]
    pub latency_ms: f64,
    /// Exports: the name of the external interface (the VIP's).
    #[serde(default = "default_external_interface")]
    pub external_interface: String,
    /// Exports: the name of the internal interface (the real servers').
    #[serde(default = "default_internal_interface")]
    pub internal_interface: String,
    /// Exports: the prefix length of an IPv4 VIP (or NAT gateway address) on its
    /// interface; IPv6 ones get /64.
    #[serde(default = "default_vip_prefix")]
    pub vip_prefix: u8,
}

fn default_member_latency() -> f64 {
    0.1
}
fn default_external_interface() -> String {
    "eth0".to_owned()
}
fn default_internal_interface() -> String {
    "eth1".to_owned()
}
fn default_vip_prefix() -> u8 {
    24
}

/// The IPVS connection sync daemon. Every field defaults to the kernel's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename = "Sync", deny_unknown_fields, default)]
pub struct SyncDaemon {
    /// Master/backup (fixed roles) or peer to peer.
    pub mode: SyncMode,
    /// A connection is sent at its `threshold`-th incoming packet ...
    pub threshold: u32,
    /// ... and then every `period` packets; 0: only once.
    pub period: u32,
    /// Sync message size limit \[bytes of UDP payload\].
    pub max_len: u32,
    /// Protocol version, 0 or 1.
    pub version: u8,
    /// A partly filled message is sent at most this long after its first connection \[s\].
    pub flush_s: f64,
    /// One-way delay of the sync multicast \[ms\].
    pub latency_ms: f64,
    /// Exports: the multicast interface (`--mcast-interface`); default `internal_interface`.
    pub interface: Option<String>,
    /// Exports: `--syncid`, 0..=255.
    pub syncid: u8,
}

impl Default for SyncDaemon {
    /// The kernel's defaults, read from sim-core's `SyncConfig::default()`.
    fn default() -> Self {
        let d = sim::SyncConfig::default();
        SyncDaemon {
            mode: match d.mode {
                sim::SyncMode::MasterBackup => SyncMode::MasterBackup,
                sim::SyncMode::PeerToPeer => SyncMode::PeerToPeer,
            },
            threshold: d.threshold,
            period: d.period,
            max_len: d.max_len,
            version: d.version,
            flush_s: d.flush.as_secs_f64(),
            latency_ms: in_ms(d.latency),
            interface: None,
            syncid: 0,
        }
    }
}

impl SyncDaemon {
    /// The simulator's settings, checked; `p` is the field's path (`ha.sync`).
    pub fn config(&self, p: &str) -> Result<sim::SyncConfig, TopologyError> {
        let f = |name: &str| format!("{p}.{name}");
        // Mirrors proc_do_sync_threshold(): both >= 0, threshold < period unless period 0.
        if self.period != 0 && self.threshold >= self.period {
            return error(
                f("threshold"),
                format!(
                    "{} must be below period ({}), as the kernel's sync_threshold requires (or period 0: once)",
                    self.threshold, self.period
                ),
            );
        }
        // One connection and the message header: 4 + 24 bytes in version 0, 8 + 36 in 1.
        let min = match self.version {
            0 => 28,
            1 => 44,
            v => return error(f("version"), format!("sync protocol version {v}: 0 or 1")),
        };
        if !(min..=65507).contains(&self.max_len) {
            return error(
                f("max_len"),
                format!(
                    "{} bytes: a message holds at least one connection ({min} bytes) and fits a UDP datagram (65507)",
                    self.max_len
                ),
            );
        }
        if let Some(i) = &self.interface {
            word(&f("interface"), "interface name", i)?;
        }
        Ok(sim::SyncConfig {
            mode: match self.mode {
                SyncMode::MasterBackup => sim::SyncMode::MasterBackup,
                SyncMode::PeerToPeer => sim::SyncMode::PeerToPeer,
            },
            threshold: self.threshold,
            period: self.period,
            max_len: self.max_len,
            version: self.version,
            flush: duration(&f("flush_s"), self.flush_s, 1.0, false)?,
            latency: duration(&f("latency_ms"), self.latency_ms, 1e-3, true)?,
        })
    }
}

impl Ha {
    /// A group of `directors` with `failover` and every other field at the scenario
    /// format's default (no sync, 0.1 ms between members, `eth0`/`eth1`, /24).
    pub fn new(directors: Vec<String>, failover: Failover) -> Ha {
        Ha {
            directors,
            failover,
            sync: None,
            latency_ms: default_member_latency(),
            external_interface: default_external_interface(),
            internal_interface: default_internal_interface(),
            vip_prefix: default_vip_prefix(),
        }
    }

    /// The member directors' indices in `directors`, in member order; errors name
    /// `ha.directors[k]`.
    pub fn members(&self, directors: &[Director]) -> Result<Vec<usize>, TopologyError> {
        let known = || directors.iter().map(|d| d.name.as_str()).collect::<Vec<_>>().join(", ");
        // Active-active directors may be one (the baseline a capacity sweep starts from);
        // a fail-over pair needs two.
        let need = if matches!(self.failover, Failover::ActiveActive { .. }) { 1 } else { 2 };
        if self.directors.len() < need {
            let what = if need == 1 {
                "an active-active group needs a director"
            } else {
                "a fail-over group needs at least two directors"
            };
            return error(
                "ha.directors",
                format!("{what}, got {} (directors are: {})", self.directors.len(), known()),
            );
        }
        let mut out = Vec::with_capacity(self.directors.len());
        for (k, name) in self.directors.iter().enumerate() {
            let Some(i) = directors.iter().position(|d| &d.name == name) else {
                return error(
                    format!("ha.directors[{k}]"),
                    format!("no director named {name:?} (directors are: {})", known()),
                );
            };
            if out.contains(&i) {
                return error(format!("ha.directors[{k}]"), format!("{name:?} is listed twice"));
            }
            out.push(i);
        }
        Ok(out)
    }

    /// The simulator's group, every value checked (errors name `ha.` paths).
    pub fn config(&self, directors: &[Director]) -> Result<sim::HaConfig, TopologyError> {
        let members = self.members(directors)?;
        for (field, name) in [
            ("external_interface", &self.external_interface),
            ("internal_interface", &self.internal_interface),
        ] {
            word(&format!("ha.{field}"), "interface name", name)?;
        }
        if !(1..=32).contains(&self.vip_prefix) {
            return error("ha.vip_prefix", format!("{}: an IPv4 prefix length is 1 to 32", self.vip_prefix));
        }
        Ok(sim::HaConfig {
            failover: self.failover.config("ha.failover", members.len())?,
            sync: self.sync.as_ref().map(|s| s.config("ha.sync")).transpose()?,
            latency: duration("ha.latency_ms", self.latency_ms, 1e-3, true)?,
            members,
        })
    }

    /// The sync daemon's multicast interface.
    pub fn sync_interface(&self) -> &str {
        self.sync.as_ref().and_then(|s| s.interface.as_deref()).unwrap_or(&self.internal_interface)
    }

    /// The interface name of a side.
    pub fn interface(&self, side: Side) -> &str {
        match side {
            Side::External => &self.external_interface,
            Side::Internal => &self.internal_interface,
        }
    }
}
