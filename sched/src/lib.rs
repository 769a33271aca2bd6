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
pub use mh::MH_TAB_SIZE;
pub use service::{ConnCount, Error, Service};
pub use time::{Duration, Time};

/// The IPVS schedulers, named as `ipvsadm -s` names them (with the `serde` feature, also
/// in scenario files: `rr`, `wlc`, ...). The default is ipvsadm's, wlc.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(rename_all = "lowercase"))]
pub enum SchedulerKind {
    /// Round robin.
    Rr,
    /// Weighted round robin.
    Wrr,
    /// Least connection.
    Lc,
    /// Weighted least connection (ipvsadm's default).
    #[default]
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

impl SchedulerKind {
    /// The slots of the scheduler's lookup table, for the schedulers that hash into one
    /// (sh and dh: 256 buckets, `CONFIG_IP_VS_SH/DH_TAB_BITS` 8; mh: [`MH_TAB_SIZE`]): no
    /// more real servers than this can ever be picked.
    pub const fn table_size(self) -> Option<u32> {
        match self {
            SchedulerKind::Sh => Some(sh::SH_TAB_SIZE as u32),
            SchedulerKind::Dh => Some(dh::DH_TAB_SIZE as u32),
            SchedulerKind::Mh => Some(MH_TAB_SIZE),
            _ => None,
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

    /// The scheduler flags set, as the words ipvsadm writes for a service of `scheduler`
    /// (`-S`'s `-b` list and `-L`'s flag column), in ipvsadm's order.
    pub fn sched_flags(self, scheduler: SchedulerKind) -> impl Iterator<Item = SchedFlag> {
        [SvcFlags::SCHED1, SvcFlags::SCHED2, SvcFlags::SCHED3]
            .into_iter()
            .filter(move |&bit| self.has(bit))
            .filter_map(move |bit| SchedFlag::for_bit(bit, scheduler))
    }
}

/// A word of ipvsadm's `-b` list (`parse_sched_flags()` and `print_sched_flags()` in
/// ipvsadm.c): the one table of the scheduler-flag names. Three kernel bits
/// ([`SvcFlags::SCHED1`]..[`SvcFlags::SCHED3`]) carry them: sh and mh give the first two
/// their own names, every scheduler may use `flag-1`..`flag-3`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SchedFlag {
    /// `sh-fallback`: sh skips an unavailable server (SCHED1).
    ShFallback,
    /// `sh-port`: sh hashes the client's port too (SCHED2).
    ShPort,
    /// `mh-fallback` (SCHED1).
    MhFallback,
    /// `mh-port` (SCHED2).
    MhPort,
    /// `flag-1` (SCHED1).
    Flag1,
    /// `flag-2` (SCHED2).
    Flag2,
    /// `flag-3` (SCHED3).
    Flag3,
}

impl SchedFlag {
    /// Every word, in the order ipvsadm's usage lists them.
    pub const ALL: [SchedFlag; 7] = [
        SchedFlag::ShFallback,
        SchedFlag::ShPort,
        SchedFlag::MhFallback,
        SchedFlag::MhPort,
        SchedFlag::Flag1,
        SchedFlag::Flag2,
        SchedFlag::Flag3,
    ];

    /// The word: `sh-fallback`, `sh-port`, `mh-fallback`, `mh-port`, `flag-1`..`flag-3`.
    pub const fn name(self) -> &'static str {
        match self {
            SchedFlag::ShFallback => "sh-fallback",
            SchedFlag::ShPort => "sh-port",
            SchedFlag::MhFallback => "mh-fallback",
            SchedFlag::MhPort => "mh-port",
            SchedFlag::Flag1 => "flag-1",
            SchedFlag::Flag2 => "flag-2",
            SchedFlag::Flag3 => "flag-3",
        }
    }

    /// The [`SvcFlags`] bit it sets.
    pub const fn bit(self) -> u32 {
        match self {
            SchedFlag::ShFallback | SchedFlag::MhFallback | SchedFlag::Flag1 => SvcFlags::SCHED1,
            SchedFlag::ShPort | SchedFlag::MhPort | SchedFlag::Flag2 => SvcFlags::SCHED2,
            SchedFlag::Flag3 => SvcFlags::SCHED3,
        }
    }

    /// The only scheduler the word may be given with (ipvsadm refuses `sh-port` with
    /// `-s wlc`: "incompatible scheduler flag"); `None` for `flag-N`.
    pub const fn scheduler(self) -> Option<SchedulerKind> {
        match self {
            SchedFlag::ShFallback | SchedFlag::ShPort => Some(SchedulerKind::Sh),
            SchedFlag::MhFallback | SchedFlag::MhPort => Some(SchedulerKind::Mh),
            SchedFlag::Flag1 | SchedFlag::Flag2 | SchedFlag::Flag3 => None,
        }
    }

    /// The word named `name`, if ipvsadm knows it.
    pub fn from_name(name: &str) -> Option<SchedFlag> {
        SchedFlag::ALL.into_iter().find(|f| f.name() == name)
    }

    /// The word ipvsadm writes for `bit` (one of SCHED1..SCHED3) of a service of
    /// `scheduler`: sh's and mh's own names for their first two bits, else `flag-N`.
    pub fn for_bit(bit: u32, scheduler: SchedulerKind) -> Option<SchedFlag> {
        let own = SchedFlag::ALL.into_iter().find(|f| f.bit() == bit && f.scheduler() == Some(scheduler));
        own.or_else(|| SchedFlag::ALL.into_iter().find(|f| f.bit() == bit && f.scheduler().is_none()))
    }
}

impl fmt::Display for SchedFlag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Transport protocol of a flow or a virtual service, as `ipvsadm -t/-u/--sctp-service`
/// names it (the one definition: `lvs-ipvs` and every other crate use this one).
///
/// With the `serde` feature it is (de)serialised as ipvsadm's `-L` names it (`TCP`, `UDP`,
/// `SCTP`), the words of the scenario format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Protocol {
    /// `-t`, IP protocol 6.
    #[cfg_attr(feature = "serde", serde(rename = "TCP"))]
    Tcp,
    /// `-u`, IP protocol 17.
    #[cfg_attr(feature = "serde", serde(rename = "UDP"))]
    Udp,
    /// `--sctp-service`, IP protocol 132.
    #[cfg_attr(feature = "serde", serde(rename = "SCTP"))]
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sched_flag_words_are_ipvsadms() {
        for f in SchedFlag::ALL {
            assert_eq!(SchedFlag::from_name(f.name()), Some(f));
        }
        assert_eq!(SchedFlag::from_name("sh_fallback"), None);
        assert_eq!(SchedFlag::from_name("flag-4"), None);
        // print_sched_flags(): sh and mh have their own names for SCHED1/2, not for SCHED3.
        let all = SvcFlags(SvcFlags::SCHED1 | SvcFlags::SCHED2 | SvcFlags::SCHED3 | SvcFlags::ONEPACKET);
        let words = |s| all.sched_flags(s).map(SchedFlag::name).collect::<Vec<_>>();
        assert_eq!(words(SchedulerKind::Sh), ["sh-fallback", "sh-port", "flag-3"]);
        assert_eq!(words(SchedulerKind::Mh), ["mh-fallback", "mh-port", "flag-3"]);
        assert_eq!(words(SchedulerKind::Wlc), ["flag-1", "flag-2", "flag-3"]);
        assert_eq!(
            SvcFlags(SvcFlags::SCHED2).sched_flags(SchedulerKind::Sh).collect::<Vec<_>>(),
            [SchedFlag::ShPort]
        );
        assert_eq!(SchedFlag::ShPort.scheduler(), Some(SchedulerKind::Sh));
        assert_eq!(SchedFlag::Flag2.scheduler(), None);
    }

    #[test]
    fn ipvsadm_switches() {
        let s: Vec<_> = [Forwarding::Masq, Forwarding::Local, Forwarding::Tunnel, Forwarding::DirectRouting]
            .map(Forwarding::ipvsadm_switch)
            .into();
        assert_eq!(s, ["-m", "-g", "-i", "-g"]);
    }
}
