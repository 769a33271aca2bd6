//! Every Linux IPVS scheduler, reproduced exactly as the kernel runs it.
//!
//! `lvs-sched` models what `net/netfilter/ipvs/ip_vs_*.c` does when a new connection
//! arrives at a virtual service: the real-server list in kernel order (a server added
//! last is scanned first), each scheduler's state and callbacks (wrr's reset on every
//! add, edit or delete; sh/dh/mh tables rebuilt with the kernel's hash functions and table
//! sizes; lblc/lblcr caches expiring in virtual time), the integer overhead arithmetic of
//! the least-connection family, quiescent servers (weight 0) and the OVERLOAD flag driven
//! by the upper and lower connection thresholds.
//!
//! Both the simulator (`sim-core`, virtual time) and the live daemons run this code.
//!
//! # Module map
//! - [`service`]: a virtual service, its list of real servers and the counter bookkeeping.
//! - [`dest`]: a real server.
//! - `rr`, `wrr`, `lc`, `wlc` (wlc and sed), `nq`, `fo`, `ovf`, `twos`, `sh`, `dh`, `mh`,
//!   `lblc`, `lblcr`: one scheduler a file, each citing the kernel function it mirrors.
//! - `hash`: the kernel's `hash_32()` and SipHash-1-3 (`hsiphash` on 64-bit).
//! - [`feedback`]: the feedback weight law (reported capacity → weight).
//! - [`time`]: integer virtual time.
//!
//! # Invariants
//! - Pure: never reads a clock, a socket, a file, the environment or an OS random source.
//!   Time comes in as `now`; twos draws from a generator seeded by the caller.
//! - No iterated `HashMap`: every scan follows the kernel list order, so results are the
//!   same on every run and every host.
//! - A scheduler never changes a counter or the OVERLOAD flag; only
//!   [`Service::bind`]/[`Service::unbind`] (the connection table's calls) do.

pub mod dest;
mod dh;
pub mod feedback;
mod fo;
mod hash;
mod lblc;
mod lblcr;
mod lc;
mod mh;
mod nq;
mod ovf;
mod rr;
pub mod service;
mod sh;
pub mod time;
mod twos;
mod wlc;
mod wrr;

use core::fmt;
use core::net::IpAddr;
use core::str::FromStr;

pub use dest::{Dest, DestConfig, DestId, Forwarding, Tunnel, TunnelType};
pub use service::{ConnCount, Error, Service};
pub use time::{Duration, Time};

/// The IPVS schedulers, named as `ipvsadm -s` names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SchedulerKind {
    /// Round robin.
    Rr,
    /// Weighted round robin.
    Wrr,
    /// Least connection.
    Lc,
    /// Weighted least connection (ipvsadm's default).
    Wlc,
    /// Shortest expected delay.
    Sed,
    /// Never queue.
    Nq,
    /// Destination hashing.
    Dh,
    /// Source hashing.
    Sh,
    /// Locality-based least connection.
    Lblc,
    /// Locality-based least connection with replication.
    Lblcr,
    /// Maglev hashing.
    Mh,
    /// Weighted failover.
    Fo,
    /// Weighted overflow.
    Ovf,
    /// Power of two choices.
    Twos,
}

impl SchedulerKind {
    /// Every scheduler, in the order `lvsim list` shows them.
    pub const ALL: [SchedulerKind; 14] = [
        SchedulerKind::Rr,
        SchedulerKind::Wrr,
        SchedulerKind::Lc,
        SchedulerKind::Wlc,
        SchedulerKind::Sed,
        SchedulerKind::Nq,
        SchedulerKind::Dh,
        SchedulerKind::Sh,
        SchedulerKind::Lblc,
        SchedulerKind::Lblcr,
        SchedulerKind::Mh,
        SchedulerKind::Fo,
        SchedulerKind::Ovf,
        SchedulerKind::Twos,
    ];

    /// The name ipvsadm and the kernel use (`rr`, `wlc`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            SchedulerKind::Rr => "rr",
            SchedulerKind::Wrr => "wrr",
            SchedulerKind::Lc => "lc",
            SchedulerKind::Wlc => "wlc",
            SchedulerKind::Sed => "sed",
            SchedulerKind::Nq => "nq",
            SchedulerKind::Dh => "dh",
            SchedulerKind::Sh => "sh",
            SchedulerKind::Lblc => "lblc",
            SchedulerKind::Lblcr => "lblcr",
            SchedulerKind::Mh => "mh",
            SchedulerKind::Fo => "fo",
            SchedulerKind::Ovf => "ovf",
            SchedulerKind::Twos => "twos",
        }
    }
}

impl fmt::Display for SchedulerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown scheduler name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown scheduler {0:?} (expected one of rr, wrr, lc, wlc, sed, nq, dh, sh, lblc, lblcr, mh, fo, ovf, twos)"
)]
pub struct UnknownScheduler(pub String);

impl FromStr for SchedulerKind {
    type Err = UnknownScheduler;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SchedulerKind::ALL.into_iter().find(|k| k.name() == s).ok_or_else(|| UnknownScheduler(s.to_owned()))
    }
}

/// Virtual-service flags (`IP_VS_SVC_F_*`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SvcFlags(pub u32);

impl SvcFlags {
    /// `IP_VS_SVC_F_PERSISTENT`.
    pub const PERSISTENT: u32 = 0x1;
    /// `IP_VS_SVC_F_HASHED`: kernel-internal (the service is in the hash table); a kernel
    /// listing carries it, a listing reader clears it and nothing sets it.
    pub const HASHED: u32 = 0x2;
    /// `IP_VS_SVC_F_ONEPACKET` (`-o`).
    pub const ONEPACKET: u32 = 0x4;
    /// `IP_VS_SVC_F_SCHED1`: sh-fallback / mh-fallback / flag-1.
    pub const SCHED1: u32 = 0x8;
    /// `IP_VS_SVC_F_SCHED2`: sh-port / mh-port / flag-2.
    pub const SCHED2: u32 = 0x10;
    /// `IP_VS_SVC_F_SCHED3`: flag-3.
    pub const SCHED3: u32 = 0x20;

    /// Whether every bit of `bit` is set.
    pub const fn has(self, bit: u32) -> bool {
        self.0 & bit == bit
    }
}

/// Transport protocol of a flow or a virtual service, as `ipvsadm -t/-u/--sctp-service`
/// names it (the one definition: `lvs-ipvs` and every other crate use this one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// `-t`, IP protocol 6.
    Tcp,
    /// `-u`, IP protocol 17.
    Udp,
    /// `--sctp-service`, IP protocol 132.
    Sctp,
}

impl Protocol {
    /// The IP protocol number (what IPVS's generic-netlink `PROTOCOL` attribute carries).
    pub const fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Sctp => 132,
        }
    }

    /// The protocol with IP protocol number `n`, if it is one IPVS serves.
    pub const fn from_number(n: u8) -> Option<Protocol> {
        match n {
            6 => Some(Protocol::Tcp),
            17 => Some(Protocol::Udp),
            132 => Some(Protocol::Sctp),
            _ => None,
        }
    }

    /// The name `ipvsadm -L` prints: `TCP`, `UDP`, `SCTP`.
    pub const fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a scheduler sees of the first packet of a new connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flow {
    /// Transport protocol.
    pub protocol: Protocol,
    /// Client address.
    pub saddr: IpAddr,
    /// Client port.
    pub sport: u16,
    /// Destination address as the packet carries it (the VIP, or any address for a
    /// firewall-mark service).
    pub daddr: IpAddr,
    /// Destination port.
    pub dport: u16,
}

/// `a.b.c.d:port`, or `[v6]:port`, as ipvsadm prints addresses.
pub(crate) fn fmt_addr_port(f: &mut fmt::Formatter<'_>, addr: IpAddr, port: u16) -> fmt::Result {
    match addr {
        IpAddr::V4(a) => write!(f, "{a}:{port}"),
        IpAddr::V6(a) => write!(f, "[{a}]:{port}"),
    }
}
