//! Which agent connections the master admits, and how its accept loop backs off: a source
//! allow-list of networks (`--allow-from`), a cap on connections in total
//! (`--max-connections`) and per source address (`--max-connections-per-source`), decided
//! at accept, before the daemon spawns a task or allocates a buffer for the connection.
//!
//! The daemon asks [`Admission::handle_accept`] for each accepted socket, closes a refused
//! one at once, and calls [`Admission::handle_close`] when an admitted one closes. Refusals
//! are counted by [`Refusal`] for the metrics.
//!
//! [`AcceptBackoff`]: when `accept()` fails because descriptors or buffers ran out
//! (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`), the loop waits 100 ms, doubling to 1 s, instead
//! of retrying at once (the pending connection stays in the backlog, so an immediate retry
//! fails again and spins).

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use lvs_sched::Duration;

pub use crate::types::{Cidr, CidrError};

/// The admission settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdmissionConfig {
    /// Sources allowed to connect; empty: every source.
    pub allow_from: Vec<Cidr>,
    /// The most agent connections open at once.
    pub max_connections: usize,
    /// The most agent connections open at once from one source address.
    pub max_per_source: usize,
}

/// Descriptors kept back from `RLIMIT_NOFILE` for everything but agent connections (the
/// listeners, the status server's connections, the journal, netlink, the runtime).
pub const NOFILE_RESERVE: u64 = 128;

/// The default `--max-connections`: 4096, or fewer if the descriptor limit (the soft
/// `RLIMIT_NOFILE`) minus [`NOFILE_RESERVE`] is lower, and at least 1.
pub fn default_max_connections(nofile: u64) -> usize {
    let fit = nofile.saturating_sub(NOFILE_RESERVE).clamp(1, 4096);
    usize::try_from(fit).unwrap_or(4096)
}

/// The default `--max-connections-per-source`.
pub const DEFAULT_MAX_PER_SOURCE: usize = 16;

/// Why a connection was refused at accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Refusal {
    /// Its source is not in `--allow-from`.
    NotAllowed,
    /// `--max-connections` are open.
    MaxConnections,
    /// `--max-connections-per-source` are open from its source.
    MaxPerSource,
}

impl Refusal {
    /// Every reason, in the metrics' order.
    pub const ALL: [Refusal; 3] = [Refusal::NotAllowed, Refusal::MaxConnections, Refusal::MaxPerSource];

    /// The metrics label.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::NotAllowed => "not_allowed",
            Refusal::MaxConnections => "max_connections",
            Refusal::MaxPerSource => "max_connections_per_source",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Refusal::NotAllowed => "source not in --allow-from",
            Refusal::MaxConnections => "--max-connections reached",
            Refusal::MaxPerSource => "--max-connections-per-source reached",
        })
    }
}

/// The open connections per source, and the refusals so far.
#[derive(Clone, Debug)]
pub struct Admission {
    config: AdmissionConfig,
    open: usize,
    per_source: BTreeMap<IpAddr, usize>,
    refused: [u64; 3],
}

impl Admission {
    /// No connection open yet.
    pub fn new(config: AdmissionConfig) -> Admission {
        Admission { config, open: 0, per_source: BTreeMap::new(), refused: [0; 3] }
    }

    /// A connection from `peer` was accepted: admit it (and count it open until
    /// [`Admission::handle_close`]) or say why not.
    pub fn handle_accept(&mut self, peer: IpAddr) -> Result<(), Refusal> {
        let verdict = self.check(peer);
        match verdict {
            Ok(()) => {
                self.open += 1;
                *self.per_source.entry(peer).or_insert(0) += 1;
            }
            Err(r) => self.refused[r as usize] += 1,
        }
        verdict
    }

    fn check(&self, peer: IpAddr) -> Result<(), Refusal> {
        let c = &self.config;
        if !c.allow_from.is_empty() && !c.allow_from.iter().any(|n| n.contains(peer)) {
            return Err(Refusal::NotAllowed);
        }
        if self.open >= c.max_connections {
            return Err(Refusal::MaxConnections);
        }
        if self.per_source.get(&peer).copied().unwrap_or(0) >= c.max_per_source {
            return Err(Refusal::MaxPerSource);
        }
        Ok(())
    }

    /// An admitted connection from `peer` closed.
    pub fn handle_close(&mut self, peer: IpAddr) {
        let n = self.per_source.get_mut(&peer).expect("handle_close of a connection that was not admitted");
        *n -= 1;
        if *n == 0 {
            self.per_source.remove(&peer);
        }
        self.open -= 1;
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open
    }

    /// Refusals so far, per reason, in [`Refusal::ALL`]'s order.
    pub fn refused(&self) -> [(Refusal, u64); 3] {
        Refusal::ALL.map(|r| (r, self.refused[r as usize]))
    }

    /// The settings.
    pub fn config(&self) -> &AdmissionConfig {
        &self.config
    }

    /// One line for the start-up log: who may connect, and how many.
    pub fn describe(&self) -> String {
        let c = &self.config;
        let who = if c.allow_from.is_empty() {
            "from any address (no --allow-from)".to_owned()
        } else {
            let nets: Vec<String> = c.allow_from.iter().map(Cidr::to_string).collect();
            format!("from {}", nets.join(", "))
        };
        format!(
            "agent connections accepted {who}; at most {} at once, {} per source address",
            c.max_connections, c.max_per_source
        )
    }
}

/// Why `accept()` failed, as the daemon classifies its errno.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum AcceptFailure {
    /// Out of descriptors or buffers (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`): retrying at
    /// once fails again.
    Exhausted,
    /// Anything else (a connection reset while queued, ...).
    Other,
}

/// How long the accept loop pauses after failures: 100 ms after the first exhaustion,
/// doubling to 1 s; 10 ms after the first other failure, doubling to 1 s; from the start
/// again after an accept succeeds.
#[derive(Clone, Debug, Default)]
pub struct AcceptBackoff {
    failures: u32,
}

impl AcceptBackoff {
    /// The longest pause.
    pub const MAX: Duration = Duration::from_secs(1);

    /// `accept()` failed: the pause before the next attempt.
    pub fn handle_failure(&mut self, why: AcceptFailure) -> Duration {
        let base = match why {
            AcceptFailure::Exhausted => Duration::from_millis(100),
            AcceptFailure::Other => Duration::from_millis(10),
        };
        let d = base.as_nanos().saturating_mul(1u64 << self.failures.min(20));
        self.failures = self.failures.saturating_add(1);
        Duration(d.min(Self::MAX.as_nanos()))
    }

    /// `accept()` succeeded.
    pub fn handle_success(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn cidr(s: &str) -> Cidr {
        s.parse().unwrap()
    }

    #[test]
    fn networks_parse_match_and_refuse_typos() {
        assert!(cidr("10.0.0.0/8").contains(ip("10.255.1.2")));
        assert!(!cidr("10.0.0.0/8").contains(ip("11.0.0.1")));
        assert!(cidr("192.168.1.7").contains(ip("192.168.1.7")));
        assert!(!cidr("192.168.1.7").contains(ip("192.168.1.8")));
        assert!(cidr("0.0.0.0/0").contains(ip("203.0.113.66")));
        assert!(!cidr("0.0.0.0/0").contains(ip("::1")));
        assert!(cidr("::/0").contains(ip("2001:db8::1")));
        assert!(cidr("2001:db8::/32").contains(ip("2001:db8:ffff::1")));
        assert!(!cidr("2001:db8::/32").contains(ip("2001:db9::1")));
        // A dual-stack listener's view of an IPv4 agent.
        assert!(cidr("127.0.0.0/8").contains(ip("::ffff:127.0.0.9")));
        assert_eq!(cidr("10.1.0.0/16").to_string(), "10.1.0.0/16");
        assert_eq!(cidr("::1").to_string(), "::1", "a host is written bare");
        assert_eq!(cidr("::1/128"), cidr("::1"));
        let e = "10.0.0.1/8".parse::<Cidr>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "10.0.0.1/8 has bits set past its prefix length (did you mean 10.0.0.0/8?)"
        );
        assert!(matches!("10.0.0.0/33".parse::<Cidr>(), Err(CidrError::Prefix(_, 32))));
        assert!(matches!("10.0.0.0/-1".parse::<Cidr>(), Err(CidrError::Prefix(..))));
        assert!(matches!("::/129".parse::<Cidr>(), Err(CidrError::Prefix(_, 128))));
        assert!(matches!("example.com/8".parse::<Cidr>(), Err(CidrError::Address(_))));
        assert!(matches!("".parse::<Cidr>(), Err(CidrError::Address(_))));
        assert_eq!(Cidr::new(ip("10.0.0.0"), 33), None);
    }

    fn admission(allow: &[&str], total: usize, per_source: usize) -> Admission {
        Admission::new(AdmissionConfig {
            allow_from: allow.iter().map(|s| cidr(s)).collect(),
            max_connections: total,
            max_per_source: per_source,
        })
    }

    #[test]
    fn caps_per_source_and_in_total_are_enforced_and_released() {
        let mut a = admission(&[], 5, 2);
        let (x, y, z) = (ip("10.0.0.1"), ip("10.0.0.2"), ip("10.0.0.3"));
        assert_eq!(a.handle_accept(x), Ok(()));
        assert_eq!(a.handle_accept(x), Ok(()));
        assert_eq!(a.handle_accept(x), Err(Refusal::MaxPerSource));
        assert_eq!(a.handle_accept(y), Ok(()));
        assert_eq!(a.handle_accept(y), Ok(()));
        assert_eq!(a.handle_accept(z), Ok(()));
        assert_eq!(a.open(), 5);
        // Full: even a fresh source is refused, and a refusal holds nothing.
        assert_eq!(a.handle_accept(ip("10.0.0.4")), Err(Refusal::MaxConnections));
        assert_eq!(a.open(), 5);
        a.handle_close(x);
        assert_eq!(a.handle_accept(ip("10.0.0.4")), Ok(()));
        a.handle_close(z);
        assert_eq!(a.handle_accept(x), Ok(()));
        assert_eq!(a.handle_accept(x), Err(Refusal::MaxConnections));
        assert_eq!(
            a.refused(),
            [(Refusal::NotAllowed, 0), (Refusal::MaxConnections, 2), (Refusal::MaxPerSource, 1)]
        );
        for p in [x, x, y, y, ip("10.0.0.4")] {
            a.handle_close(p);
        }
        assert_eq!(a.open(), 0);
        assert!(a.per_source.is_empty(), "no entry left for closed sources");
    }

    #[test]
    fn the_allow_list_refuses_other_sources_before_counting_them() {
        let mut a = admission(&["10.0.0.0/24", "2001:db8::/64"], 10, 10);
        assert_eq!(a.handle_accept(ip("10.0.0.9")), Ok(()));
        assert_eq!(a.handle_accept(ip("2001:db8::7")), Ok(()));
        assert_eq!(a.handle_accept(ip("203.0.113.66")), Err(Refusal::NotAllowed));
        assert_eq!(a.handle_accept(ip("10.0.1.9")), Err(Refusal::NotAllowed));
        assert_eq!(a.open(), 2);
        assert_eq!(a.refused()[0], (Refusal::NotAllowed, 2));
        assert_eq!(
            a.describe(),
            "agent connections accepted from 10.0.0.0/24, 2001:db8::/64; at most 10 at once, 10 per source address"
        );
        assert!(admission(&[], 1, 1).describe().contains("from any address (no --allow-from)"));
    }

    #[test]
    #[should_panic(expected = "not admitted")]
    fn closing_what_was_never_admitted_is_a_bug() {
        admission(&[], 1, 1).handle_close(ip("10.0.0.1"));
    }

    #[test]
    fn the_default_cap_fits_the_descriptor_limit() {
        assert_eq!(default_max_connections(1024), 896);
        assert_eq!(default_max_connections(1 << 20), 4096);
        assert_eq!(default_max_connections(10), 1);
        assert_eq!(default_max_connections(u64::MAX), 4096);
    }

    #[test]
    fn accept_failures_back_off_doubling_to_a_second_and_reset() {
        let ms = |d: Duration| d.as_nanos() / 1_000_000;
        let mut b = AcceptBackoff::default();
        let seq: Vec<u64> = (0..7).map(|_| ms(b.handle_failure(AcceptFailure::Exhausted))).collect();
        assert_eq!(seq, [100, 200, 400, 800, 1000, 1000, 1000]);
        for _ in 0..100 {
            assert_eq!(ms(b.handle_failure(AcceptFailure::Exhausted)), 1000);
        }
        b.handle_success();
        assert_eq!(ms(b.handle_failure(AcceptFailure::Other)), 10);
        assert_eq!(ms(b.handle_failure(AcceptFailure::Other)), 20);
    }
}
