//! High availability around LVS, in virtual time: real-server health checks as ldirectord,
//! keepalived and piranha's nanny perform them, director fail-over by heartbeat (or
//! piranha's pulse, the same liveness rule) or VRRP (keepalived), and Saru-style
//! active-active directors. The IPVS connection synchronisation daemon is in
//! [`lvs_ipvs::sync`].
//!
//! Everything here is a state machine that never reads a clock: time comes in as `now`,
//! and each machine says when it next wants to run (`next_time`). The simulation
//! (`model::sim::ha`) drives them and carries their messages.
//!
//! # Module map
//! - this file: the configuration of all of it (what a scenario sets), with the tools'
//!   defaults.
//! - [`check`]: one health checker per (director, service, real server): ldirectord,
//!   keepalived and nanny ([`HealthCheckConfig::nanny`]) timing.
//! - [`vrrp`]: a VRRP router (RFC 3768/5798 as keepalived runs it).
//! - [`heartbeat`]: a heartbeat node (keepalives, deadtime, warntime, initdead,
//!   nice_failback) and ipfail's ping-node quorum.
//! - [`pulse`]: piranha's pulse, as a heartbeat configuration
//!   ([`HeartbeatConfig::pulse`]).
//! - [`saru`]: the active-active split of the connection space into blocks.
//! - [`group`]: a fail-over group: its members' state machines, the messages between them
//!   (which links they cross), and who holds the VIP.

pub mod check;
pub mod group;
pub mod heartbeat;
pub mod pulse;
pub mod saru;
pub mod vrrp;

#[cfg(test)]
mod testing;

pub use lvs_ipvs::sync::{SyncConfig, SyncMode};
use lvs_sched::Duration;

/// Which tool checks the real servers: it decides the defaults and what is exported.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Checker {
    /// ldirectord (`checkinterval`, `checktimeout`/`negotiatetimeout`, `checkcount`,
    /// `quiescent`, `fallback`): a failed check is retried at the next interval.
    #[default]
    Ldirectord,
    /// keepalived's checkers (`delay_loop`, `connect_timeout`, `retry`,
    /// `delay_before_retry`, `inhibit_on_failure`, `sorry_server`).
    Keepalived,
    /// Red Hat piranha's `nanny`, one per real server, started by `lvsd` from lvs.cf
    /// (`timeout`, `reentry`, `quiesce_server`, `send`/`expect`/`send_program`): see
    /// [`HealthCheckConfig::nanny`].
    Nanny,
}

/// When a checker starts its next check (docs/ha-timing.md: measured against the real
/// daemons).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Schedule {
    /// ldirectord (`fork = no`): a director checks all its real servers one after the
    /// other, each check starting when the previous one ended, then sleeps `interval`
    /// (`_ld_main_check_all()`, `sleep $CHECKINTERVAL`): [`check::Round`].
    #[default]
    Round,
    /// `interval` after the previous check of this real server ended (its answer, its
    /// refusal or its timeout), whatever the others do: keepalived (`epilog()` arms the
    /// next check `delay_loop` after a check finished) and nanny (its `run()` loop sleeps
    /// `interval` after each check: nanny.c, piranha 0.8.6, `wakeup = now + interval`
    /// after `pinger()` returns). nanny's first check is at its start.
    AfterCheck,
}

/// What a health check does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckKind {
    /// Open a TCP connection to the real server's port (ldirectord `checktype = connect`,
    /// keepalived `TCP_CHECK`). A server that accepts but never answers passes.
    Connect,
    /// Request a page and compare the answer with a string or a digest (ldirectord
    /// `checktype = negotiate`, keepalived `HTTP_GET`): the request is real work on the
    /// real server (`demand` of CPU at speed 1), so a hung or overloaded server fails it
    /// when the answer takes longer than the timeout.
    Negotiate {
        /// CPU the page costs the real server.
        demand: Duration,
    },
}

/// What the checker does to a real server that fails.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnFailure {
    /// Weight 0 (ldirectord `quiescent = yes`, keepalived `inhibit_on_failure`): its
    /// established connections go on, no new ones come.
    #[default]
    Quiesce,
    /// `ipvsadm -d` (ldirectord `quiescent = no`, keepalived's default): packets of its
    /// connections are dropped (or, with `expire_nodest_conn`, the entries expire).
    Remove,
}

/// Health checking of one virtual service's real servers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HealthCheckConfig {
    /// Which tool.
    pub checker: Checker,
    /// Connect or negotiate.
    pub kind: CheckKind,
    /// From the end of a check of a real server to the start of the next (keepalived
    /// `delay_loop`); ldirectord's `checkinterval` is the sleep after its round over every
    /// real server ([`check::Round`]).
    pub interval: Duration,
    /// A check not answered in this long has failed (`checktimeout`/`negotiatetimeout`,
    /// `connect_timeout`).
    pub timeout: Duration,
    /// Failed checks beyond the first before a real server that was up is declared down
    /// (keepalived `retry`; ldirectord `failurecount` − 1).
    pub retries: u32,
    /// Delay between a failed check and its retry (keepalived `delay_before_retry`);
    /// `None`: the retry waits for the next interval (ldirectord).
    pub delay_before_retry: Option<Duration>,
    /// Quiesce or remove a failed real server; either way it is restored (its configured
    /// weight) after `rise` consecutive successful checks.
    pub on_failure: OnFailure,
    /// ldirectord's round over a director's real servers, or `interval` after each check
    /// of this real server (keepalived, nanny).
    pub schedule: Schedule,
    /// Consecutive successful checks a DOWN real server needs to be restored: 1
    /// (ldirectord, keepalived: the first success), nanny's `reentry / timeout` (integer
    /// division, at least 1). At least 1.
    pub rise: u32,
    /// nanny's slow start: a server it brings in (at start-up, or back after a failure)
    /// gets weight `max(weight >> 5, 1)`, doubled (up to its weight) at every passing
    /// check whose count since the last failure is a multiple of `20 / interval` in
    /// whole seconds (every check with an interval over 20 s): nanny.c `run()` and
    /// `adjustWeight()`, with `load_monitor = none`. Off for ldirectord and keepalived.
    pub weight_ramp: bool,
    /// The "sorry" server (ldirectord `fallback`, keepalived `sorry_server`), added with
    /// weight 1 when every real server of the service is down and deleted when one
    /// comes back.
    pub fallback: Option<crate::model::DestConfig>,
}

impl HealthCheckConfig {
    /// ldirectord's defaults: connect checks every 10 s, a 5 s timeout, declared down on
    /// the first failure (`checkcount = 1`), quiescent.
    pub fn ldirectord() -> Self {
        HealthCheckConfig {
            checker: Checker::Ldirectord,
            kind: CheckKind::Connect,
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(5),
            retries: 0,
            delay_before_retry: None,
            on_failure: OnFailure::Quiesce,
            schedule: Schedule::Round,
            rise: 1,
            weight_ramp: false,
            fallback: None,
        }
    }

    /// keepalived's defaults: `delay_loop 60`, `connect_timeout 5`, `retry 1`,
    /// `delay_before_retry 1` (a `TCP_CHECK`'s, see [`keepalived_delay_before_retry`]),
    /// a failed server removed.
    pub fn keepalived() -> Self {
        let kind = CheckKind::Connect;
        HealthCheckConfig {
            checker: Checker::Keepalived,
            kind,
            interval: Duration::from_secs(60),
            timeout: Duration::from_secs(5),
            retries: 1,
            delay_before_retry: Some(keepalived_delay_before_retry(kind)),
            on_failure: OnFailure::Remove,
            schedule: Schedule::AfterCheck,
            rise: 1,
            weight_ramp: false,
            fallback: None,
        }
    }

    /// piranha's nanny as `lvsd` starts it from lvs.cf's defaults (`timeout = 10`,
    /// `reentry = 180`, `quiesce_server = 0`; lvsconfig.c `lvsInitVirtualServer()`,
    /// piranha 0.8.6). lvsd passes lvs.cf's `timeout` as nanny's `-t` (lvsd.c
    /// `startMonitor()`), which nanny uses both as the time between checks and as the
    /// connect and read timeout of one check (nanny.c `run()` → `pinger(..., interval,
    /// ...)`), so `interval == timeout`; a check starts `interval` after the previous one
    /// ended ([`Schedule::AfterCheck`]). The first failed check of an active server takes
    /// it out (no retries); it is put back when `countThresh = reentry / interval`
    /// consecutive checks have succeeded (`rise` 18 here). `quiesce_server = 0` removes
    /// it (`ipvsadm -d`), 1 sets its weight to 0.
    pub fn nanny() -> Self {
        HealthCheckConfig {
            checker: Checker::Nanny,
            kind: CheckKind::Connect,
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(10),
            retries: 0,
            delay_before_retry: None,
            on_failure: OnFailure::Remove,
            schedule: Schedule::AfterCheck,
            rise: 18,
            weight_ramp: true,
            fallback: None,
        }
    }

    /// nanny's `rise` for lvs.cf's `reentry` and `timeout` (whole seconds, as lvs.cf
    /// writes them): `countThresh = reentryTime / interval` (nanny.c `main()`), and a
    /// server comes back on the check that makes the count reach it, so 0 counts as 1.
    pub fn nanny_rise(reentry_s: u32, timeout_s: u32) -> u32 {
        (reentry_s / timeout_s.max(1)).max(1)
    }
}

/// keepalived 2.2.7's `delay_before_retry` when none is written: 3 s for `HTTP_GET` (a
/// negotiate check: check_http.c sets `default_delay_before_retry = 3 * TIMER_HZ`), 1 s
/// for `TCP_CHECK` (check_api.c's default).
pub fn keepalived_delay_before_retry(kind: CheckKind) -> Duration {
    match kind {
        CheckKind::Connect => Duration::from_secs(1),
        CheckKind::Negotiate { .. } => Duration::from_secs(3),
    }
}

/// A director-side interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Side {
    /// Towards the clients (the VIP's network).
    External,
    /// Towards the real servers.
    Internal,
}

/// A medium heartbeat's keepalives travel on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Medium {
    /// A serial cable or crossover link between the directors (`serial`, `bcast eth2`):
    /// works while both directors are up.
    Dedicated,
    /// One of the directors' network interfaces (`bcast eth0`): works while both
    /// directors' links on that side are up.
    Lan(Side),
}

/// A ping node of ipfail: a router or host a director pings through one interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PingNode {
    /// Name, for reports and exports.
    pub name: String,
    /// Its address, for exports.
    pub address: std::net::IpAddr,
    /// Which interface reaches it.
    pub side: Side,
}

/// heartbeat's ha.cf timing and fail-back settings.
#[derive(Clone, Debug, PartialEq)]
pub struct HeartbeatConfig {
    /// Time between keepalives (`keepalive`, default 2 s).
    pub keepalive: Duration,
    /// A peer silent this long is declared dead and its resources are taken over
    /// (`deadtime`, default 30 s).
    pub deadtime: Duration,
    /// A peer silent this long is warned about in the log (`warntime`, default 10 s).
    pub warntime: Duration,
    /// At start-up, how long to wait for a peer before declaring it dead (`initdead`,
    /// default 120 s).
    pub initdead: Duration,
    /// `nice_failback on` (`auto_failback off`): a returning primary does not take its
    /// resources back. Off (the default here, heartbeat's `auto_failback on`): it does.
    pub nice_failback: bool,
    /// What the keepalives travel on; any working medium keeps a peer alive.
    pub media: Vec<Medium>,
    /// ipfail's ping nodes (`ping` lines, `respawn hacluster ipfail`): a director that
    /// reaches fewer of them than its peer gives its resources up. Empty: no ipfail.
    pub ping_nodes: Vec<PingNode>,
    /// A ping node silent this long is dead (`deadping`, default 30 s); pings are sent
    /// every `keepalive`.
    pub deadping: Duration,
    /// Time the resource scripts take to take resources over (IPaddr, ldirectord start)
    /// or give them up.
    pub takeover: Duration,
}

impl Default for HeartbeatConfig {
    fn default() -> Self {
        HeartbeatConfig {
            keepalive: Duration::from_secs(2),
            deadtime: Duration::from_secs(30),
            warntime: Duration::from_secs(10),
            initdead: Duration::from_secs(120),
            nice_failback: false,
            media: vec![Medium::Dedicated],
            ping_nodes: Vec::new(),
            deadping: Duration::from_secs(30),
            takeover: Duration::from_secs(1),
        }
    }
}

/// keepalived's `vrrp_instance` settings (one instance, or a `vrrp_sync_group` of one per
/// interface that fails over together).
#[derive(Clone, Debug, PartialEq)]
pub struct VrrpConfig {
    /// `advert_int` (default 1 s).
    pub advert_int: Duration,
    /// `priority` of each member, in the group's member order (1..=254; 255 owns the
    /// address).
    pub priorities: Vec<u8>,
    /// Preemption (keepalived's default; `nopreempt` turns it off): a higher-priority
    /// backup takes the VIP from a lower-priority master.
    pub preempt: bool,
    /// `preempt_delay`: after start-up, a backup waits this long before preempting.
    pub preempt_delay: Duration,
    /// The interfaces with an instance: adverts are sent on each, and a failure of any
    /// of them is a fault of the sync group (`track_interface`).
    pub interfaces: Vec<Side>,
    /// VRRP version 2 (keepalived's default) or 3: the skew time is
    /// `(256 − priority) / 256` s in version 2, that fraction of `advert_int` in 3.
    pub version: u8,
    /// `vrrp_garp_master_delay`-free part: time for the first gratuitous ARP to update the
    /// upstream router after a transition to MASTER.
    pub garp_delay: Duration,
}

impl Default for VrrpConfig {
    fn default() -> Self {
        VrrpConfig {
            advert_int: Duration::from_secs(1),
            priorities: vec![150, 100],
            preempt: true,
            preempt_delay: Duration::ZERO,
            interfaces: vec![Side::External],
            version: 2,
            garp_delay: Duration::ZERO,
        }
    }
}

/// How Saru splits the connection space.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SplitBy {
    /// Blocks of client source ports.
    #[default]
    SourcePort,
    /// Blocks of client source addresses.
    SourceAddress,
}

/// Saru active-active directors: all share the VIP and its MAC, every packet reaches all
/// of them, and each accepts only the blocks of the connection space it owns.
#[derive(Clone, Debug, PartialEq)]
pub struct SaruConfig {
    /// Source port or source address blocks.
    pub by: SplitBy,
    /// Number of blocks (a power of two; 512 by default).
    pub blocks: u32,
    /// Membership: heartbeat among the directors; a director declared dead has its
    /// blocks re-divided among the others, one that joins takes its share.
    pub heartbeat: HeartbeatConfig,
}

impl Default for SaruConfig {
    fn default() -> Self {
        SaruConfig { by: SplitBy::SourcePort, blocks: 512, heartbeat: HeartbeatConfig::default() }
    }
}

/// How a fail-over group decides who serves the VIP.
#[derive(Clone, Debug, PartialEq)]
pub enum Failover {
    /// heartbeat (with ipfail when ping nodes are given): the first member is the
    /// primary.
    Heartbeat(HeartbeatConfig),
    /// keepalived's VRRP.
    Vrrp(VrrpConfig),
    /// Saru: every member serves its share.
    ActiveActive(SaruConfig),
}

/// A fail-over (or active-active) group of directors sharing virtual services.
#[derive(Clone, Debug, PartialEq)]
pub struct HaConfig {
    /// The member directors (indices into `ClusterConfig::directors`), the primary (or
    /// heartbeat's first node) first. Every member has the same virtual services.
    pub members: Vec<usize>,
    /// heartbeat, VRRP or active-active.
    pub failover: Failover,
    /// Connection synchronisation between the members; `None`: none (connections of a
    /// failed director are lost).
    pub sync: Option<SyncConfig>,
    /// One-way delay of the messages between members (keepalives, adverts).
    pub latency: Duration,
}
