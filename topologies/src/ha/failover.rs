//! [`Failover`]: heartbeat, VRRP (keepalived), piranha's pulse or Saru active-active, every
//! field in
//! human units with its tool's default (sim-core's `HeartbeatConfig`, `VrrpConfig`,
//! `SaruConfig`), and its conversion into sim-core's `Failover`, checked.

use serde::{Deserialize, Serialize};
use sim_core::ha as sim;

use super::{Medium, PingNode, Side, SplitBy, duration, error, in_ms, secs, word};
use crate::TopologyError;

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
    /// Red Hat piranha's `pulse` (lvs.cf): a primary and a backup LVS router exchanging
    /// UDP heartbeats; the backup takes the VIPs over (`lvsd`, `send_arp`) when the
    /// primary is silent for `deadtime`, and keeps them when it returns. The simulator
    /// runs it as heartbeat with `HeartbeatConfig::pulse` (sim-core `ha/pulse.rs`). The
    /// heartbeats go to the directors' addresses (lvs.cf's `primary`, `backup`), on the
    /// internal network.
    Pulse {
        /// Time between heartbeats \[s\] (lvs.cf `keepalive`, whole seconds, default 2).
        #[serde(default = "pulse_keepalive_s")]
        keepalive_s: f64,
        /// The partner is dead after this long without a heartbeat \[s\] (lvs.cf
        /// `deadtime`, whole seconds, default 5).
        #[serde(default = "pulse_deadtime_s")]
        deadtime_s: f64,
        /// Exports: the UDP port of the heartbeats (lvs.cf `heartbeat_port`, default 539).
        #[serde(default = "heartbeat_port")]
        heartbeat_port: u16,
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
/// lvs.cf's defaults (lvsconfig.c `lvsReadConfig()`: `keepAliveTime = 2`, `deadTime =
/// 5`, `heartbeatPort = 539`).
pub const PULSE_KEEPALIVE_S: u32 = 2;
/// See [`PULSE_KEEPALIVE_S`].
pub const PULSE_DEADTIME_S: u32 = 5;
fn pulse_keepalive_s() -> f64 {
    PULSE_KEEPALIVE_S.into()
}
fn pulse_deadtime_s() -> f64 {
    PULSE_DEADTIME_S.into()
}
fn heartbeat_port() -> u16 {
    539
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
        // heartbeat's init_config() refuses to start with "Dead time [..] is too small
        // compared to keeplive" (and the same for deadping with ping nodes).
        if deadtime.as_nanos() <= 2 * keepalive.as_nanos() {
            return error(
                f("deadtime_s"),
                format!(
                    "{} s must be more than twice keepalive_s ({} s): heartbeat refuses to start otherwise",
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
        let deadping = duration(&f("deadping_s"), self.deadping_s, 1.0, false)?;
        if !self.ping_nodes.is_empty() && deadping.as_nanos() <= 2 * keepalive.as_nanos() {
            return error(
                f("deadping_s"),
                format!(
                    "{} s must be more than twice keepalive_s ({} s): heartbeat refuses to start otherwise",
                    self.deadping_s, self.keepalive_s
                ),
            );
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
            deadping,
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
            Failover::Pulse { keepalive_s, deadtime_s, heartbeat_port } => {
                pulse(p, members, *keepalive_s, *deadtime_s, *heartbeat_port).map(sim::Failover::Heartbeat)
            }
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
                    "{} given for {members} directors: one priority per director, in member order",
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

/// pulse's settings, checked: a primary and a backup, whole seconds (lvs.cf's numbers are
/// integers), a deadtime longer than the keepalive.
fn pulse(
    p: &str,
    members: usize,
    keepalive_s: f64,
    deadtime_s: f64,
    port: u16,
) -> Result<sim::HeartbeatConfig, TopologyError> {
    let f = |name: &str| format!("{p}.{name}");
    if members != 2 {
        return error(
            format!("{}directors", p.trim_end_matches("failover")),
            format!("pulse runs a primary and a backup LVS router: 2 directors, got {members}"),
        );
    }
    for (name, x) in [("keepalive_s", keepalive_s), ("deadtime_s", deadtime_s)] {
        if !(x.fract() == 0.0 && (1.0..=3600.0).contains(&x)) {
            return error(f(name), format!("{x}: lvs.cf takes whole seconds, 1 to 3600"));
        }
    }
    if deadtime_s <= keepalive_s {
        return error(
            f("deadtime_s"),
            format!(
                "{deadtime_s} s must be longer than keepalive_s ({keepalive_s} s): a live partner would be declared dead"
            ),
        );
    }
    if port == 0 {
        return error(f("heartbeat_port"), "0: a UDP port is 1 to 65535");
    }
    Ok(sim::HeartbeatConfig::pulse(
        secs(keepalive_s),
        secs(deadtime_s),
        sim::Medium::Lan(sim::Side::Internal),
    ))
}
