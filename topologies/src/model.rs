//! The topology part of a scenario file: directors, their virtual services, real servers
//! and backends, as a person writes them (names, addresses, units in the field names).
//!
//! These types are the RON schema: every struct rejects unknown fields, and every field
//! that has a sensible default may be left out. Crate `scenarios` turns a [`Topology`]
//! into the simulator's typed configuration; the exporters in this crate turn it into
//! deployment files.

use std::net::IpAddr;

use lvs_ipvs::{Forwarding, Protocol, SchedFlag, SchedulerKind};
use serde::{Deserialize, Serialize};

/// A cluster's machines and virtual services.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    /// What this topology is (shown by `lvsim list`).
    #[serde(default)]
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The directors: one, or with `ha` the members of a fail-over group (and others).
    pub directors: Vec<Director>,
    /// The real servers; an entry with `count: N` stands for N numbered servers.
    pub servers: Vec<Server>,
    /// Shared backend servers (databases, storage) that real servers query.
    #[serde(default)]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub backends: Vec<Backend>,
    /// A fail-over (or active-active) group of directors, with connection sync.
    #[serde(default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ha: Option<crate::Ha>,
    /// An ECMP tier: a router spreading the VIPs' packets over several directors.
    #[serde(default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ecmp: Option<crate::Ecmp>,
}

/// A Linux director running IPVS.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Director {
    /// Name, for messages and reports.
    pub name: String,
    /// Its address on the real servers' side (DIP): NAT real servers use it as their
    /// gateway, and feedbackd agents report to it.
    pub address: IpAddr,
    /// The L2 segment of its internal interface; direct-routing real servers must be on it.
    #[serde(default = "default_segment")]
    #[serde(skip_serializing_if = "is_lan")]
    pub segment: String,
    /// Its link to the clients' side, both directions (unless `external_out` is given).
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub external: Channel,
    /// Director → clients, when it differs from `external`.
    #[serde(default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_out: Option<Channel>,
    /// Its link to the real servers' segment, both directions (unless `internal_in`).
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub internal: Channel,
    /// Real servers → director, when it differs from `internal`.
    #[serde(default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub internal_in: Option<Channel>,
    /// CPU time to forward one packet \[µs\] (softirq, IPVS lookup, NAT rewriting).
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub cpu_per_packet_us: f64,
    /// Packets that may wait for that CPU (`netdev_max_backlog`); `None`: unlimited.
    #[serde(default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_backlog_packets: Option<u64>,
    /// IPVS timeouts (`ipvsadm --set tcp tcpfin udp`); left out: the kernel's defaults.
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub timeouts: Timeouts,
    /// The `expire_nodest_conn` sysctl.
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub expire_nodest_conn: bool,
    /// The `expire_quiescent_template` sysctl.
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub expire_quiescent_template: bool,
    /// The `sloppy_tcp` sysctl: any TCP segment without an entry (not only a SYN) is
    /// scheduled.
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub sloppy_tcp: bool,
    /// The `sloppy_sctp` sysctl: the same for SCTP.
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub sloppy_sctp: bool,
    /// The `conn_reuse_mode` sysctl (0..=3, the kernel's default 1).
    #[serde(default = "default_conn_reuse_mode")]
    #[serde(skip_serializing_if = "is_default_conn_reuse_mode")]
    pub conn_reuse_mode: u8,
    /// Its virtual services.
    #[serde(default)]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<Service>,
    /// The `amemthresh` sysctl [pages of 4 KiB]: below this much available memory the
    /// automatic defence modes switch on. Default 1024, the kernel's.
    #[serde(default = "default_amemthresh")]
    #[serde(skip_serializing_if = "is_default_amemthresh")]
    pub amemthresh: i64,
    /// The `am_droprate` sysctl: `drop_packet` mode 3 drops one new connection in this
    /// many. Default 10, the kernel's.
    #[serde(default = "default_am_droprate")]
    #[serde(skip_serializing_if = "is_default_am_droprate")]
    pub am_droprate: u32,
    /// The `drop_entry` sysctl, 0..=3 (0 off, 1 automatic, 3 always).
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub drop_entry: u8,
    /// The `drop_packet` sysctl, 0..=3.
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub drop_packet: u8,
    /// The `secure_tcp` sysctl, 0..=3.
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub secure_tcp: u8,
    /// Its free and buffer memory with an empty IPVS table [pages of 4 KiB], which the
    /// IPVS entries use up (the DoS defences compare what is left with `amemthresh`);
    /// none: never short of memory. Simulation only: not exported.
    #[serde(default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_pages: Option<i64>,
    /// What one IPVS entry costs [bytes]: the kernel's `ip_vs_conn` slab object.
    #[serde(default = "default_conn_entry_bytes")]
    #[serde(skip_serializing_if = "is_default_conn_entry_bytes")]
    pub conn_entry_bytes: u32,
}

/// An `ip_vs_conn` slab object on x86-64 [bytes] (docs/simulator.md says where the
/// figure comes from).
pub const DEFAULT_CONN_ENTRY_BYTES: u32 = 320;

fn default_amemthresh() -> i64 {
    lvs_ipvs::Sysctls::default().amemthresh
}
fn default_am_droprate() -> u32 {
    lvs_ipvs::Sysctls::default().am_droprate
}
fn default_conn_entry_bytes() -> u32 {
    DEFAULT_CONN_ENTRY_BYTES
}
#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_default_amemthresh(x: &i64) -> bool {
    *x == default_amemthresh()
}
#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_default_am_droprate(x: &u32) -> bool {
    *x == default_am_droprate()
}
#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_default_conn_entry_bytes(x: &u32) -> bool {
    *x == DEFAULT_CONN_ENTRY_BYTES
}

impl Director {
    /// A director with every other field at the scenario format's default (segment `lan`,
    /// ideal channels, kernel timeouts, no services).
    pub fn new(name: &str, address: IpAddr) -> Director {
        Director {
            name: name.to_owned(),
            address,
            segment: default_segment(),
            external: Channel::default(),
            external_out: None,
            internal: Channel::default(),
            internal_in: None,
            cpu_per_packet_us: 0.0,
            cpu_backlog_packets: None,
            timeouts: Timeouts::default(),
            expire_nodest_conn: false,
            expire_quiescent_template: false,
            sloppy_tcp: false,
            sloppy_sctp: false,
            conn_reuse_mode: default_conn_reuse_mode(),
            services: Vec::new(),
            amemthresh: default_amemthresh(),
            am_droprate: default_am_droprate(),
            drop_entry: 0,
            drop_packet: 0,
            secure_tcp: 0,
            memory_pages: None,
            conn_entry_bytes: DEFAULT_CONN_ENTRY_BYTES,
        }
    }

    /// Its IPVS sysctls, as lvs-ipvs holds them: the one mapping between the format's
    /// fields and [`lvs_ipvs::Sysctls`] (the exporters, importers and the scenario build
    /// go through it). Values are as written; [`lvs_ipvs::Sysctls::check`] says whether
    /// the kernel takes them.
    pub fn sysctls(&self) -> lvs_ipvs::Sysctls {
        lvs_ipvs::Sysctls {
            expire_nodest_conn: self.expire_nodest_conn,
            expire_quiescent_template: self.expire_quiescent_template,
            sloppy_tcp: self.sloppy_tcp,
            sloppy_sctp: self.sloppy_sctp,
            conn_reuse_mode: self.conn_reuse_mode,
            amemthresh: self.amemthresh,
            am_droprate: self.am_droprate,
            drop_entry: self.drop_entry,
            drop_packet: self.drop_packet,
            secure_tcp: self.secure_tcp,
        }
    }

    /// Writes one sysctl (`sysctl -w net.ipv4.vs.NAME=VALUE` read by an importer), refused
    /// outside what the kernel takes.
    pub fn set_sysctl(&mut self, s: lvs_ipvs::Sysctl, value: i64) -> Result<(), lvs_ipvs::OutOfRange> {
        let mut all = self.sysctls();
        all.set(s, value)?;
        self.expire_nodest_conn = all.expire_nodest_conn;
        self.expire_quiescent_template = all.expire_quiescent_template;
        self.sloppy_tcp = all.sloppy_tcp;
        self.sloppy_sctp = all.sloppy_sctp;
        self.conn_reuse_mode = all.conn_reuse_mode;
        self.amemthresh = all.amemthresh;
        self.am_droprate = all.am_droprate;
        self.drop_entry = all.drop_entry;
        self.drop_packet = all.drop_packet;
        self.secure_tcp = all.secure_tcp;
        Ok(())
    }
}

/// Whether a field is at its type's default (not written when a topology is saved).
fn is_default<T: Default + PartialEq>(x: &T) -> bool {
    *x == T::default()
}

/// Whether a count or weight is 1, the default.
#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_one(x: &u32) -> bool {
    *x == 1
}

/// Whether a segment is the default `lan`.
fn default_conn_reuse_mode() -> u8 {
    lvs_ipvs::Sysctls::default().conn_reuse_mode
}

fn is_default_conn_reuse_mode(m: &u8) -> bool {
    *m == default_conn_reuse_mode()
}

fn is_lan(s: &str) -> bool {
    *s == default_segment()
}

/// Whether a CPU is the default one core at unit speed.
fn is_default_cpu(c: &Cpu) -> bool {
    *c == Cpu { cores: 1, speed: unit_speed(), workers: None, backlog: None }
}

fn default_segment() -> String {
    "lan".to_owned()
}

/// `ipvsadm --set tcp tcpfin udp` \[s\]; `None` keeps the kernel's default (900, 120, 300).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timeouts {
    /// ESTABLISHED.
    #[serde(default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp_s: Option<f64>,
    /// FIN_WAIT (also how long a closed direct-routing connection stays listed).
    #[serde(default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcpfin_s: Option<f64>,
    /// UDP.
    #[serde(default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub udp_s: Option<f64>,
}

/// One direction (or both) of a network link. The default is an ideal link: no delay,
/// no bandwidth limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Channel {
    /// Propagation delay \[ms\].
    #[serde(default)]
    pub latency_ms: f64,
    /// Bandwidth \[Mbit/s\]; `None`: unlimited.
    #[serde(default)]
    pub bandwidth_mbps: Option<f64>,
    /// Fixed cost per packet \[µs\] (interrupts, the NIC).
    #[serde(default)]
    pub per_packet_us: f64,
    /// Transmit buffer \[bytes\]; `None`: unlimited.
    #[serde(default)]
    pub buffer_bytes: Option<u64>,
    /// Transmit buffer \[packets\] (`txqueuelen`); `None`: unlimited.
    #[serde(default)]
    pub buffer_packets: Option<u64>,
}

/// Flags of a virtual service: the scheduler flags (`-b`, one per [`SchedFlag`] word,
/// written in snake case: `sh_fallback`, `flag_1`, ...) and the one-packet option (`-o`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flag {
    /// `sh-fallback`: sh skips unavailable servers.
    ShFallback,
    /// `sh-port`: sh hashes the source port too.
    ShPort,
    /// `mh-fallback`.
    MhFallback,
    /// `mh-port`.
    MhPort,
    /// `flag-1`.
    #[serde(rename = "flag_1")]
    Flag1,
    /// `flag-2`.
    #[serde(rename = "flag_2")]
    Flag2,
    /// `flag-3`.
    #[serde(rename = "flag_3")]
    Flag3,
    /// `-o`: one-packet scheduling (UDP).
    OnePacket,
}

impl Flag {
    /// Its word in ipvsadm's `-b` list; `None` for `-o`, which is an option of its own.
    pub const fn sched_flag(self) -> Option<SchedFlag> {
        match self {
            Flag::ShFallback => Some(SchedFlag::ShFallback),
            Flag::ShPort => Some(SchedFlag::ShPort),
            Flag::MhFallback => Some(SchedFlag::MhFallback),
            Flag::MhPort => Some(SchedFlag::MhPort),
            Flag::Flag1 => Some(SchedFlag::Flag1),
            Flag::Flag2 => Some(SchedFlag::Flag2),
            Flag::Flag3 => Some(SchedFlag::Flag3),
            Flag::OnePacket => None,
        }
    }

    /// The schema's flag for an ipvsadm `-b` word.
    pub const fn from_sched_flag(f: SchedFlag) -> Flag {
        match f {
            SchedFlag::ShFallback => Flag::ShFallback,
            SchedFlag::ShPort => Flag::ShPort,
            SchedFlag::MhFallback => Flag::MhFallback,
            SchedFlag::MhPort => Flag::MhPort,
            SchedFlag::Flag1 => Flag::Flag1,
            SchedFlag::Flag2 => Flag::Flag2,
            SchedFlag::Flag3 => Flag::Flag3,
        }
    }

    /// The [`lvs_ipvs::SvcFlags`] bit it sets.
    pub const fn bit(self) -> u32 {
        match self.sched_flag() {
            Some(f) => f.bit(),
            None => lvs_ipvs::SvcFlags::ONEPACKET,
        }
    }
}

/// A virtual service (`ipvsadm -A`) and its real servers (`ipvsadm -a`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// The name results give it (`services[NAME]` in a metric path): letters, digits,
    /// `_`, `-`, `.` and `:`; default `tcp-VIP-PORT`, `udp-VIP-PORT` or `fwmark-MARK`.
    #[serde(default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `TCP` or `UDP` (ignored for a firewall-mark service); `SCTP` is refused by the
    /// scenario builder (the simulated clients speak TCP or UDP).
    #[serde(default = "tcp")]
    pub protocol: Protocol,
    /// Virtual IP; leave out for a firewall-mark service.
    #[serde(default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vip: Option<IpAddr>,
    /// Virtual port (0 with persistence means every port).
    #[serde(default)]
    pub port: u16,
    /// `-f MARK`: a firewall-mark service instead of VIP:port.
    #[serde(default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fwmark: Option<u32>,
    /// `-s`.
    #[serde(default)]
    pub scheduler: SchedulerKind,
    /// `-b` flags and `-o`.
    #[serde(default)]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<Flag>,
    /// `-p TIMEOUT` \[s\]: persistence.
    #[serde(default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub persistence_s: Option<f64>,
    /// `-M NETMASK`: persistence granularity (IPv4 dotted mask); default /32.
    #[serde(default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub netmask: Option<IpAddr>,
    /// Real servers in `ipvsadm -a` order. A name given to a `count: N` server entry
    /// stands for all N of them.
    #[serde(default)]
    pub real_servers: Vec<RealServer>,
    /// Health checking of the real servers (ldirectord or keepalived); none: a dead real
    /// server keeps its weight.
    #[serde(default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<crate::HealthCheck>,
}

impl Default for Service {
    fn default() -> Self {
        Service {
            name: None,
            protocol: tcp(),
            vip: None,
            port: 0,
            fwmark: None,
            scheduler: SchedulerKind::default(),
            flags: Vec::new(),
            persistence_s: None,
            netmask: None,
            real_servers: Vec::new(),
            check: None,
        }
    }
}

impl Service {
    /// The port a real server listens on: its own if given, else the service's. Like
    /// ipvsadm, direct routing and tunnelling always use the service's port (except for a
    /// firewall-mark service, where 0 means "the client's destination port").
    pub fn real_port(&self, rs: &RealServer) -> u16 {
        match (self.fwmark, rs.forwarding) {
            (None, Forwarding::DirectRouting | Forwarding::Tunnel | Forwarding::Local) => self.port,
            _ => rs.port.unwrap_or(self.port),
        }
    }
}

/// A real server of a virtual service.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RealServer {
    /// The server's name (or the name of a `count: N` group).
    pub server: String,
    /// Its port; default the service's (DR and TUN always use the service's).
    #[serde(default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Forwarding method: `NAT` (the default), `DR` or `TUN` (`Local` is refused by the
    /// scenario builder: the simulator does not model a director serving the VIP itself).
    #[serde(default = "nat")]
    pub forwarding: Forwarding,
    /// `-w`, 0..=65535 (0 quiesces it).
    #[serde(default = "one")]
    #[serde(skip_serializing_if = "is_one")]
    pub weight: u32,
    /// `-x`: upper connection threshold (0 = none).
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub upper: u32,
    /// `-y`: lower connection threshold.
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub lower: u32,
    /// TUN only: the encapsulation ipvsadm's `--tun-type`, `--tun-port`, `--tun-csum` and
    /// `--tun-remcsum` set, e.g. `Some((kind: gue, port: 6080, flags: 1))` (flags: 1 =
    /// csum, 2 = remcsum); none is ipip. The simulator models no encapsulation: it is for
    /// import and export.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnel: Option<lvs_ipvs::Tunnel>,
}

fn one() -> u32 {
    1
}

/// The schema's default protocol.
pub(crate) fn tcp() -> Protocol {
    Protocol::Tcp
}

/// The schema's default forwarding method (ipvsadm's is DR; a scenario's is NAT).
pub(crate) fn nat() -> Forwarding {
    Forwarding::Masq
}

/// A real server, or with `count` a numbered group of identical ones.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    /// Name; a group of N is named `NAME1` .. `NAMEN`.
    pub name: String,
    /// Its address (RIP); a group's addresses follow this one.
    pub address: IpAddr,
    /// How many identical servers this entry stands for.
    #[serde(default = "one")]
    #[serde(skip_serializing_if = "is_one")]
    pub count: u32,
    /// The L2 segment it is on.
    #[serde(default = "default_segment")]
    #[serde(skip_serializing_if = "is_lan")]
    pub segment: String,
    /// The director that is its default gateway (NAT needs it).
    #[serde(default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    /// Its own link to the clients (used by DR and TUN replies).
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub uplink: Channel,
    /// Its processors.
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default_cpu")]
    pub cpu: Cpu,
    /// The backend its requests query (by name).
    #[serde(default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
}

/// Processors of a server.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cpu {
    /// Cores.
    #[serde(default = "one")]
    pub cores: u32,
    /// Speed of a core relative to the demand's reference machine (2.0 = twice as fast).
    #[serde(default = "unit_speed")]
    pub speed: f64,
    /// A worker pool of this size serving requests first come first served (Apache
    /// `MaxRequestWorkers`); `None`: processor sharing.
    #[serde(default)]
    pub workers: Option<u32>,
    /// Requests that may wait for a worker; more are refused (connection reset).
    /// `None`: unlimited.
    #[serde(default)]
    pub backlog: Option<u32>,
}

fn unit_speed() -> f64 {
    1.0
}

impl Server {
    /// The names of the servers this entry stands for: its own name when `count` is 1,
    /// else `NAME1` .. `NAMEN` (as [`Topology::expand`] names them).
    pub fn member_names(&self) -> impl Iterator<Item = String> + '_ {
        (0..self.count).map(|k| crate::expand::member_name(self, k))
    }
}

impl Default for Cpu {
    fn default() -> Self {
        Cpu { cores: 1, speed: 1.0, workers: None, backlog: None }
    }
}

/// A shared backend server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Backend {
    /// Name.
    pub name: String,
    /// One-way latency between a real server and it \[ms\].
    #[serde(default)]
    pub latency_ms: f64,
    /// Its processors.
    #[serde(default)]
    pub cpu: Cpu,
}
