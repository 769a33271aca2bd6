//! A director under a SYN flood: the flood's configuration and its checks. The
//! defences themselves are the kernel's, in `lvs_ipvs` (`defense.rs`); the director's
//! memory is [`lvs_ipvs::Memory`] in [`super::DirectorConfig::memory`].

use std::net::IpAddr;

use lvs_sched::Duration;

use super::config::{ConfigError, DirectorConfig};

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

/// The checks of a director's DoS settings: its memory and its floods.
pub(super) fn validate(d: &DirectorConfig, duration: Duration) -> Result<(), ConfigError> {
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
        let at = place(&format!("SYN flood {:?}", f.name));
        let bad = |message: String| Err(ConfigError { place: at.clone(), message });
        if !(f.rate > 0.0 && f.rate <= MAX_FLOOD_RATE) {
            return bad(format!("rate must be in (0, {MAX_FLOOD_RATE}] SYN/s, got {}", f.rate));
        }
        if !(1..=MAX_FLOOD_SOURCES).contains(&f.sources) {
            return bad(format!("sources must be in 1..={MAX_FLOOD_SOURCES}, got {}", f.sources));
        }
        if f.first_source.is_ipv4() != f.vip.is_ipv4() {
            return bad("the sources and the virtual IP must be of one address family".into());
        }
        if !d.services.iter().any(|s| s.addr.is_ipv6() == f.vip.is_ipv6()) {
            return bad(format!("the director has no service of {}'s address family", f.vip));
        }
        let stop = f.stop.unwrap_or(duration);
        if f.start >= stop {
            return bad(format!("start {} must come before stop {}", f.start, stop));
        }
    }
    Ok(())
}

/// The `k`-th spoofed source of a flood with `sources` addresses from `first`.
pub(crate) fn source(first: IpAddr, k: u32) -> IpAddr {
    match first {
        IpAddr::V4(a) => IpAddr::V4(u32::from(a).wrapping_add(k).into()),
        IpAddr::V6(a) => IpAddr::V6(u128::from(a).wrapping_add(u128::from(k)).into()),
    }
}
