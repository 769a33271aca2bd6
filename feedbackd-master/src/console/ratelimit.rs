//! Login attempts per client address: at most [`LOGIN_BURST`] in any [`LOGIN_WINDOW`]; the
//! next is refused (429) without checking the password. Every attempt counts when it
//! starts (so that parallel guesses count too), and a successful one is given back
//! ([`LoginLimiter::succeeded`]): only failures use up the budget. IPv6 clients count per /64 (one
//! host usually holds a whole /64). The table is bounded: when it is full of addresses
//! still inside their window, new addresses are refused too (fail closed) until one ages out.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Attempts allowed per address per window.
pub const LOGIN_BURST: usize = 5;
/// The window.
pub const LOGIN_WINDOW: Duration = Duration::from_secs(60);
/// The most addresses tracked at once.
pub const MAX_ADDRESSES: usize = 4096;

/// The login attempts of recent addresses.
#[derive(Debug)]
pub struct LoginLimiter {
    attempts: HashMap<IpAddr, VecDeque<Instant>>,
    burst: usize,
    window: Duration,
    max_addresses: usize,
}

impl Default for LoginLimiter {
    fn default() -> LoginLimiter {
        LoginLimiter::new(LOGIN_BURST, LOGIN_WINDOW, MAX_ADDRESSES)
    }
}

/// The address an attempt counts against: IPv4 as is, IPv6 by its /64.
fn bucket(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

impl LoginLimiter {
    /// At most `burst` attempts per `window` per address, `max_addresses` tracked.
    pub fn new(burst: usize, window: Duration, max_addresses: usize) -> LoginLimiter {
        LoginLimiter { attempts: HashMap::new(), burst, window, max_addresses }
    }

    /// Counts an attempt from `ip`: true when it may go on, false when over the limit
    /// (a refused attempt is not counted, so a client that waits gets through).
    pub fn attempt(&mut self, now: Instant, ip: IpAddr) -> bool {
        let key = bucket(ip);
        let window = self.window;
        if !self.attempts.contains_key(&key) && self.attempts.len() >= self.max_addresses {
            self.attempts.retain(|_, q| q.back().is_some_and(|t| now.saturating_duration_since(*t) < window));
            if self.attempts.len() >= self.max_addresses {
                return false;
            }
        }
        let q = self.attempts.entry(key).or_default();
        while q.front().is_some_and(|t| now.saturating_duration_since(*t) >= window) {
            q.pop_front();
        }
        if q.len() >= self.burst {
            return false;
        }
        q.push_back(now);
        true
    }

    /// The attempt just counted for `ip` succeeded: it does not count.
    pub fn succeeded(&mut self, ip: IpAddr) {
        if let Some(q) = self.attempts.get_mut(&bucket(ip)) {
            q.pop_back();
        }
    }

    /// Addresses tracked.
    pub fn len(&self) -> usize {
        self.attempts.len()
    }

    /// None tracked.
    pub fn is_empty(&self) -> bool {
        self.attempts.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_per_minute_per_address_then_refused_until_the_window_passes() {
        let t0 = Instant::now();
        let mut l = LoginLimiter::default();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for i in 0..LOGIN_BURST {
            assert!(l.attempt(t0 + Duration::from_secs(i as u64), a), "{i}");
        }
        assert!(!l.attempt(t0 + Duration::from_secs(10), a));
        assert!(l.attempt(t0 + Duration::from_secs(10), b), "another address is not affected");
        assert!(!l.attempt(t0 + Duration::from_secs(59), a));
        assert!(l.attempt(t0 + LOGIN_WINDOW, a), "the first attempt aged out");
        assert!(!l.attempt(t0 + LOGIN_WINDOW, a));
        // Successes are given back: any number of them, and the failures still count.
        let c: IpAddr = "192.0.2.3".parse().unwrap();
        for _ in 0..3 * LOGIN_BURST {
            assert!(l.attempt(t0, c));
            l.succeeded(c);
        }
        for _ in 0..LOGIN_BURST {
            assert!(l.attempt(t0, c));
        }
        assert!(!l.attempt(t0, c));
    }

    #[test]
    fn ipv6_counts_per_64_and_the_table_is_bounded() {
        let t0 = Instant::now();
        let mut l = LoginLimiter::new(2, LOGIN_WINDOW, 3);
        assert!(l.attempt(t0, "2001:db8::1".parse().unwrap()));
        assert!(l.attempt(t0, "2001:db8::2".parse().unwrap()));
        assert!(!l.attempt(t0, "2001:db8::3".parse().unwrap()), "same /64");
        assert!(l.attempt(t0, "10.0.0.1".parse().unwrap()));
        assert!(l.attempt(t0, "10.0.0.2".parse().unwrap()));
        assert!(!l.attempt(t0, "10.0.0.3".parse().unwrap()), "table full of live windows: refused");
        assert_eq!(l.len(), 3);
        assert!(l.attempt(t0 + LOGIN_WINDOW, "10.0.0.3".parse().unwrap()), "old ones swept");
        assert_eq!(l.len(), 1);
    }
}
