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

use serde::{Deserialize, Serialize};
use sim_core::ha as sim;

use crate::{Director, Forwarding, TopologyError};

fn error<T>(path: impl Into<String>, message: impl Into<String>) -> Result<T, TopologyError> {
    Err(TopologyError { path: path.into(), message: message.into() })
}

/// Seconds as the simulator's integer time.
fn secs(x: f64) -> lvs_sched::Duration {
    sim_core::dist::secs_to_duration(x)
}

fn ms(x: f64) -> lvs_sched::Duration {
    sim_core::dist::secs_to_duration(x * 1e-3)
}

fn in_ms(d: lvs_sched::Duration) -> f64 {
    d.as_nanos() as f64 / 1e6
}

/// A duration field: finite, and > 0 (not rounding to 0 ns) unless `zero_ok`.
fn duration(path: &str, x: f64, scale: f64, zero_ok: bool) -> Result<lvs_sched::Duration, TopologyError> {
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
fn word(path: &str, what: &str, s: &str) -> Result<(), TopologyError> {
    if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control() || "\"'{}#!".contains(c)) {
        return error(path, format!("{s:?} is not a valid {what} (no spaces, quotes, braces, # or !)"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Health checks

/// Health checking of a virtual service's real servers, as ldirectord or keepalived do it.
/// A field left out takes the `checker`'s default.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheck {
    /// Which tool checks: it decides the defaults of the fields not written.
    #[serde(default)]
    pub checker: Checker,
    /// Connect or negotiate.
    #[serde(default)]
    pub kind: CheckKind,
    /// Time between two checks of a real server \[s\] (`checkinterval`, `delay_loop`;
    /// default 10 s ldirectord, 60 s keepalived).
    #[serde(default)]
    pub interval_s: Option<f64>,
    /// A check not answered in this long has failed \[s\] (`checktimeout` or
    /// `negotiatetimeout`, `connect_timeout`; default 5 s).
    #[serde(default)]
    pub timeout_s: Option<f64>,
    /// Failed checks beyond the first before a server is declared down (ldirectord
    /// `checkcount` − 1, keepalived `retry`; default 0 ldirectord, 1 keepalived).
    #[serde(default)]
    pub retries: Option<u32>,
    /// Delay between a failed check and its retry \[s\] (keepalived `delay_before_retry`,
    /// default 1 s); ldirectord's default is none: the retry waits for the next interval.
    #[serde(default)]
    pub delay_before_retry_s: Option<f64>,
    /// `true`: a failed server is quiesced (weight 0); `false`: removed (`ipvsadm -d`).
    /// Default: ldirectord quiesces (`quiescent = yes`), keepalived removes.
    #[serde(default)]
    pub quiescent: Option<bool>,
    /// The "sorry" server added (weight 1) when every real server is down.
    #[serde(default)]
    pub fallback: Option<Fallback>,
}

/// The tool that checks the real servers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Checker {
    /// ldirectord (run by heartbeat, or alone).
    #[default]
    Ldirectord,
    /// keepalived's checkers (`TCP_CHECK`, `HTTP_GET`).
    Keepalived,
}

/// What a check does.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum CheckKind {
    /// Open a TCP connection to the real server's port (`checktype = connect`,
    /// `TCP_CHECK`).
    #[default]
    Connect,
    /// Request a page and compare the answer (`checktype = negotiate`, `HTTP_GET`).
    Negotiate {
        /// The page requested (`request`, `url { path }`).
        #[serde(default = "default_request")]
        request: String,
        /// The string the answer must contain (ldirectord `receive`).
        #[serde(default)]
        receive: Option<String>,
        /// MD5 digest of the expected answer, 32 hex digits (keepalived `digest`).
        #[serde(default)]
        digest: Option<String>,
        /// CPU the page costs the real server \[ms at speed 1\].
        #[serde(default = "default_page_demand")]
        demand_ms: f64,
    },
}

fn default_request() -> String {
    "/".to_owned()
}

fn default_page_demand() -> f64 {
    1.0
}

/// A sorry server: a server of the topology, added as a real server of the service when
/// all the others are down.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fallback {
    /// The server's name (one server, not a `count` group).
    pub server: String,
    /// Its port; default the service's (DR and TUN always use the service's).
    #[serde(default)]
    pub port: Option<u16>,
    /// Forwarding method.
    #[serde(default)]
    pub forwarding: Forwarding,
}

impl HealthCheck {
    /// The simulator's settings: the checker's defaults (sim-core's
    /// `HealthCheckConfig::ldirectord()`/`keepalived()`) for the fields not written.
    /// `fallback` is left `None`: it needs the server's index, which the caller knows.
    /// Values are not checked here; [`HealthCheck::check`] does that.
    pub fn config(&self) -> sim::HealthCheckConfig {
        let mut c = match self.checker {
            Checker::Ldirectord => sim::HealthCheckConfig::ldirectord(),
            Checker::Keepalived => sim::HealthCheckConfig::keepalived(),
        };
        c.kind = match &self.kind {
            CheckKind::Connect => sim::CheckKind::Connect,
            CheckKind::Negotiate { demand_ms, .. } => sim::CheckKind::Negotiate { demand: ms(*demand_ms) },
        };
        if let Some(x) = self.interval_s {
            c.interval = secs(x);
        }
        if let Some(x) = self.timeout_s {
            c.timeout = secs(x);
        }
        if let Some(n) = self.retries {
            c.retries = n;
        }
        if let Some(x) = self.delay_before_retry_s {
            c.delay_before_retry = Some(secs(x));
        }
        if let Some(q) = self.quiescent {
            c.on_failure = if q { sim::OnFailure::Quiesce } else { sim::OnFailure::Remove };
        }
        c
    }

    /// Checks every value; `path` is the check's own (`directors[0].services[1].check`).
    /// The fallback's server is resolved by [`crate::Topology::expand`].
    pub fn check(&self, path: &str) -> Result<(), TopologyError> {
        if let Some(x) = self.interval_s {
            duration(&format!("{path}.interval_s"), x, 1.0, false)?;
        }
        if let Some(x) = self.timeout_s {
            duration(&format!("{path}.timeout_s"), x, 1.0, false)?;
        }
        if let Some(x) = self.delay_before_retry_s {
            duration(&format!("{path}.delay_before_retry_s"), x, 1.0, true)?;
        }
        if let CheckKind::Negotiate { request, receive, digest, demand_ms } = &self.kind {
            let kp = format!("{path}.kind");
            word(&format!("{kp}.request"), "page to request", request)?;
            if let Some(r) = receive
                && (r.is_empty() || r.chars().any(|c| c == '"' || c.is_control()))
            {
                return error(
                    format!("{kp}.receive"),
                    format!(
                        "{r:?}: the expected string is not empty and has no quotes or control characters"
                    ),
                );
            }
            if let Some(d) = digest
                && !(d.len() == 32 && d.bytes().all(|b| b.is_ascii_hexdigit()))
            {
                return error(
                    format!("{kp}.digest"),
                    format!("{d:?} is not an MD5 digest (32 hex digits, as keepalived's genhash prints)"),
                );
            }
            duration(&format!("{kp}.demand_ms"), *demand_ms, 1e-3, true)?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Fail-over groups

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

/// How a group decides who serves the VIP. Each field defaults to its tool's default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Failover {
    /// heartbeat (ha.cf), with ipfail when ping nodes are given; the first member is the
    /// primary.
    Heartbeat {
        /// Time between keepalives \[s\].
        #[serde(default = "keepalive_s")]
        keepalive_s: f64,
        /// A peer silent this long is dead \[s\].
        #[serde(default = "deadtime_s")]
        deadtime_s: f64,
        /// A peer silent this long is warned about \[s\].
        #[serde(default = "warntime_s")]
        warntime_s: f64,
        /// At start-up, how long to wait for a peer \[s\].
        #[serde(default = "initdead_s")]
        initdead_s: f64,
        /// A returning primary does not take the resources back (`auto_failback off`).
        #[serde(default = "nice_failback")]
        nice_failback: bool,
        /// What the keepalives travel on.
        #[serde(default = "media")]
        media: Vec<Medium>,
        /// ipfail's ping nodes; none: no ipfail.
        #[serde(default)]
        ping_nodes: Vec<PingNode>,
        /// A ping node silent this long is dead \[s\].
        #[serde(default = "deadping_s")]
        deadping_s: f64,
        /// Time the resource scripts take to take over or give up \[s\].
        #[serde(default = "takeover_s")]
        takeover_s: f64,
    },
    /// keepalived's VRRP.
    Vrrp {
        /// `advert_int` \[s\] (whole seconds in VRRP version 2).
        #[serde(default = "advert_int_s")]
        advert_int_s: f64,
        /// `priority` per member, in member order; default 150, 100, 50, 49, ...
        #[serde(default)]
        priorities: Option<Vec<u8>>,
        /// A higher-priority backup takes the VIP back (`nopreempt` when false).
        #[serde(default = "preempt")]
        preempt: bool,
        /// `preempt_delay` \[s\].
        #[serde(default = "preempt_delay_s")]
        preempt_delay_s: f64,
        /// The interfaces with an instance; two make a `vrrp_sync_group`.
        #[serde(default = "vrrp_interfaces")]
        interfaces: Vec<Side>,
        /// VRRP version, 2 or 3.
        #[serde(default = "vrrp_version")]
        version: u8,
        /// Time for the first gratuitous ARP to reach the upstream router \[ms\].
        #[serde(default = "garp_delay_ms")]
        garp_delay_ms: f64,
        /// Exports: `virtual_router_id` (the internal instance's is one more).
        #[serde(default = "virtual_router_id")]
        virtual_router_id: u8,
        /// Exports: `authentication { auth_type PASS auth_pass ... }` (version 2 only).
        #[serde(default)]
        auth_pass: Option<String>,
    },
    /// Saru active-active: every member serves its share of the connection space;
    /// membership by heartbeat (the same fields as `Heartbeat`).
    ActiveActive {
        /// Source-port or source-address blocks.
        #[serde(default)]
        by: SplitBy,
        /// Number of blocks, a power of two.
        #[serde(default = "blocks")]
        blocks: u32,
        /// Time between keepalives \[s\].
        #[serde(default = "keepalive_s")]
        keepalive_s: f64,
        /// A peer silent this long is dead \[s\].
        #[serde(default = "deadtime_s")]
        deadtime_s: f64,
        /// A peer silent this long is warned about \[s\].
        #[serde(default = "warntime_s")]
        warntime_s: f64,
        /// At start-up, how long to wait for a peer \[s\].
        #[serde(default = "initdead_s")]
        initdead_s: f64,
        /// heartbeat's `auto_failback off`.
        #[serde(default = "nice_failback")]
        nice_failback: bool,
        /// What the keepalives travel on.
        #[serde(default = "media")]
        media: Vec<Medium>,
        /// ipfail's ping nodes.
        #[serde(default)]
        ping_nodes: Vec<PingNode>,
        /// A ping node silent this long is dead \[s\].
        #[serde(default = "deadping_s")]
        deadping_s: f64,
        /// Time to take a share over or give it up \[s\].
        #[serde(default = "takeover_s")]
        takeover_s: f64,
    },
}

fn hb() -> sim::HeartbeatConfig {
    sim::HeartbeatConfig::default()
}
fn keepalive_s() -> f64 {
    hb().keepalive.as_secs_f64()
}
fn deadtime_s() -> f64 {
    hb().deadtime.as_secs_f64()
}
fn warntime_s() -> f64 {
    hb().warntime.as_secs_f64()
}
fn initdead_s() -> f64 {
    hb().initdead.as_secs_f64()
}
fn nice_failback() -> bool {
    hb().nice_failback
}
fn media() -> Vec<Medium> {
    hb().media
        .into_iter()
        .map(|m| match m {
            sim::Medium::Dedicated => Medium::Dedicated,
            sim::Medium::Lan(s) => Medium::Lan(s.into()),
        })
        .collect()
}
fn deadping_s() -> f64 {
    hb().deadping.as_secs_f64()
}
fn takeover_s() -> f64 {
    hb().takeover.as_secs_f64()
}
fn advert_int_s() -> f64 {
    sim::VrrpConfig::default().advert_int.as_secs_f64()
}
fn preempt() -> bool {
    sim::VrrpConfig::default().preempt
}
fn preempt_delay_s() -> f64 {
    sim::VrrpConfig::default().preempt_delay.as_secs_f64()
}
fn vrrp_interfaces() -> Vec<Side> {
    sim::VrrpConfig::default().interfaces.into_iter().map(Side::from).collect()
}
fn vrrp_version() -> u8 {
    sim::VrrpConfig::default().version
}
fn garp_delay_ms() -> f64 {
    in_ms(sim::VrrpConfig::default().garp_delay)
}
/// keepalived's sample configuration's `virtual_router_id`.
fn virtual_router_id() -> u8 {
    51
}
fn blocks() -> u32 {
    sim::SaruConfig::default().blocks
}

/// The default VRRP priorities of `n` members: sim-core's (150, 100), then 50, 49, 48, ...
pub fn default_priorities(n: usize) -> Vec<u8> {
    let base = sim::VrrpConfig::default().priorities;
    (0..n)
        .map(|k| match base.get(k) {
            Some(&p) => p,
            None => 50u8.saturating_sub((k - base.len()) as u8).max(1),
        })
        .collect()
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

/// heartbeat's fields, shared by `Heartbeat` and `ActiveActive`.
struct HbFields<'a> {
    keepalive_s: f64,
    deadtime_s: f64,
    warntime_s: f64,
    initdead_s: f64,
    nice_failback: bool,
    media: &'a [Medium],
    ping_nodes: &'a [PingNode],
    deadping_s: f64,
    takeover_s: f64,
}

impl HbFields<'_> {
    fn config(&self, p: &str) -> Result<sim::HeartbeatConfig, TopologyError> {
        let f = |name: &str| format!("{p}.{name}");
        let keepalive = duration(&f("keepalive_s"), self.keepalive_s, 1.0, false)?;
        let deadtime = duration(&f("deadtime_s"), self.deadtime_s, 1.0, false)?;
        let warntime = duration(&f("warntime_s"), self.warntime_s, 1.0, false)?;
        let initdead = duration(&f("initdead_s"), self.initdead_s, 1.0, false)?;
        if deadtime <= keepalive {
            return error(
                f("deadtime_s"),
                format!(
                    "{} s must be longer than keepalive_s ({} s): a live peer would be declared dead",
                    self.deadtime_s, self.keepalive_s
                ),
            );
        }
        if !(keepalive..=deadtime).contains(&warntime) {
            return error(
                f("warntime_s"),
                format!(
                    "{} s is not between keepalive_s ({} s) and deadtime_s ({} s)",
                    self.warntime_s, self.keepalive_s, self.deadtime_s
                ),
            );
        }
        if initdead < deadtime {
            return error(
                f("initdead_s"),
                format!(
                    "{} s is shorter than deadtime_s ({} s): at least that (heartbeat advises twice)",
                    self.initdead_s, self.deadtime_s
                ),
            );
        }
        if self.media.is_empty() {
            return error(f("media"), "keepalives need a medium: [Dedicated], [Lan(Internal)], ...");
        }
        // A second `Dedicated` is a second serial cable; a network is listed once.
        for (k, m) in self.media.iter().enumerate() {
            if *m != Medium::Dedicated && self.media[..k].contains(m) {
                return error(format!("{p}.media[{k}]"), format!("{m:?} is listed twice"));
            }
        }
        for (k, n) in self.ping_nodes.iter().enumerate() {
            word(&format!("{p}.ping_nodes[{k}].name"), "ping node name", &n.name)?;
            if let Some(j) =
                self.ping_nodes[..k].iter().position(|o| o.name == n.name || o.address == n.address)
            {
                return error(
                    format!("{p}.ping_nodes[{k}]"),
                    format!("the same name or address as ping_nodes[{j}]"),
                );
            }
        }
        Ok(sim::HeartbeatConfig {
            keepalive,
            deadtime,
            warntime,
            initdead,
            nice_failback: self.nice_failback,
            media: self.media.iter().map(|&m| m.into()).collect(),
            ping_nodes: self
                .ping_nodes
                .iter()
                .map(|n| sim::PingNode { name: n.name.clone(), address: n.address, side: n.side.into() })
                .collect(),
            deadping: duration(&f("deadping_s"), self.deadping_s, 1.0, false)?,
            takeover: duration(&f("takeover_s"), self.takeover_s, 1.0, true)?,
        })
    }
}

impl Failover {
    /// The simulator's settings for a group of `members` directors, checked; `p` is the
    /// field's path (`ha.failover`).
    pub fn config(&self, p: &str, members: usize) -> Result<sim::Failover, TopologyError> {
        match self {
            Failover::Heartbeat {
                keepalive_s,
                deadtime_s,
                warntime_s,
                initdead_s,
                nice_failback,
                media,
                ping_nodes,
                deadping_s,
                takeover_s,
            } => Ok(sim::Failover::Heartbeat(
                HbFields {
                    keepalive_s: *keepalive_s,
                    deadtime_s: *deadtime_s,
                    warntime_s: *warntime_s,
                    initdead_s: *initdead_s,
                    nice_failback: *nice_failback,
                    media,
                    ping_nodes,
                    deadping_s: *deadping_s,
                    takeover_s: *takeover_s,
                }
                .config(p)?,
            )),
            Failover::ActiveActive {
                by,
                blocks,
                keepalive_s,
                deadtime_s,
                warntime_s,
                initdead_s,
                nice_failback,
                media,
                ping_nodes,
                deadping_s,
                takeover_s,
            } => {
                if !blocks.is_power_of_two() || *blocks > 65536 || (*blocks as usize) < members {
                    return error(
                        format!("{p}.blocks"),
                        format!(
                            "{blocks} blocks: a power of two, at least one per director ({members}) and at most 65536"
                        ),
                    );
                }
                let heartbeat = HbFields {
                    keepalive_s: *keepalive_s,
                    deadtime_s: *deadtime_s,
                    warntime_s: *warntime_s,
                    initdead_s: *initdead_s,
                    nice_failback: *nice_failback,
                    media,
                    ping_nodes,
                    deadping_s: *deadping_s,
                    takeover_s: *takeover_s,
                }
                .config(p)?;
                let by = match by {
                    SplitBy::SourcePort => sim::SplitBy::SourcePort,
                    SplitBy::SourceAddress => sim::SplitBy::SourceAddress,
                };
                Ok(sim::Failover::ActiveActive(sim::SaruConfig { by, blocks: *blocks, heartbeat }))
            }
            Failover::Vrrp { .. } => self.vrrp(p, members).map(sim::Failover::Vrrp),
        }
    }

    fn vrrp(&self, p: &str, members: usize) -> Result<sim::VrrpConfig, TopologyError> {
        let Failover::Vrrp {
            advert_int_s,
            priorities,
            preempt,
            preempt_delay_s,
            interfaces,
            version,
            garp_delay_ms,
            virtual_router_id,
            auth_pass,
        } = self
        else {
            unreachable!("called for Vrrp only")
        };
        let f = |name: &str| format!("{p}.{name}");
        if !matches!(version, 2 | 3) {
            return error(f("version"), format!("VRRP version {version}: 2 or 3"));
        }
        let advert_int = duration(&f("advert_int_s"), *advert_int_s, 1.0, false)?;
        // The advert interval field is whole seconds (8 bits) in version 2, centiseconds
        // (12 bits) in version 3 (RFC 3768 §5.3.7, RFC 5798 §5.2.7).
        let ok = if *version == 2 {
            advert_int_s.fract() == 0.0 && (1.0..=255.0).contains(advert_int_s)
        } else {
            let cs = advert_int_s * 100.0;
            (cs - cs.round()).abs() < 1e-6 && (1.0..=4095.0).contains(&cs.round())
        };
        if !ok {
            let range = if *version == 2 {
                "whole seconds, 1 to 255"
            } else {
                "hundredths of a second, 0.01 to 40.95"
            };
            return error(
                f("advert_int_s"),
                format!("{advert_int_s} s: VRRP version {version} takes {range}"),
            );
        }
        let priorities = priorities.clone().unwrap_or_else(|| default_priorities(members));
        if priorities.len() != members {
            return error(
                f("priorities"),
                format!(
                    "{} priorities for {members} directors: give one per director, in order",
                    priorities.len()
                ),
            );
        }
        if let Some(k) = priorities.iter().position(|&x| x == 0 || x == 255) {
            return error(
                format!("{p}.priorities[{k}]"),
                format!("{}: a backup's priority is 1 to 254 (255 means the address owner)", priorities[k]),
            );
        }
        if *virtual_router_id == 0 {
            return error(f("virtual_router_id"), "0: a virtual router id is 1 to 255");
        }
        if interfaces.is_empty() {
            return error(f("interfaces"), "VRRP needs an interface: [External], [External, Internal], ...");
        }
        if interfaces.len() == 2 && interfaces[0] == interfaces[1] || interfaces.len() > 2 {
            return error(
                f("interfaces"),
                "at most one instance per interface: [External, Internal] at most",
            );
        }
        if let Some(pass) = auth_pass {
            if *version == 3 {
                return error(f("auth_pass"), "VRRP version 3 has no authentication: leave auth_pass out");
            }
            word(&f("auth_pass"), "password", pass)?;
            if pass.len() > 8 {
                return error(f("auth_pass"), "VRRP passwords are at most 8 characters");
            }
        }
        Ok(sim::VrrpConfig {
            advert_int,
            priorities,
            preempt: *preempt,
            preempt_delay: duration(&f("preempt_delay_s"), *preempt_delay_s, 1.0, true)?,
            interfaces: interfaces.iter().map(|&s| s.into()).collect(),
            version: *version,
            garp_delay: duration(&f("garp_delay_ms"), *garp_delay_ms, 1e-3, true)?,
        })
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
    /// The member directors' indices in `directors`, in member order; errors name
    /// `ha.directors[k]`.
    pub fn members(&self, directors: &[Director]) -> Result<Vec<usize>, TopologyError> {
        let known = || directors.iter().map(|d| d.name.as_str()).collect::<Vec<_>>().join(", ");
        if self.directors.len() < 2 {
            return error(
                "ha.directors",
                format!(
                    "a fail-over group needs at least two directors, got {} (directors are: {})",
                    self.directors.len(),
                    known()
                ),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn directors() -> Vec<Director> {
        ["lb1", "lb2", "lb3"]
            .iter()
            .enumerate()
            .map(|(k, n)| Director {
                name: (*n).to_owned(),
                address: format!("10.0.0.{}", k + 2).parse().unwrap(),
                segment: "lan".into(),
                external: Default::default(),
                external_out: None,
                internal: Default::default(),
                internal_in: None,
                cpu_per_packet_us: 0.0,
                cpu_backlog_packets: None,
                timeouts: Default::default(),
                expire_nodest_conn: false,
                expire_quiescent_template: false,
                services: Vec::new(),
            })
            .collect()
    }

    fn ha(text: &str) -> Ha {
        ron::from_str(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    fn ha_err(text: &str) -> TopologyError {
        ha(text).config(&directors()).unwrap_err()
    }

    #[test]
    fn defaults_are_the_tools() {
        let c = ha(r#"(directors: ["lb1", "lb2"], failover: Vrrp())"#).config(&directors()).unwrap();
        assert_eq!(c.members, [0, 1]);
        assert_eq!(c.failover, sim::Failover::Vrrp(sim::VrrpConfig::default()));
        assert_eq!(c.sync, None);
        assert_eq!(c.latency, lvs_sched::Duration::from_micros(100));
        let c = ha(r#"(directors: ["lb2", "lb1"], failover: Heartbeat(), sync: Some(()))"#)
            .config(&directors())
            .unwrap();
        assert_eq!(c.members, [1, 0]);
        assert_eq!(c.failover, sim::Failover::Heartbeat(sim::HeartbeatConfig::default()));
        assert_eq!(c.sync, Some(sim::SyncConfig::default()));
        let c = ha(r#"(directors: ["lb1", "lb2"], failover: ActiveActive())"#).config(&directors()).unwrap();
        assert_eq!(c.failover, sim::Failover::ActiveActive(sim::SaruConfig::default()));
        assert_eq!(default_priorities(5), [150, 100, 50, 49, 48]);

        let check: HealthCheck = ron::from_str("()").unwrap();
        assert_eq!(check.config(), sim::HealthCheckConfig::ldirectord());
        let check: HealthCheck = ron::from_str("(checker: keepalived)").unwrap();
        assert_eq!(check.config(), sim::HealthCheckConfig::keepalived());
    }

    #[test]
    fn every_field_is_read_in_its_unit() {
        let c = ha(r#"(
            directors: ["lb1", "lb2", "lb3"],
            failover: Vrrp(advert_int_s: 0.5, version: 3, priorities: Some([200, 150, 100]), preempt: false,
                           preempt_delay_s: 30.0, interfaces: [External, Internal], garp_delay_ms: 20.0),
            sync: Some(Sync(mode: peer_to_peer, threshold: 2, period: 10, max_len: 1000, version: 0,
                            flush_s: 0.5, latency_ms: 0.3)),
            latency_ms: 0.2,
        )"#)
        .config(&directors())
        .unwrap();
        let sim::Failover::Vrrp(v) = &c.failover else { panic!("{c:?}") };
        assert_eq!(v.advert_int, lvs_sched::Duration::from_millis(500));
        assert_eq!((v.version, v.preempt, v.priorities.as_slice()), (3, false, &[200, 150, 100][..]));
        assert_eq!(v.preempt_delay, lvs_sched::Duration::from_secs(30));
        assert_eq!(v.interfaces, [sim::Side::External, sim::Side::Internal]);
        assert_eq!(v.garp_delay, lvs_sched::Duration::from_millis(20));
        let s = c.sync.unwrap();
        assert_eq!(
            (s.mode, s.threshold, s.period, s.max_len, s.version),
            (sim::SyncMode::PeerToPeer, 2, 10, 1000, 0)
        );
        assert_eq!(
            (s.flush, s.latency),
            (lvs_sched::Duration::from_millis(500), lvs_sched::Duration::from_micros(300))
        );
        assert_eq!(c.latency, lvs_sched::Duration::from_micros(200));

        let c = ha(r#"(directors: ["lb1", "lb2"], failover: ActiveActive(by: source_address, blocks: 64,
            keepalive_s: 0.5, deadtime_s: 3.0, warntime_s: 1.0, initdead_s: 10.0, nice_failback: true,
            media: [Lan(Internal), Dedicated], deadping_s: 5.0, takeover_s: 0.25,
            ping_nodes: [(name: "gw", address: "10.0.0.254", side: External)]))"#)
        .config(&directors())
        .unwrap();
        let sim::Failover::ActiveActive(a) = &c.failover else { panic!("{c:?}") };
        assert_eq!((a.by, a.blocks), (sim::SplitBy::SourceAddress, 64));
        let h = &a.heartbeat;
        assert_eq!(h.keepalive, lvs_sched::Duration::from_millis(500));
        assert_eq!(
            (h.deadtime, h.warntime, h.initdead),
            (
                lvs_sched::Duration::from_secs(3),
                lvs_sched::Duration::from_secs(1),
                lvs_sched::Duration::from_secs(10)
            )
        );
        assert!(h.nice_failback);
        assert_eq!(h.media, [sim::Medium::Lan(sim::Side::Internal), sim::Medium::Dedicated]);
        assert_eq!(h.ping_nodes[0].side, sim::Side::External);
        assert_eq!(
            (h.deadping, h.takeover),
            (lvs_sched::Duration::from_secs(5), lvs_sched::Duration::from_millis(250))
        );

        let check: HealthCheck = ron::from_str(
            r#"(checker: keepalived, kind: Negotiate(request: "/health.html", receive: Some("OK"), demand_ms: 2.5),
                interval_s: Some(3.0), timeout_s: Some(1.5), retries: Some(2), delay_before_retry_s: Some(0.5),
                quiescent: Some(true))"#,
        )
        .unwrap();
        check.check("c").unwrap();
        let c = check.config();
        assert_eq!(c.kind, sim::CheckKind::Negotiate { demand: lvs_sched::Duration::from_micros(2500) });
        assert_eq!(
            (c.interval, c.timeout),
            (lvs_sched::Duration::from_secs(3), lvs_sched::Duration::from_millis(1500))
        );
        assert_eq!((c.retries, c.delay_before_retry), (2, Some(lvs_sched::Duration::from_millis(500))));
        assert_eq!((c.checker, c.on_failure), (sim::Checker::Keepalived, sim::OnFailure::Quiesce));
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (r#"(directors: ["lb1"], failover: Vrrp())"#, "ha.directors", "at least two"),
            (
                r#"(directors: ["lb1", "lb9"], failover: Vrrp())"#,
                "ha.directors[1]",
                "no director named \"lb9\"",
            ),
            (r#"(directors: ["lb1", "lb1"], failover: Vrrp())"#, "ha.directors[1]", "twice"),
            (
                r#"(directors: ["lb1", "lb2"], failover: Vrrp(priorities: Some([150])))"#,
                "ha.failover.priorities",
                "1 priorities for 2",
            ),
            (
                r#"(directors: ["lb1", "lb2"], failover: Vrrp(priorities: Some([255, 100])))"#,
                "ha.failover.priorities[0]",
                "owner",
            ),
            (
                r#"(directors: ["lb1", "lb2"], failover: Vrrp(advert_int_s: 0.5))"#,
                "ha.failover.advert_int_s",
                "whole seconds",
            ),
            (r#"(directors: ["lb1", "lb2"], failover: Vrrp(version: 4))"#, "ha.failover.version", "2 or 3"),
            (
                r#"(directors: ["lb1", "lb2"], failover: Vrrp(virtual_router_id: 0))"#,
                "ha.failover.virtual_router_id",
                "1 to 255",
            ),
            (
                r#"(directors: ["lb1", "lb2"], failover: Vrrp(interfaces: []))"#,
                "ha.failover.interfaces",
                "needs an interface",
            ),
            (
                r#"(directors: ["lb1", "lb2"], failover: Vrrp(auth_pass: Some("far too long")))"#,
                "ha.failover.auth_pass",
                "not a valid",
            ),
            (
                r#"(directors: ["lb1", "lb2"], failover: Vrrp(auth_pass: Some("toolong99")))"#,
                "ha.failover.auth_pass",
                "8 characters",
            ),
            (
                r#"(directors: ["lb1", "lb2"], failover: Vrrp(version: 3, auth_pass: Some("x")))"#,
                "ha.failover.auth_pass",
                "version 3",
            ),
            (
                r#"(directors: ["lb1", "lb2"], failover: Heartbeat(deadtime_s: 1.0))"#,
                "ha.failover.deadtime_s",
                "longer than keepalive",
            ),
            (
                r#"(directors: ["lb1", "lb2"], failover: Heartbeat(warntime_s: 40.0))"#,
                "ha.failover.warntime_s",
                "between",
            ),
            (
                r#"(directors: ["lb1", "lb2"], failover: Heartbeat(initdead_s: 20.0))"#,
                "ha.failover.initdead_s",
                "shorter",
            ),
            (r#"(directors: ["lb1", "lb2"], failover: Heartbeat(media: []))"#, "ha.failover.media", "medium"),
            (
                r#"(directors: ["lb1", "lb2"], failover: Heartbeat(media: [Lan(External), Lan(External)]))"#,
                "ha.failover.media[1]",
                "twice",
            ),
            (
                r#"(directors: ["lb1", "lb2"], failover: Heartbeat(keepalive_s: -1.0))"#,
                "ha.failover.keepalive_s",
                ">= 0",
            ),
            (
                r#"(directors: ["lb1", "lb2"], failover: ActiveActive(blocks: 100))"#,
                "ha.failover.blocks",
                "power of two",
            ),
            (
                r#"(directors: ["lb1", "lb2", "lb3"], failover: ActiveActive(blocks: 2))"#,
                "ha.failover.blocks",
                "at least one per director",
            ),
            (
                r#"(directors: ["lb1", "lb2"], failover: Vrrp(), sync: Some((version: 2)))"#,
                "ha.sync.version",
                "0 or 1",
            ),
            (
                r#"(directors: ["lb1", "lb2"], failover: Vrrp(), sync: Some((threshold: 50)))"#,
                "ha.sync.threshold",
                "below period",
            ),
            (
                r#"(directors: ["lb1", "lb2"], failover: Vrrp(), sync: Some((max_len: 20)))"#,
                "ha.sync.max_len",
                "at least one connection",
            ),
            (
                r#"(directors: ["lb1", "lb2"], failover: Vrrp(), sync: Some((flush_s: 0.0)))"#,
                "ha.sync.flush_s",
                "> 0",
            ),
            (r#"(directors: ["lb1", "lb2"], failover: Vrrp(), latency_ms: -2.0)"#, "ha.latency_ms", ">= 0"),
            (
                r#"(directors: ["lb1", "lb2"], failover: Vrrp(), external_interface: "eth 0")"#,
                "ha.external_interface",
                "not a valid",
            ),
            (r#"(directors: ["lb1", "lb2"], failover: Vrrp(), vip_prefix: 33)"#, "ha.vip_prefix", "1 to 32"),
        ];
        for (text, path, words) in cases {
            let e = ha_err(text);
            assert_eq!(e.path, path, "{text}: {e}");
            assert!(e.message.contains(words), "{text}: {e}");
        }
        // Period 0 (sync once) takes any threshold.
        assert!(
            ha(r#"(directors: ["lb1", "lb2"], failover: Vrrp(), sync: Some((threshold: 9, period: 0)))"#)
                .config(&directors())
                .is_ok()
        );

        let check = |text: &str| ron::from_str::<HealthCheck>(text).unwrap().check("c").unwrap_err();
        assert_eq!(check("(interval_s: Some(0.0))").path, "c.interval_s");
        assert_eq!(check("(timeout_s: Some(-1.0))").path, "c.timeout_s");
        assert_eq!(check(r#"(kind: Negotiate(digest: Some("abc")))"#).path, "c.kind.digest");
        assert_eq!(check(r#"(kind: Negotiate(request: "a b"))"#).path, "c.kind.request");
        assert_eq!(check(r#"(kind: Negotiate(receive: Some("say \"hi\"")))"#).path, "c.kind.receive");
        assert_eq!(check("(kind: Negotiate(demand_ms: -1.0))").path, "c.kind.demand_ms");
    }
}
