//! Reconnection delays: exponential backoff with jitter.
//!
//! The n-th consecutive failure waits a random time in `[d/2, d)` where
//! `d = min(max, base · 2ⁿ)` ("equal jitter"): a director that restarts is not hit by
//! every agent in the same instant, and a long outage costs one attempt per `max`.

use lvs_sched::Duration;

/// Backoff state for one director.
#[derive(Clone, Debug)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    /// The agent's reconnection delays: from 500 ms, doubling up to 30 s (the daemon's and
    /// the simulator's agents both use these).
    pub fn agent() -> Backoff {
        Backoff::new(Duration::from_millis(500), Duration::from_secs(30))
    }

    /// Starts at `base` and doubles up to `max`.
    pub fn new(base: Duration, max: Duration) -> Backoff {
        assert!(base.as_nanos() > 0 && base <= max, "backoff needs 0 < base <= max");
        Backoff { base, max, failures: 0 }
    }

    /// The delay before the next attempt; `random` is any uniformly random number (the
    /// caller's generator, so that the simulator can seed it).
    pub fn next_delay(&mut self, random: u64) -> Duration {
        let shift = self.failures.min(32);
        let d = self.base.as_nanos().saturating_mul(1u64 << shift).min(self.max.as_nanos());
        self.failures = self.failures.saturating_add(1);
        let half = d / 2;
        Duration(half + if d - half == 0 { 0 } else { random % (d - half) })
    }

    /// A connection succeeded (registered): the next failure starts from `base` again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// Consecutive failures so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_with_jitter_up_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        let ms = |d: Duration| d.as_nanos() / 1_000_000;
        assert_eq!(ms(b.next_delay(0)), 250);
        assert_eq!(ms(b.next_delay(499_999_999)), 999);
        assert!((1000..2000).contains(&ms(b.next_delay(12345678901))));
        for i in 3..40 {
            let d = ms(b.next_delay(987654321));
            // 500 ms · 2^i reaches the 30 s cap at i = 6.
            let cap = (500u64 << i.min(6)).min(30_000);
            assert!((cap / 2..cap).contains(&d), "failure {i}: {d} ms");
        }
        b.reset();
        assert_eq!(ms(b.next_delay(0)), 250);
    }
}
