//! The typed configuration of a run, and its validation.
//!
//! The scenario format (crate `scenarios`) builds these; [`ClusterConfig::validate`]
//! refuses what cannot be simulated, with messages that name the part at fault.

use std::net::IpAddr;

use lvs_sched::{Duration, Forwarding, Protocol, SchedulerKind, SvcFlags};

use crate::arrival::ArrivalProcess;
use crate::cpu::CpuConfig;
use crate::dist::Dist;
use crate::link::ChannelConfig;
use lvs_ipvs::{ServiceKey, Sysctls};

use super::DestConfig;
use lvs_ipvs::tcp::Timeouts;

/// A whole run.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// Master seed.
    pub seed: u64,
    /// Arrivals stop at this time (T).
    pub duration: Duration,
    /// Connections arriving before this time are not measured (W).
    pub warmup: Duration,
    /// Keep running after the last client event until the IPVS table is empty too (every
    /// entry expired). LVS-REF-1 counts expiries; capacity planning does not need them.
    pub drain_ipvs: bool,
    /// Sampling interval of the time series; `None` for none.
    pub sample_interval: Option<Duration>,
    /// Maximum transmission unit of every network [bytes].
    pub mtu: u32,
    /// TCP retransmission: initial timeout for a SYN, then doubled on every retry.
    pub syn_rto: Duration,
    /// TCP retransmission: initial timeout for data, then doubled on every retry.
    pub data_rto: Duration,
    /// Retries before a connection is given up as dropped.
    pub max_retries: u32,
    /// The directors: one, or the members of an HA group ([`ClusterConfig::ha`]).
    pub directors: Vec<DirectorConfig>,
    /// The real servers.
    pub servers: Vec<ServerConfig>,
    /// Shared backend servers (databases, storage) of the three-tier layout.
    pub backends: Vec<BackendConfig>,
    /// The client populations.
    pub populations: Vec<PopulationConfig>,
    /// Changes made during the run, in any order (they happen at their times).
    pub actions: Vec<Action>,
    /// Changes to real servers themselves (background work, faults), in any order.
    pub server_events: Vec<ServerEvent>,
    /// Director faults and repairs, in any order.
    pub director_events: Vec<DirectorEvent>,
    /// A fail-over or active-active group of directors; `None`: each population's
    /// director serves it alone.
    pub ha: Option<crate::ha::HaConfig>,
    /// A router spreading the VIPs' packets over a tier of directors by ECMP; `None`:
    /// no tier.
    pub ecmp: Option<EcmpConfig>,
    /// Active feedback: a simulated feedbackd-agent on every real server reporting to a
    /// simulated feedbackd-master on every director; `None`: static weights.
    pub feedback: Option<FeedbackConfig>,
    /// How much the run keeps of each real server (see [`ServerDetail`]).
    pub server_detail: ServerDetail,
    /// How a connection's messages are simulated (see [`Exchange`]).
    pub exchange: Exchange,
}

/// How much a run keeps of each real server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
pub enum ServerDetail {
    /// [`ServerDetail::Full`] up to [`AUTO_DETAIL_SERVERS`] real servers, else
    /// [`ServerDetail::Aggregate`].
    #[default]
    Auto,
    /// Per server: a full response-time histogram and a time series at every sample.
    Full,
    /// Per server: counters and a compact response-time histogram; at every sample, the
    /// distribution across servers ([`crate::model::AcrossServers`]) instead of one entry a
    /// server.
    Aggregate,
}

/// [`ServerDetail::Auto`] keeps full detail up to this many real servers.
pub const AUTO_DETAIL_SERVERS: usize = 1000;

impl ServerDetail {
    /// Whether a run of `servers` real servers keeps full per-server detail.
    pub fn full(self, servers: usize) -> bool {
        match self {
            ServerDetail::Auto => servers <= AUTO_DETAIL_SERVERS,
            ServerDetail::Full => true,
            ServerDetail::Aggregate => false,
        }
    }
}

/// How a connection's messages are simulated. Both give the same results for the same
/// seed, bit for bit (a test runs every library scenario both ways).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Exchange {
    /// Where every hop of a message is ideal (no delay, no queue, no fault can change its
    /// fate), the whole exchange is applied at once; elsewhere message by message.
    #[default]
    Fast,
    /// Every message walks every stage of its path (the reference).
    PerMessage,
}

impl ClusterConfig {
    /// An empty run of `duration` with seed `seed` and Linux's TCP defaults (MTU 1500, a
    /// 1 s initial SYN timeout, a 200 ms minimum data timeout, 6 retries); no warm-up, no
    /// sampling, nothing after the last client event. Add directors, servers and
    /// populations with struct update syntax.
    pub fn new(seed: u64, duration: Duration) -> Self {
        ClusterConfig {
            seed,
            duration,
            warmup: Duration::ZERO,
            drain_ipvs: false,
            sample_interval: None,
            mtu: 1500,
            syn_rto: Duration::from_secs(1),
            data_rto: Duration::from_millis(200),
            max_retries: 6,
            directors: Vec::new(),
            servers: Vec::new(),
            backends: Vec::new(),
            populations: Vec::new(),
            actions: Vec::new(),
            server_events: Vec::new(),
            director_events: Vec::new(),
            ha: None,
            ecmp: None,
            feedback: None,
            server_detail: ServerDetail::Auto,
            exchange: Exchange::Fast,
        }
    }
}

/// A change to a real server during a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerEvent {
    /// When.
    pub at: Duration,
    /// The real server (index into [`ClusterConfig::servers`]).
    pub server: usize,
    /// What changes.
    pub change: ServerChange,
}

/// What a [`ServerEvent`] does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerChange {
    /// From now on this many CPU-bound background tasks (a batch job, a backup) share the
    /// processors with the requests; 0 ends them. They take no worker slot, and the cores
    /// look fully busy while they run.
    Background(u32),
    /// From now on a background load of this many millicores (another service on the
    /// host, a neighbour's steal time) runs ahead of the requests, which share the rest;
    /// 0 ends it. Less than all the cores.
    BackgroundLoad(u32),
    /// The host crashes: the requests it was serving are lost, and it answers nothing
    /// (not even a SYN) until it recovers.
    Crash,
    /// The service hangs: the host's TCP stack still accepts connections, but no request
    /// makes progress until it recovers.
    Hang,
    /// The host slows down to this many thousandths of its speed (1..=999).
    Slow(u32),
    /// The fault ends: a crashed host is back (empty: its old connections get resets), a
    /// hung one resumes, a slow one runs at full speed again.
    Recover,
}

impl ServerChange {
    /// A crash, a hang or a slow-down (what a health check may detect).
    pub fn is_fault(self) -> bool {
        matches!(self, ServerChange::Crash | ServerChange::Hang | ServerChange::Slow(_))
    }
}

/// A change to a director during a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DirectorEvent {
    /// When.
    pub at: Duration,
    /// The director (index into [`ClusterConfig::directors`]).
    pub director: usize,
    /// What changes.
    pub change: DirectorChange,
}

/// What a [`DirectorEvent`] does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DirectorChange {
    /// It dies: it forwards nothing, sends no keepalive or advert; its IPVS table is lost.
    Down,
    /// It boots again, with its configured services and an empty connection table; its
    /// fail-over daemon starts afresh.
    Up,
    /// Its link on this side fails (`false`) or is repaired (`true`).
    Link(crate::ha::Side, bool),
    /// An ECMP tier's member stops announcing the VIPs (BGP withdraw, gracefully, while
    /// it runs): the router takes it out of the group at once.
    Withdraw,
    /// An ECMP tier's member announces the VIPs: the router adds it to the group.
    Announce,
}

/// An ECMP tier: a router in front of several directors that all hold the same VIPs,
/// hashing each packet's flow to one of them as Linux does
/// (`fib_multipath_hash()`, `fib_select_multipath()`, resilient nexthop groups). Each
/// director keeps its own IPVS table; nothing is synced.
#[derive(Clone, Debug, PartialEq)]
pub struct EcmpConfig {
    /// The members (indices into [`ClusterConfig::directors`]), in the router's next-hop
    /// order.
    pub members: Vec<usize>,
    /// Members that do not announce the VIPs at the start (added later by an
    /// [`DirectorChange::Announce`]).
    pub standby: Vec<usize>,
    /// What the hash covers (`fib_multipath_hash_policy`).
    pub policy: HashPolicy,
    /// How a hash picks a next hop.
    pub selection: NexthopSelection,
    /// How long the router takes to notice that a member died (BFD detect time, or the
    /// BGP hold time): until then packets hashed to it are lost.
    pub detection: Duration,
}

/// `net.ipv4.fib_multipath_hash_policy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashPolicy {
    /// 0: source and destination addresses.
    L3,
    /// 1: addresses, protocol and ports.
    L3L4,
}

/// How the router maps a flow's hash to a live next hop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NexthopSelection {
    /// Hash-threshold (a multipath route, `fib_select_multipath()`): each next hop owns a
    /// contiguous range of the 31-bit hash, recomputed over the live ones
    /// (`fib_rebalance()`), so flows of surviving next hops move too.
    HashThreshold,
    /// A resilient next-hop group (`nexthop.c`) of this many buckets: a bucket moves only
    /// when its next hop leaves the group (or is over its share).
    Resilient {
        /// Buckets (`ip nexthop add ... type resilient buckets N`).
        buckets: u16,
    },
}

/// The feedback loop's settings: the agents', the master's and the link between them.
#[derive(Clone, Debug, PartialEq)]
pub struct FeedbackConfig {
    /// Each agent samples its server and reports this often.
    pub interval: Duration,
    /// The master's weight law.
    pub law: lvs_sched::feedback::LawConfig,
    /// The master quiesces (weight 0) the servers of an agent silent this long.
    pub quiesce_after: Duration,
    /// ... and removes them after this long.
    pub remove_after: Duration,
    /// The master re-reads the director's IPVS table this often (an operator's changes).
    pub rescan: Duration,
    /// An agent gives a silent master up after this long and reconnects; `None`: the
    /// agent's default, 3 intervals and at least 3 s.
    pub master_timeout: Option<Duration>,
    /// Agents and masters share a pre-shared key: every frame is authenticated.
    pub authenticated: bool,
    /// The TCP connection between an agent and a master.
    pub link: FeedbackLink,
}

/// The agent-master TCP connection: a one-way delay, and segment loss repaired by
/// retransmission (in order, so a loss delays what follows it too).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FeedbackLink {
    /// One-way delay.
    pub latency: Duration,
    /// Probability that one transmission of a segment is lost, in [0, 1).
    pub loss: f64,
    /// First retransmission timeout, doubled on every retry.
    pub rto: Duration,
    /// Retransmissions of a segment: when they are all lost too, the connection breaks
    /// (both ends see it close; the agent reconnects).
    pub max_retries: u32,
}

impl Default for FeedbackLink {
    fn default() -> Self {
        FeedbackLink {
            latency: Duration::from_micros(100),
            loss: 0.0,
            rto: Duration::from_millis(200),
            max_retries: 6,
        }
    }
}

impl Default for FeedbackConfig {
    /// The daemons' defaults.
    fn default() -> Self {
        FeedbackConfig {
            interval: Duration::from_secs(1),
            law: lvs_sched::feedback::LawConfig::default(),
            quiesce_after: Duration::from_secs(5),
            remove_after: Duration::from_secs(60),
            rescan: Duration::from_secs(5),
            master_timeout: None,
            authenticated: true,
            link: FeedbackLink::default(),
        }
    }
}

/// A change an operator (or a health checker, or a feedback master) makes during a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Action {
    /// When.
    pub at: Duration,
    /// Director (index).
    pub director: usize,
    /// Its service (index).
    pub service: usize,
    /// The real server (index into [`ClusterConfig::servers`]) of that service.
    pub server: usize,
    /// What changes.
    pub change: Change,
}

/// What an [`Action`] does to a real server of a service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// `ipvsadm -e ... -w W`: 0 quiesces it (no new connections; existing ones go on).
    Weight(u32),
    /// `ipvsadm -d`: new connections avoid it; packets of its existing connections are
    /// dropped (and with `expire_nodest_conn` their entries expire).
    Remove,
    /// `ipvsadm -a` again with this weight (IPVS revives it from its trash).
    Restore(u32),
}

/// A Linux director running IPVS.
#[derive(Clone, Debug)]
pub struct DirectorConfig {
    /// Name, for messages and reports.
    pub name: String,
    /// The L2 segment of its internal interface (DR real servers must be on it).
    pub segment: String,
    /// Its link to the clients' side (in: clients→director; out: director→clients).
    pub external: DuplexLink,
    /// Its link to the real servers' segment (out: director→servers; in: servers→director).
    pub internal: DuplexLink,
    /// CPU time spent forwarding one packet (softirq, IPVS, NAT rewriting); packets queue
    /// for it in FIFO order.
    pub cpu_per_packet: Duration,
    /// Packets that may wait for the CPU (`netdev_max_backlog`); `None` = unlimited.
    pub cpu_backlog_packets: Option<u64>,
    /// IPVS state timeouts.
    pub timeouts: Timeouts,
    /// The IPVS sysctls (`/proc/sys/net/ipv4/vs/`).
    pub sysctls: Sysctls,
    /// Its virtual services.
    pub services: Vec<ServiceConfig>,
    /// Its memory as the DoS defences see it; `None`: never short of memory.
    pub memory: Option<lvs_ipvs::Memory>,
    /// SYN floods aimed at its virtual services.
    pub syn_floods: Vec<super::dos::SynFloodConfig>,
}

impl DirectorConfig {
    /// A director with ideal links, no CPU cost, the kernel's default timeouts and
    /// sysctls, and these services.
    pub fn new(name: impl Into<String>, segment: impl Into<String>, services: Vec<ServiceConfig>) -> Self {
        DirectorConfig {
            name: name.into(),
            segment: segment.into(),
            external: DuplexLink::IDEAL,
            internal: DuplexLink::IDEAL,
            cpu_per_packet: Duration::ZERO,
            cpu_backlog_packets: None,
            timeouts: Timeouts::default(),
            sysctls: Sysctls::default(),
            services,
            memory: None,
            syn_floods: Vec::new(),
        }
    }
}

/// Both directions of a link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DuplexLink {
    /// Towards the director (external) / towards the real servers (internal)... see the
    /// field docs where the link is used.
    pub inbound: ChannelConfig,
    /// The other direction.
    pub outbound: ChannelConfig,
}

impl DuplexLink {
    /// No delay, no limit either way.
    pub const IDEAL: DuplexLink =
        DuplexLink { inbound: ChannelConfig::IDEAL, outbound: ChannelConfig::IDEAL };

    /// The same parameters both ways.
    pub fn symmetric(c: ChannelConfig) -> Self {
        DuplexLink { inbound: c, outbound: c }
    }
}

/// A virtual service.
#[derive(Clone, Debug)]
pub struct ServiceConfig {
    /// What it listens on.
    pub addr: ServiceKey,
    /// The name results give it (`services[NAME]` in a metric path); `None`: derived from
    /// `addr` by [`service_name`].
    pub name: Option<String>,
    /// Scheduler.
    pub scheduler: SchedulerKind,
    /// Scheduler and one-packet flags.
    pub flags: SvcFlags,
    /// Persistence timeout; `None` when not persistent.
    pub persistence: Option<Duration>,
    /// Persistence netmask (IPv4, host order) or IPv6 prefix length.
    pub netmask: u32,
    /// Real servers in `ipvsadm -a` order (IPVS scans them in reverse).
    pub dests: Vec<DestConfig>,
    /// Health checking of its real servers; `None`: none (a dead server keeps its
    /// weight).
    pub check: Option<crate::ha::HealthCheckConfig>,
}

impl ServiceConfig {
    /// A service on `addr` with these real servers: no flags, no persistence (netmask
    /// /32), no health check.
    pub fn new(addr: ServiceKey, scheduler: SchedulerKind, dests: Vec<DestConfig>) -> Self {
        ServiceConfig {
            addr,
            name: None,
            scheduler,
            flags: SvcFlags::default(),
            persistence: None,
            netmask: u32::MAX,
            dests,
            check: None,
        }
    }
}

/// A real server.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Name.
    pub name: String,
    /// Its address (RIP).
    pub address: IpAddr,
    /// The L2 segment it is on.
    pub segment: String,
    /// Its default gateway is this director (index): NAT requires it, because replies
    /// must pass the director to be rewritten.
    pub gateway: Option<usize>,
    /// Its own path to the clients, used by DR and TUN replies (out: to the clients).
    pub uplink: DuplexLink,
    /// Its processors.
    pub cpu: CpuConfig,
    /// The backend server (index into [`ClusterConfig::backends`]) its requests query.
    pub backend: Option<usize>,
}

impl ServerConfig {
    /// A real server `name` at `address` with processor `cpu`, on segment "lan" without a
    /// gateway, an ideal uplink and no backend (override with struct update syntax).
    pub fn new(name: String, address: IpAddr, cpu: CpuConfig) -> Self {
        ServerConfig {
            name,
            address,
            segment: "lan".into(),
            gateway: None,
            uplink: DuplexLink::IDEAL,
            cpu,
            backend: None,
        }
    }
}

/// A shared backend server (database, storage).
#[derive(Clone, Debug)]
pub struct BackendConfig {
    /// Name.
    pub name: String,
    /// One-way latency between a real server and it.
    pub latency: Duration,
    /// Its processors.
    pub cpu: CpuConfig,
}

/// What a population's connections carry.
#[derive(Clone, Debug)]
pub enum Transport {
    /// TCP connections of one or more request/response exchanges.
    Tcp {
        /// Requests per connection (rounded, at least 1).
        requests: Dist,
        /// Time between a response and the next request [s].
        think_time: Dist,
    },
    /// UDP flows of one or more request/response datagrams from one source port.
    Udp {
        /// Datagrams per flow (rounded, at least 1).
        requests: Dist,
        /// Time between a response and the next datagram [s].
        think_time: Dist,
        /// A client gives up on a datagram after this long (the flow is dropped).
        timeout: Duration,
    },
}

/// A client population.
#[derive(Clone, Debug)]
pub struct PopulationConfig {
    /// Name.
    pub name: String,
    /// When connections open.
    pub arrival: ArrivalProcess,
    /// The virtual IP they connect to.
    pub vip: IpAddr,
    /// The virtual port they connect to.
    pub port: u16,
    /// A firewall mark their packets carry (`iptables -t mangle ... -j MARK`); a service
    /// of that mark takes precedence over VIP:port, as in IPVS.
    pub fwmark: Option<u32>,
    /// Number of distinct client addresses (persistence and hashing schedulers see them).
    pub clients: u32,
    /// The first client address; the others follow it.
    pub first_client: IpAddr,
    /// One-way latency between a client and the director's external link, which is also
    /// where direct replies arrive.
    pub access_latency: Duration,
    /// TCP or UDP.
    pub transport: Transport,
    /// Request size [bytes of payload].
    pub request_bytes: Dist,
    /// Response size [bytes of payload].
    pub response_bytes: Dist,
    /// CPU demand of a request at a real server [s at speed 1].
    pub demand: Dist,
    /// CPU demand at the real server's backend [s at speed 1]; `None`: no backend query.
    pub backend_demand: Option<Dist>,
    /// A TCP client gives up waiting for a response after this long (it resets the
    /// connection, which counts as dropped); `None`: it waits for ever (a hung real
    /// server then holds its connections until it recovers or the run ends).
    pub response_timeout: Option<Duration>,
}

/// A service's name in results when its configuration gives none: `tcp-10.1.0.100-80`,
/// `udp-2001:db8::1-53`, `fwmark-5` (`fwmark6-5` for IPv6). Lower case, no spaces, so
/// that it can stand in a metric path (`services[tcp-10.1.0.100-80].loss_fraction`).
pub fn service_name(key: &ServiceKey) -> String {
    match key {
        ServiceKey::Addr { protocol, addr, port } => {
            format!("{}-{addr}-{port}", protocol.name().to_ascii_lowercase())
        }
        ServiceKey::Fwmark { mark, ipv6: false } => format!("fwmark-{mark}"),
        ServiceKey::Fwmark { mark, ipv6: true } => format!("fwmark6-{mark}"),
    }
}

/// A configuration that cannot be simulated: where, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{place}: {message}")]
pub struct ConfigError {
    /// The part at fault, e.g. `director "lb1" service TCP  10.0.0.1:80 real server "rs2"`.
    pub place: String,
    /// What is wrong.
    pub message: String,
}

fn err(place: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError { place: place.into(), message: message.into() }
}

/// The simulator's weight range: 0 ..= 65535. (ipvsadm 1.31 and the kernel take weights up
/// to 2^31 − 1, and a topology imported from `ipvsadm -S` keeps them for export; a run
/// refuses them.)
pub const MAX_WEIGHT: u32 = 65_535;

impl ClusterConfig {
    /// Checks everything the simulation relies on; the first problem found is returned.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.duration == Duration::ZERO {
            return Err(err("run", "duration must be > 0"));
        }
        if self.warmup >= self.duration {
            return Err(err(
                "run",
                format!("warm-up {} must be shorter than the duration {}", self.warmup, self.duration),
            ));
        }
        if self.sample_interval == Some(Duration::ZERO) {
            return Err(err("run", "sample interval must be > 0"));
        }
        if !(576..=65_535).contains(&self.mtu) {
            return Err(err("run", format!("mtu must be in 576..=65535, got {}", self.mtu)));
        }
        if self.directors.is_empty() {
            return Err(err("cluster", "at least one director is needed"));
        }
        if self.directors.len() > usize::from(u8::MAX) {
            return Err(err("cluster", format!("at most 255 directors, got {}", self.directors.len())));
        }
        let mut names = std::collections::BTreeSet::new();
        for s in &self.servers {
            if !names.insert(s.name.as_str()) {
                return Err(err(
                    format!("real server {:?}", s.name),
                    "a real server of that name exists already",
                ));
            }
            self.validate_server(s)?;
        }
        for b in &self.backends {
            check_cpu(&format!("backend {:?}", b.name), &b.cpu)?;
        }
        for (i, d) in self.directors.iter().enumerate() {
            self.validate_director(i, d)?;
            self.validate_dos(d)?;
        }
        for p in &self.populations {
            self.validate_population(p)?;
        }
        for a in &self.actions {
            self.validate_action(a)?;
        }
        self.validate_faults()?;
        for e in &self.server_events {
            let place = format!("server event at {}", e.at);
            let Some(s) = self.servers.get(e.server) else {
                return Err(err(place, format!("real server #{} does not exist", e.server)));
            };
            if let ServerChange::Slow(p) = e.change
                && !(1..=999).contains(&p)
            {
                return Err(err(
                    place,
                    format!(
                        "real server {:?}: a slow-down to {p}/1000 of its speed is not in 1..=999",
                        s.name
                    ),
                ));
            }
            if let ServerChange::BackgroundLoad(m) = e.change
                && m >= s.cpu.cores.saturating_mul(1000)
            {
                return Err(err(
                    place,
                    format!(
                        "a background load of {} cores would leave nothing of real server {:?}'s {} cores",
                        f64::from(m) / 1000.0,
                        s.name,
                        s.cpu.cores
                    ),
                ));
            }
        }
        if let Some(f) = &self.feedback {
            validate_feedback(f)?;
            self.validate_agents()?;
        }
        for e in &self.director_events {
            if e.director >= self.directors.len() {
                return Err(err(
                    format!("director event at {}", e.at),
                    format!("director #{} does not exist", e.director),
                ));
            }
        }
        if let Some((i, message)) = self.director_order_error() {
            return Err(err(format!("director event at {}", self.director_events[i].at), message));
        }
        if let Some(ha) = &self.ha {
            self.validate_ha(ha)?;
        }
        if let Some(e) = &self.ecmp {
            self.validate_ecmp(e)?;
        }
        for e in &self.director_events {
            let member = self.ecmp.as_ref().is_some_and(|t| t.members.contains(&e.director));
            if matches!(e.change, DirectorChange::Withdraw | DirectorChange::Announce) && !member {
                return Err(err(
                    format!("director event at {}", e.at),
                    format!(
                        "director {:?} is in no ECMP tier: only a tier's member withdraws or announces",
                        self.directors[e.director].name
                    ),
                ));
            }
        }
        Ok(())
    }

    /// An ECMP tier: existing, distinct members, none in an HA group, no NAT (the real
    /// servers' replies would have to come back through the director that has the
    /// entry, which their single gateway cannot follow), buckets within the kernel's
    /// bounds.
    fn validate_ecmp(&self, e: &EcmpConfig) -> Result<(), ConfigError> {
        let place = "ecmp";
        if e.members.len() < 2 {
            return Err(err(
                place,
                format!("an ECMP tier needs 2 or more directors, got {}", e.members.len()),
            ));
        }
        for (i, &m) in e.members.iter().enumerate() {
            let Some(d) = self.directors.get(m) else {
                return Err(err(place, format!("director #{m} does not exist")));
            };
            if e.members[..i].contains(&m) {
                return Err(err(place, format!("director {:?} is listed twice", d.name)));
            }
            if self.ha.as_ref().is_some_and(|h| h.members.contains(&m)) {
                return Err(err(place, format!("director {:?} is in the HA group too", d.name)));
            }
            if let Some(dest) = d.services.iter().flat_map(|s| &s.dests).find(|x| x.fwd == Forwarding::Masq) {
                return Err(err(
                    place,
                    format!(
                        "director {:?} forwards to real server #{} by NAT: an ECMP tier needs direct routing or tunnelling",
                        d.name, dest.server
                    ),
                ));
            }
        }
        if let Some(s) = e.standby.iter().find(|s| !e.members.contains(s)) {
            return Err(err(place, format!("standby director #{s} is not a member")));
        }
        if e.standby.len() >= e.members.len() {
            return Err(err(place, "at least one member must announce the VIPs at the start"));
        }
        if let NexthopSelection::Resilient { buckets } = e.selection
            && !(u32::from(buckets) >= e.members.len() as u32 && buckets <= 4096)
        {
            return Err(err(
                place,
                format!(
                    "{buckets} buckets: a resilient group needs one per member at least, and at most 4096 here"
                ),
            ));
        }
        Ok(())
    }

    /// An HA group: existing, distinct members with the same virtual services, and
    /// settings the tools would accept.
    fn validate_ha(&self, ha: &crate::ha::HaConfig) -> Result<(), ConfigError> {
        use crate::ha::Failover;
        let place = "ha";
        for (i, &m) in ha.members.iter().enumerate() {
            if m >= self.directors.len() {
                return Err(err(place, format!("member director #{m} does not exist")));
            }
            if ha.members[..i].contains(&m) {
                return Err(err(place, format!("director {:?} is a member twice", self.directors[m].name)));
            }
        }
        let need = if matches!(ha.failover, Failover::ActiveActive(_)) { 1 } else { 2 };
        if ha.members.len() < need {
            return Err(err(place, format!("a fail-over group needs at least {need} directors")));
        }
        let first = &self.directors[ha.members[0]];
        let addrs = |d: &DirectorConfig| d.services.iter().map(|s| s.addr).collect::<Vec<_>>();
        for &m in &ha.members[1..] {
            let d = &self.directors[m];
            if addrs(d) != addrs(first) {
                return Err(err(
                    format!("ha: director {:?}", d.name),
                    format!(
                        "its virtual services differ from {:?}'s: every member of the group must have the same \
                         ones, in the same order",
                        first.name
                    ),
                ));
            }
        }
        let positive = |what: &str, d: Duration| {
            if d == Duration::ZERO { Err(err(place, format!("{what} must be > 0"))) } else { Ok(()) }
        };
        match &ha.failover {
            Failover::Heartbeat(h) => validate_heartbeat(h)?,
            Failover::Vrrp(v) => {
                positive("advert_int", v.advert_int)?;
                if v.priorities.len() != ha.members.len() {
                    return Err(err(
                        place,
                        format!(
                            "{} VRRP priorities for {} member directors: give one per member",
                            v.priorities.len(),
                            ha.members.len()
                        ),
                    ));
                }
                if v.priorities.contains(&0) {
                    return Err(err(place, "a VRRP priority is 1..=255 (0 means 'stop being master')"));
                }
                if !matches!(v.version, 2 | 3) {
                    return Err(err(place, format!("VRRP version {} (2 or 3)", v.version)));
                }
                if v.interfaces.is_empty() {
                    return Err(err(place, "a VRRP instance needs at least one interface"));
                }
            }
            Failover::ActiveActive(s) => {
                if !s.blocks.is_power_of_two() || s.blocks > 65_536 {
                    return Err(err(
                        place,
                        format!("active-active blocks must be a power of two up to 65536, got {}", s.blocks),
                    ));
                }
                if (s.blocks as usize) < ha.members.len() {
                    return Err(err(place, "fewer blocks than directors"));
                }
                validate_heartbeat(&s.heartbeat)?;
            }
        }
        if let Some(sync) = &ha.sync {
            if !matches!(sync.version, 0 | 1) {
                return Err(err(place, format!("sync version {} (0 or 1)", sync.version)));
            }
            // The sysctl refuses a threshold >= period (unless period is 0).
            if sync.period != 0 && sync.threshold >= sync.period {
                return Err(err(
                    place,
                    format!(
                        "sync threshold {} must be below the period {} (or the period 0)",
                        sync.threshold, sync.period
                    ),
                ));
            }
            if sync.threshold == 0 {
                return Err(err(place, "sync threshold must be >= 1"));
            }
            let min = if sync.version == 1 { 8 + 36 } else { 4 + 24 };
            if !(min..=65_507).contains(&sync.max_len) {
                return Err(err(place, format!("sync max_len {} is not in {min}..=65507", sync.max_len)));
            }
            positive("sync flush", sync.flush)?;
        }
        Ok(())
    }

    /// What feedbackd's matching needs: a real server's agent registers each service by
    /// its port, which must also be the virtual port; agent ids are server names.
    fn validate_agents(&self) -> Result<(), ConfigError> {
        let mut services = vec![0usize; self.servers.len()];
        for d in &self.directors {
            for svc in &d.services {
                for dest in &svc.dests {
                    let s = &self.servers[dest.server];
                    services[dest.server] += 1;
                    if let ServiceKey::Addr { port, .. } = svc.addr
                        && dest.fwd == Forwarding::Masq
                        && dest.port != port
                    {
                        return Err(err(
                            format!(
                                "feedback: director {:?} service {} real server {:?}",
                                d.name, svc.addr, s.name
                            ),
                            format!(
                                "its port {} differs from the virtual port {port}: a feedbackd agent registers one \
                                 port, matched against the virtual service and used as the real server's",
                                dest.port
                            ),
                        ));
                    }
                    if !feedbackd_proto::wire::valid_agent_id(&s.name) {
                        return Err(err(
                            format!("feedback: real server {:?}", s.name),
                            "its name is its agent's id: 1 to 64 printable ASCII characters, no spaces",
                        ));
                    }
                }
            }
        }
        if let Some(i) = services.iter().position(|&n| n > feedbackd_proto::wire::MAX_SERVICES) {
            return Err(err(
                format!("feedback: real server {:?}", self.servers[i].name),
                format!(
                    "its agent would register {} services; at most {}",
                    services[i],
                    feedbackd_proto::wire::MAX_SERVICES
                ),
            ));
        }
        Ok(())
    }

    /// A real server's faults (crash, hang, slow) and recoveries alternate, in time order
    /// (equal times in configuration order): a fault begins on a healthy server, and a
    /// recovery ends one.
    fn validate_faults(&self) -> Result<(), ConfigError> {
        match self.fault_order_error() {
            Some((i, message)) => Err(err(format!("server event at {}", self.server_events[i].at), message)),
            None => Ok(()),
        }
    }

    /// The first server event (index into [`ClusterConfig::server_events`]) that breaks
    /// the alternation of faults and recoveries, and why; the scenario format uses it to
    /// point at the line.
    pub fn fault_order_error(&self) -> Option<(usize, String)> {
        let mut events: Vec<(Duration, usize, &ServerEvent)> = self
            .server_events
            .iter()
            .enumerate()
            .filter(|(_, e)| e.change.is_fault() || e.change == ServerChange::Recover)
            .map(|(i, e)| (e.at, i, e))
            .collect();
        events.sort_by_key(|&(at, i, _)| (at, i));
        let mut faulty = vec![false; self.servers.len()];
        for (_, i, e) in events {
            let Some(f) = faulty.get_mut(e.server) else { continue };
            let name = &self.servers[e.server].name;
            match (e.change == ServerChange::Recover, *f) {
                (true, false) => {
                    return Some((i, format!("real server {name:?} recovers, but it has no fault")));
                }
                (false, true) => {
                    return Some((
                        i,
                        format!("real server {name:?} has a fault already: it must recover first"),
                    ));
                }
                (recover, _) => *f = !recover,
            }
        }
        None
    }

    /// The first director event (index into [`ClusterConfig::director_events`]) that
    /// breaks the alternation of `Down` and `Up` (in time order, equal times in
    /// configuration order; every director starts up), and why: a director that is up
    /// cannot boot, one that is down cannot die.
    pub fn director_order_error(&self) -> Option<(usize, String)> {
        let mut events: Vec<(Duration, usize, &DirectorEvent)> = self
            .director_events
            .iter()
            .enumerate()
            .filter(|(_, e)| matches!(e.change, DirectorChange::Down | DirectorChange::Up))
            .map(|(i, e)| (e.at, i, e))
            .collect();
        events.sort_by_key(|&(at, i, _)| (at, i));
        let mut down = vec![false; self.directors.len()];
        for (_, i, e) in events {
            let Some(d) = down.get_mut(e.director) else { continue };
            let name = &self.directors[e.director].name;
            match (e.change == DirectorChange::Up, *d) {
                (true, false) => {
                    return Some((
                        i,
                        format!("director {name:?} boots (DirectorUp), but it is up: it must go down first"),
                    ));
                }
                (false, true) => {
                    return Some((
                        i,
                        format!("director {name:?} goes down (DirectorDown), but it is down already"),
                    ));
                }
                (up, _) => *d = !up,
            }
        }
        None
    }

    fn validate_server(&self, s: &ServerConfig) -> Result<(), ConfigError> {
        let place = format!("real server {:?}", s.name);
        if let Some(g) = s.gateway
            && g >= self.directors.len()
        {
            return Err(err(place, format!("gateway director #{g} does not exist")));
        }
        if let Some(b) = s.backend
            && b >= self.backends.len()
        {
            return Err(err(place, format!("backend #{b} does not exist")));
        }
        check_cpu(&place, &s.cpu)
    }

    /// A director's DoS settings: its memory, its sysctls and the floods against it.
    fn validate_dos(&self, d: &DirectorConfig) -> Result<(), ConfigError> {
        let place = |what: &str| format!("director {:?} {what}", d.name);
        if let Some(m) = d.memory {
            if m.avail_pages < 0 {
                return Err(ConfigError {
                    place: place("memory"),
                    message: format!("available memory must be >= 0 pages, got {}", m.avail_pages),
                });
            }
            if m.entry_bytes == 0 {
                return Err(ConfigError {
                    place: place("memory"),
                    message: "an entry must cost > 0 bytes".into(),
                });
            }
        }
        if let Err(e) = d.sysctls.check() {
            return Err(ConfigError { place: place("sysctls"), message: e.to_string() });
        }
        for f in &d.syn_floods {
            let family_served = d.services.iter().any(|s| s.addr.is_ipv6() == f.vip.is_ipv6());
            f.check(self.duration, family_served).map_err(|message| ConfigError {
                place: place(&format!("SYN flood {:?}", f.name)),
                message,
            })?;
        }
        Ok(())
    }

    fn validate_director(&self, di: usize, d: &DirectorConfig) -> Result<(), ConfigError> {
        for (si, svc) in d.services.iter().enumerate() {
            let place = format!("director {:?} service {}", d.name, svc.addr);
            if d.services[..si].iter().any(|o| o.addr == svc.addr) {
                return Err(err(place, "defined twice"));
            }
            if let Some(p) = svc.persistence
                && p == Duration::ZERO
            {
                return Err(err(place, "persistence timeout must be > 0"));
            }
            let mut seen = std::collections::BTreeSet::new();
            for dest in &svc.dests {
                let Some(s) = self.servers.get(dest.server) else {
                    return Err(err(place, format!("real server #{} does not exist", dest.server)));
                };
                // The place is written only for an error: a service may have 100,000 dests.
                let here = || format!("{place} real server {:?}", s.name);
                if !seen.insert((dest.server, dest.port)) {
                    return Err(err(here(), "listed twice"));
                }
                self.validate_dest("", di, dest).map_err(|e| ConfigError { place: here(), ..e })?;
            }
            if let Some(c) = &svc.check {
                self.validate_check(&place, di, svc, c)?;
            }
        }
        Ok(())
    }

    /// What a real server of a director's service must satisfy (also a fallback server).
    fn validate_dest(&self, place: &str, di: usize, dest: &DestConfig) -> Result<(), ConfigError> {
        let d = &self.directors[di];
        let s = &self.servers[dest.server];
        if dest.weight > MAX_WEIGHT {
            return Err(err(place, format!("weight {} is out of range 0..={MAX_WEIGHT}", dest.weight)));
        }
        match dest.fwd {
            Forwarding::DirectRouting if s.segment != d.segment => Err(err(
                place,
                format!(
                    "direct routing needs the real server on the director's segment {:?}, \
                     but it is on {:?} (use tunnelling, or move it)",
                    d.segment, s.segment
                ),
            )),
            // A fail-over group moves the gateway address with the VIP, so a NAT real
            // server routing through any member routes through whichever member serves:
            // its gateway may be any member of this director's group.
            Forwarding::Masq
                if s.gateway != Some(di)
                    && !self.ha.as_ref().is_some_and(|h| {
                        h.members.contains(&di) && s.gateway.is_some_and(|g| h.members.contains(&g))
                    }) =>
            {
                Err(err(
                    place,
                    format!(
                        "NAT needs the real server's replies to route through director {:?}: \
                     set its gateway to it",
                        d.name
                    ),
                ))
            }
            Forwarding::Local => Err(err(place, "the local forwarding method is not modelled")),
            _ => Ok(()),
        }
    }

    /// A service's health check: its timing, and its fallback server: a real server of
    /// the service by the same rules, on a host that is not one of the checked ones.
    fn validate_check(
        &self,
        place: &str,
        di: usize,
        svc: &ServiceConfig,
        c: &crate::ha::HealthCheckConfig,
    ) -> Result<(), ConfigError> {
        let place = format!("{place} health check");
        if c.interval == Duration::ZERO {
            return Err(err(place, "interval must be > 0"));
        }
        if c.timeout == Duration::ZERO {
            return Err(err(place, "timeout must be > 0"));
        }
        if c.rise == 0 {
            return Err(err(place, "rise (successful checks to restore a server) must be > 0"));
        }
        let Some(fb) = &c.fallback else { return Ok(()) };
        let Some(s) = self.servers.get(fb.server) else {
            return Err(err(place, format!("fallback real server #{} does not exist", fb.server)));
        };
        let place = format!("{place} fallback real server {:?}", s.name);
        if svc.dests.iter().any(|o| o.server == fb.server) {
            return Err(err(place, "is one of the checked real servers of the service (take another host)"));
        }
        self.validate_dest(&place, di, fb)
    }

    fn validate_action(&self, a: &Action) -> Result<(), ConfigError> {
        let place = format!("action at {}", a.at);
        let d = self
            .directors
            .get(a.director)
            .ok_or_else(|| err(&place, format!("director #{} does not exist", a.director)))?;
        let svc = d
            .services
            .get(a.service)
            .ok_or_else(|| err(&place, format!("director {:?} has no service #{}", d.name, a.service)))?;
        if !svc.dests.iter().any(|x| x.server == a.server) {
            let name = self
                .servers
                .get(a.server)
                .map_or_else(|| format!("#{}", a.server), |s| format!("{:?}", s.name));
            return Err(err(place, format!("real server {name} is not in service {}", svc.addr)));
        }
        match a.change {
            Change::Weight(w) | Change::Restore(w) if w > MAX_WEIGHT => {
                Err(err(place, format!("weight {w} is out of range 0..={MAX_WEIGHT}")))
            }
            _ => Ok(()),
        }
    }

    fn validate_population(&self, p: &PopulationConfig) -> Result<(), ConfigError> {
        let place = format!("client population {:?}", p.name);
        crate::arrival::Arrivals::new(p.arrival.clone())
            .map_err(|e| err(&place, format!("arrivals: {e}")))?;
        if p.clients == 0 {
            return Err(err(place, "needs at least one client address"));
        }
        if self.director_of(p).is_none() {
            let mark = p.fwmark.map(|m| format!(" or FWM {m}")).unwrap_or_default();
            let target = ServiceKey::Addr { protocol: p.protocol(), addr: p.vip, port: p.port };
            return Err(err(place, format!("no director has the virtual service {}{mark}", target)));
        }
        let (requests, think) = match &p.transport {
            Transport::Tcp { requests, think_time } => (requests, think_time),
            Transport::Udp { requests, think_time, timeout } => {
                if *timeout == Duration::ZERO {
                    return Err(err(place, "UDP timeout must be > 0"));
                }
                (requests, think_time)
            }
        };
        for (what, d) in [
            ("requests", requests),
            ("think_time", think),
            ("request_bytes", &p.request_bytes),
            ("response_bytes", &p.response_bytes),
            ("demand", &p.demand),
        ] {
            d.validate().map_err(|e| err(&place, format!("{what}: {e}")))?;
        }
        if let Some(b) = &p.backend_demand {
            b.validate().map_err(|e| err(&place, format!("backend_demand: {e}")))?;
        }
        if p.response_timeout == Some(Duration::ZERO) {
            return Err(err(place, "response_timeout must be > 0"));
        }
        Ok(())
    }
}

impl PopulationConfig {
    /// Clients of `vip:port` arriving by `arrival`, with the defaults a test or a tool
    /// starts from (override the rest with struct update syntax): 1000 client addresses
    /// from 10.1.0.0, no access latency, one TCP request a connection with no think time,
    /// empty request and response, no CPU demand, no backend, no firewall mark, no
    /// response timeout.
    pub fn new(name: &str, arrival: ArrivalProcess, vip: IpAddr, port: u16) -> Self {
        PopulationConfig {
            name: name.into(),
            arrival,
            vip,
            port,
            fwmark: None,
            clients: 1000,
            first_client: IpAddr::V4(std::net::Ipv4Addr::new(10, 1, 0, 0)),
            access_latency: Duration::ZERO,
            transport: Transport::Tcp { requests: Dist::Constant(1.0), think_time: Dist::Constant(0.0) },
            request_bytes: Dist::Constant(0.0),
            response_bytes: Dist::Constant(0.0),
            demand: Dist::Constant(0.0),
            backend_demand: None,
            response_timeout: None,
        }
    }

    /// TCP or UDP.
    pub fn protocol(&self) -> Protocol {
        match self.transport {
            Transport::Tcp { .. } => Protocol::Tcp,
            Transport::Udp { .. } => Protocol::Udp,
        }
    }
}

impl ClusterConfig {
    /// The director (index) serving a population: the first with a service matching its
    /// firewall mark, or else its protocol, VIP and port.
    pub fn director_of(&self, p: &PopulationConfig) -> Option<usize> {
        self.service_of(p).map(|(d, _)| d)
    }

    /// The director and service (indices) a population's connections reach: the first
    /// service matching its firewall mark, or else its protocol, VIP and port.
    pub fn service_of(&self, p: &PopulationConfig) -> Option<(usize, usize)> {
        let inet = ServiceKey::Addr { protocol: p.protocol(), addr: p.vip, port: p.port };
        let find = |key: ServiceKey| {
            self.directors
                .iter()
                .enumerate()
                .find_map(|(di, d)| d.services.iter().position(|s| s.addr == key).map(|si| (di, si)))
        };
        p.fwmark.and_then(|m| find(ServiceKey::fwmark(m))).or_else(|| find(inet))
    }
}

fn check_cpu(place: &str, c: &CpuConfig) -> Result<(), ConfigError> {
    if c.cores == 0 {
        return Err(err(place, "needs at least one core"));
    }
    if !(c.speed.is_finite() && c.speed > 0.0) {
        return Err(err(place, format!("cpu speed must be a positive number, got {}", c.speed)));
    }
    if c.max_in_service == Some(0) {
        return Err(err(place, "a worker pool needs at least one worker"));
    }
    Ok(())
}

fn validate_heartbeat(h: &crate::ha::HeartbeatConfig) -> Result<(), ConfigError> {
    let place = "ha: heartbeat";
    if h.keepalive == Duration::ZERO {
        return Err(err(place, "keepalive must be > 0"));
    }
    if h.deadtime <= h.keepalive {
        return Err(err(
            place,
            format!("deadtime ({}) must be longer than keepalive ({})", h.deadtime, h.keepalive),
        ));
    }
    if h.initdead < h.deadtime {
        return Err(err(
            place,
            format!("initdead ({}) must be at least deadtime ({})", h.initdead, h.deadtime),
        ));
    }
    if h.media.is_empty() {
        return Err(err(place, "keepalives need at least one medium"));
    }
    if !h.ping_nodes.is_empty() && h.deadping == Duration::ZERO {
        return Err(err(place, "deadping must be > 0"));
    }
    Ok(())
}

fn validate_feedback(f: &FeedbackConfig) -> Result<(), ConfigError> {
    let place = "feedback";
    if f.interval == Duration::ZERO {
        return Err(err(place, "interval must be > 0"));
    }
    f.law.validate().map_err(|e| err(place, format!("weight law: {e}")))?;
    if f.quiesce_after == Duration::ZERO || f.remove_after <= f.quiesce_after {
        return Err(err(
            place,
            format!(
                "remove_after ({}) must be longer than quiesce_after ({}), which must be > 0",
                f.remove_after, f.quiesce_after
            ),
        ));
    }
    if f.rescan == Duration::ZERO {
        return Err(err(place, "rescan must be > 0"));
    }
    if f.master_timeout == Some(Duration::ZERO) {
        return Err(err(place, "master_timeout must be > 0"));
    }
    if !(0.0..1.0).contains(&f.link.loss) {
        return Err(err(place, format!("link loss {} is not in [0, 1)", f.link.loss)));
    }
    if f.link.rto == Duration::ZERO {
        return Err(err(place, "link rto must be > 0"));
    }
    Ok(())
}
