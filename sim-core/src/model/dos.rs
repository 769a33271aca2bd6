//! A director under a SYN flood: the flood's configuration and its checks. The
//! defences themselves are the kernel's, in `lvs_ipvs` (`defense.rs`); the director's
//! memory is [`lvs_ipvs::Memory`] in [`super::DirectorConfig::memory`].

use std::net::IpAddr;

use lvs_sched::Duration;

/// The fastest flood a run takes [SYN/s] (a bound on the events a run can make).
pub const MAX_FLOOD_RATE: f64 = 1e6;
/// The most spoofed source addresses a flood draws from (an IPv4 /8 and some).
pub const MAX_FLOOD_SOURCES: u32 = 1 << 28;

/// A SYN flood aimed at one of a director's virtual services: SYNs from spoofed
/// sources (each drawn uniformly from `sources` consecutive addresses, with a random
/// source port) that never answer the real server's SYN-ACK and send nothing else. Each
/// SYN reaches the director's IPVS, which schedules it like any first packet: its entry
/// stays half-open (SYN_RECV, or SYNACK under `secure_tcp` with DR/TUN) until it
/// expires or a defence drops it. Only the table is modelled: the SYNs cost the
/// director's links and CPU nothing, and the real servers' SYN queues are not modelled.
#[derive(Clone, Debug, PartialEq)]
pub struct SynFloodConfig {
    /// Name, for reports.
    pub name: String,
    /// The virtual IP attacked.
    pub vip: IpAddr,
    /// The virtual port attacked.
    pub port: u16,
    /// SYNs a second, evenly spaced [SYN/s].
    pub rate: f64,
    /// Spoofed source addresses to draw from.
    pub sources: u32,
    /// The first of them.
    pub first_source: IpAddr,
    /// The first SYN is sent at this time.
    pub start: Duration,
    /// No SYN at or after this time (`None`: until the run's duration).
    pub stop: Option<Duration>,
}

impl SynFloodConfig {
    /// Checks the flood against a run of `duration`; `family_served`: the director has a
    /// service of the virtual IP's address family. The message says what is wrong.
    pub(super) fn check(&self, duration: Duration, family_served: bool) -> Result<(), String> {
        if !(self.rate > 0.0 && self.rate <= MAX_FLOOD_RATE) {
            return Err(format!("rate must be in (0, {MAX_FLOOD_RATE}] SYN/s, got {}", self.rate));
        }
        if !(1..=MAX_FLOOD_SOURCES).contains(&self.sources) {
            return Err(format!("sources must be in 1..={MAX_FLOOD_SOURCES}, got {}", self.sources));
        }
        if self.first_source.is_ipv4() != self.vip.is_ipv4() {
            return Err("the sources and the virtual IP must be of one address family".into());
        }
        if !family_served {
            return Err(format!("the director has no service of {}'s address family", self.vip));
        }
        let stop = self.stop.unwrap_or(duration);
        if self.start >= stop {
            return Err(format!("start {} must come before stop {}", self.start, stop));
        }
        Ok(())
    }
}

/// The `k`-th spoofed source of a flood with `sources` addresses from `first`.
pub(crate) fn source(first: IpAddr, k: u32) -> IpAddr {
    match first {
        IpAddr::V4(a) => IpAddr::V4(u32::from(a).wrapping_add(k).into()),
        IpAddr::V6(a) => IpAddr::V6(u128::from(a).wrapping_add(u128::from(k)).into()),
    }
}
