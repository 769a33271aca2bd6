//! A real-server health checker as ldirectord, keepalived and piranha's nanny run it: one
//! per (director, virtual service, real server), a state machine in virtual time that
//! never reads a clock and knows nothing of how a check travels. The tools differ only in
//! their settings ([`HealthCheckConfig`]'s `schedule`, `retries`, `rise`, ...).
//!
//! # Call order
//! ```text
//! let mut c = HealthChecker::new(&cfg, first);   // first check at `first`
//! loop {
//!     // at c.next_time():
//!     c.handle_timeout(now);                      // starts a check, or times one out
//!     while let Some(p) = c.poll_probe() { /* send a probe; answer later with p.serial */ }
//!     // when a probe's answer arrives:
//!     c.handle_response(now, serial, Outcome::Success);
//!     while let Some(v) = c.poll_verdict() { /* quiesce, remove or restore */ }
//! }
//! ```
//!
//! # Timing (keepalived 2.2.7's check_http.c/check_tcp.c, ldirectord 4.12's main loop,
//! measured against both in tests/ha_timing: docs/ha-timing.md; nanny.c's `run()`)
//! - Checks follow each other, they are not on a clock grid: the next check starts
//!   `interval` after the previous one ENDED (its answer, its refusal or its deadline:
//!   keepalived's `epilog()` arms `thread_add_timer(..., delay_loop)` when a check
//!   finishes, nanny sleeps `interval` after each check, ldirectord sleeps
//!   `checkinterval` after its round of checks, see [`Round`]). A long check (one that
//!   times out) thus pushes every later check back.
//! - A check fails when its answer is a refusal, or when no answer came before `start +
//!   timeout` (it fails at that time exactly). An answer at or after the deadline, or for
//!   an earlier check, is ignored.
//! - A real server starts UP. Each failed check of an UP server counts; a success resets
//!   the count. When the count exceeds `retries` the server is DOWN at the time of that
//!   failure. Before that, a failed check is retried `delay_before_retry` after the
//!   failure (keepalived), or with `None` after `interval` (ldirectord: DOWN after
//!   `retries + 1` consecutive failed checks, `failurecount`).
//! - After the failure that makes the server DOWN, and after every failure of a DOWN
//!   server, the next check waits `max(delay_before_retry, interval)` (keepalived:
//!   `delay = max(delay_before_retry, delay_loop)` once a URL has failed), or
//!   `interval`.
//! - nanny's slow start (`weight_ramp`): see [`HealthChecker::with_weight`].
//! - A DOWN server is checked on the schedule, without retries; `rise` consecutive
//!   successful checks bring it UP at the time the last answer arrives (1 for ldirectord
//!   and keepalived; nanny's `reentry / timeout`: nanny.c `run()` counts successes in
//!   `currCount`, zeroes it on a failure, and puts the server back when `currCount >=
//!   countThresh`).
//! - [`HealthChecker::pace`]d checkers (ldirectord, whose checks of one director run one
//!   after the other: [`super::Schedule::Round`]) do not schedule themselves: after a check
//!   ends they wait until [`HealthChecker::start_at`] says when the next one starts, and
//!   [`HealthChecker::take_ended`] tells the pacer when the check ended.

use std::collections::VecDeque;

use lvs_sched::{Duration, Time};

use super::HealthCheckConfig;

/// A check to perform: send the probe, and answer [`HealthChecker::handle_response`]
/// with its `serial` (or let the deadline pass).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Probe {
    /// Identifies the check.
    pub serial: u32,
    /// An answer must arrive before this time.
    pub deadline: Time,
}

/// The answer to a probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The connection was accepted (connect) or the page was right (negotiate).
    Success,
    /// The real server refused (a reset): the check failed at once.
    Failure,
}

/// A change of the checker's view of its real server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Declared down at this time (the check that made it so failed then).
    Down(Time),
    /// Declared up again at this time (a successful answer arrived then): its configured
    /// weight again.
    Up(Time),
    /// Its weight set to this at this time (nanny's slow start; after an `Up` at the same
    /// time, it replaces the weight `Up` restored).
    Weight(Time, u32),
}

/// What a checker did (whole run).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CheckCounters {
    /// Checks started (retries included).
    pub started: u64,
    /// Checks that failed (refused or timed out).
    pub failed: u64,
    /// Times the real server was declared down.
    pub downs: u64,
    /// Times it was declared up again.
    pub ups: u64,
}

/// The check in progress.
#[derive(Clone, Copy, Debug)]
struct Running {
    serial: u32,
    deadline: Time,
}

/// nanny's slow start (see [`HealthChecker::with_weight`]).
#[derive(Clone, Copy, Debug)]
struct Ramp {
    weight: u32,
    now: Option<u32>,
    every: u64,
    count: u64,
    started: bool,
}

/// One real server's health checker.
#[derive(Clone, Debug)]
pub struct HealthChecker {
    interval: Duration,
    timeout: Duration,
    retries: u32,
    delay_before_retry: Option<Duration>,
    rise: u32,
    up: bool,
    /// Someone else starts the checks ([`HealthChecker::pace`]).
    paced: bool,
    /// When the last check ended, for the pacer (until taken).
    ended: Option<Time>,
    /// When the next check starts (while none runs); [`Time::MAX`] while a paced
    /// checker waits for its turn.
    next_start: Time,
    running: Option<Running>,
    /// Consecutive failed checks of an UP server.
    failures: u32,
    /// Consecutive successful checks of a DOWN server.
    successes: u32,
    /// nanny's slow start: the server's configured weight, the weight it has now while
    /// below it (`None`: the configured one), checks between doublings, nanny's
    /// `currCount` (passing checks since the last failure; `countThresh` at start), and
    /// whether no check has passed yet.
    ramp: Option<Ramp>,
    serial: u32,
    probes: VecDeque<Probe>,
    verdicts: VecDeque<Verdict>,
    counters: CheckCounters,
}

impl HealthChecker {
    /// A checker of a real server that is UP, whose first check starts at `first`.
    /// Panics on a zero interval, timeout or rise (validation happens before).
    pub fn new(cfg: &HealthCheckConfig, first: Time) -> Self {
        assert!(cfg.interval > Duration::ZERO, "a health check interval must be > 0");
        assert!(cfg.timeout > Duration::ZERO, "a health check timeout must be > 0");
        assert!(cfg.rise > 0, "a health check's rise must be > 0");
        HealthChecker {
            interval: cfg.interval,
            timeout: cfg.timeout,
            retries: cfg.retries,
            delay_before_retry: cfg.delay_before_retry,
            rise: cfg.rise,
            up: true,
            paced: false,
            ended: None,
            next_start: first,
            running: None,
            failures: 0,
            successes: 0,
            ramp: cfg.weight_ramp.then(|| Ramp {
                weight: 1,
                now: None,
                // `interval > 20 || currCount % (20 / interval) == 0`, whole seconds.
                every: if cfg.interval > Duration::from_secs(20) {
                    1
                } else {
                    (20 / cfg.interval.as_secs_f64().floor().max(1.0) as u64).max(1)
                },
                count: u64::from(cfg.rise),
                started: false,
            }),
            serial: 0,
            probes: VecDeque::new(),
            verdicts: VecDeque::new(),
            counters: CheckCounters::default(),
        }
    }

    /// The real server's configured weight, for nanny's slow start (`weight_ramp`): the
    /// first passing check (at start-up, or the one that brings the server back) sets
    /// its weight to `max(weight >> 5, 1)` ([`Verdict::Weight`]), and it doubles (up to
    /// `weight`) at each passing check whose count since the last failure is a multiple
    /// of `20 / interval` (whole seconds; every check with an interval over 20 s),
    /// counting from `rise` at start-up and from 0 after a failure, the bring-in check
    /// included (nanny.c `run()`, `adjustWeight()`). Without a call, weight 1: no ramp.
    pub fn with_weight(mut self, weight: u32) -> Self {
        if let Some(r) = &mut self.ramp {
            r.weight = weight;
        }
        self
    }

    /// From now on the checker does not schedule its own checks: after each one it waits
    /// for [`HealthChecker::start_at`] (ldirectord's round, see [`Round`]).
    pub fn pace(&mut self) {
        self.paced = true;
        if self.running.is_none() {
            self.next_start = Time::MAX;
        }
    }

    /// A paced checker's next check starts at `t` (it must not be running one).
    pub fn start_at(&mut self, t: Time) {
        debug_assert!(self.running.is_none(), "start_at while a check runs");
        self.next_start = t;
    }

    /// When the last check ended (its answer or its failure), once: a paced checker's
    /// pacer then starts the next check.
    pub fn take_ended(&mut self) -> Option<Time> {
        self.ended.take()
    }

    /// When [`HealthChecker::handle_timeout`] must next be called: the running check's
    /// deadline, or the next check's start.
    pub fn next_time(&self) -> Time {
        self.running.map_or(self.next_start, |r| r.deadline)
    }

    /// Does the checker hold its real server up?
    pub fn is_up(&self) -> bool {
        self.up
    }

    /// Its counters.
    pub fn counters(&self) -> CheckCounters {
        self.counters
    }

    /// Runs what is due at `now`: a check whose deadline passed fails, and a check whose
    /// start time came starts (both, in that order, when they coincide).
    pub fn handle_timeout(&mut self, now: Time) {
        if let Some(r) = self.running
            && now >= r.deadline
        {
            self.running = None;
            self.failed(r.deadline);
        }
        if self.running.is_none() && now >= self.next_start {
            self.start(now);
        }
    }

    /// The answer to check `serial` arrived at `now`: ignored when late (at or after its
    /// deadline) or for a check that is no longer running.
    pub fn handle_response(&mut self, now: Time, serial: u32, outcome: Outcome) {
        let Some(r) = self.running else { return };
        if r.serial != serial || now >= r.deadline {
            return;
        }
        self.running = None;
        match outcome {
            Outcome::Success => self.succeeded(now),
            Outcome::Failure => self.failed(now),
        }
    }

    /// The next probe to send.
    pub fn poll_probe(&mut self) -> Option<Probe> {
        self.probes.pop_front()
    }

    /// The next verdict.
    pub fn poll_verdict(&mut self) -> Option<Verdict> {
        self.verdicts.pop_front()
    }

    fn start(&mut self, now: Time) {
        self.serial = self.serial.wrapping_add(1);
        let deadline = now + self.timeout;
        self.running = Some(Running { serial: self.serial, deadline });
        self.probes.push_back(Probe { serial: self.serial, deadline });
        self.counters.started += 1;
    }

    fn succeeded(&mut self, now: Time) {
        self.failures = 0;
        if let Some(r) = &mut self.ramp {
            r.count += 1; // nanny's currCount, up or down
        }
        let mut brought_in = false;
        if !self.up {
            self.successes += 1;
            if self.successes >= self.rise {
                self.up = true;
                self.successes = 0;
                self.counters.ups += 1;
                self.verdicts.push_back(Verdict::Up(now));
                brought_in = true;
            }
        }
        if self.up {
            self.ramp_step(now, brought_in);
        }
        self.next_after(now, self.interval);
    }

    /// nanny's slow start after a passing check of an UP server (`brought_in`: the check
    /// that brought it back, right after its [`Verdict::Up`]).
    fn ramp_step(&mut self, now: Time, brought_in: bool) {
        let Some(r) = &mut self.ramp else { return };
        let fresh = brought_in || !r.started;
        r.started = true;
        // The table holds the configured weight (at start-up, or restored by `Up`) until
        // a `Weight` lowers it.
        let cur = if fresh { (r.weight >> 5).max(1) } else { r.now.unwrap_or(r.weight) };
        if cur >= r.weight {
            r.now = None;
            return;
        }
        let next = if r.count % r.every == 0 { cur.saturating_mul(2).min(r.weight) } else { cur };
        r.now = (next < r.weight).then_some(next);
        if next != cur || (fresh && next < r.weight) {
            self.verdicts.push_back(Verdict::Weight(now, next));
        }
    }

    fn failed(&mut self, now: Time) {
        self.counters.failed += 1;
        self.successes = 0;
        if let Some(r) = &mut self.ramp {
            r.count = 0;
            r.started = true;
        }
        if self.up {
            self.failures += 1;
            if self.failures > self.retries {
                self.up = false;
                if let Some(r) = &mut self.ramp {
                    r.now = None;
                }
                self.failures = 0;
                self.counters.downs += 1;
                self.verdicts.push_back(Verdict::Down(now));
            } else {
                // A retry: keepalived's delay_before_retry, else the next interval.
                self.next_after(now, self.delay_before_retry.unwrap_or(self.interval));
                return;
            }
        }
        let delay = self.delay_before_retry.map_or(self.interval, |d| d.max(self.interval));
        self.next_after(now, delay);
    }

    /// The check ended at `t`: the next one `delay` later, or, paced, when the pacer says.
    fn next_after(&mut self, t: Time, delay: Duration) {
        if self.paced {
            self.ended = Some(t);
            self.next_start = Time::MAX;
        } else {
            self.next_start = t + delay;
        }
    }
}

/// ldirectord's round of checks on one director (`fork = no`, its default): it checks
/// every real server of every virtual service one after the other, each check starting
/// when the previous one ended, then sleeps `checkinterval` (`_ld_main_check_all()`,
/// then `sleep $CHECKINTERVAL`). A real server that times out delays the checks of the
/// ones after it and the next round.
///
/// Holds the members' indices (the caller's numbering) in check order; the members are
/// [`HealthChecker::pace`]d and the caller reports each ended check to
/// [`Round::ended`].
#[derive(Clone, Debug)]
pub struct Round {
    members: Vec<usize>,
    interval: Duration,
    /// The member whose check runs (or is due).
    at: usize,
}

impl Round {
    /// A round over `members` (in check order), `interval` of sleep after each round.
    pub fn new(members: Vec<usize>, interval: Duration) -> Self {
        assert!(!members.is_empty(), "a round has a member");
        Round { members, interval, at: 0 }
    }

    /// The member whose check is due.
    pub fn current(&self) -> usize {
        self.members[self.at]
    }

    /// The current member's check ended at `t`: returns the member to start next and
    /// when (at `t`, or `interval` later after the last one).
    pub fn ended(&mut self, t: Time) -> (usize, Time) {
        self.at += 1;
        if self.at == self.members.len() {
            self.at = 0;
            (self.members[0], t + self.interval)
        } else {
            (self.members[self.at], t)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ha::{CheckKind, HealthCheckConfig};

    const MS: u64 = 1_000_000;

    fn t(ms: u64) -> Time {
        Time(ms * MS)
    }

    fn cfg(interval_ms: u64, timeout_ms: u64, retries: u32, delay_ms: Option<u64>) -> HealthCheckConfig {
        HealthCheckConfig {
            interval: Duration::from_millis(interval_ms),
            timeout: Duration::from_millis(timeout_ms),
            retries,
            delay_before_retry: delay_ms.map(Duration::from_millis),
            kind: CheckKind::Connect,
            ..HealthCheckConfig::ldirectord()
        }
    }

    /// Drives a checker until `until`: the real server answers every probe `rtt` after
    /// it was sent when `alive(send time)`, and never otherwise. Returns the probes'
    /// start times and the verdicts.
    fn drive(
        c: &mut HealthChecker,
        until: Time,
        rtt: u64,
        alive: impl Fn(Time) -> bool,
    ) -> (Vec<Time>, Vec<Verdict>) {
        let (mut starts, mut verdicts) = (Vec::new(), Vec::new());
        let mut answer: Option<(Time, u32)> = None;
        loop {
            let next = match answer {
                Some((at, _)) if at <= c.next_time() => at,
                _ => c.next_time(),
            };
            if next > until {
                break;
            }
            match answer {
                Some((at, serial)) if at == next => {
                    answer = None;
                    c.handle_response(at, serial, Outcome::Success);
                }
                _ => c.handle_timeout(next),
            }
            while let Some(p) = c.poll_probe() {
                starts.push(next);
                if alive(next) {
                    answer = Some((next + Duration(rtt), p.serial));
                }
            }
            verdicts.extend(std::iter::from_fn(|| c.poll_verdict()));
        }
        (starts, verdicts)
    }

    /// nanny with lvs.cf's `timeout = 6`, `reentry = 15`: every check `interval` (= the
    /// timeout) after the previous one ended, and `countThresh = 15 / 6 = 2`.
    fn nanny(timeout_s: u32, reentry_s: u32) -> HealthCheckConfig {
        HealthCheckConfig {
            interval: Duration::from_secs(timeout_s.into()),
            timeout: Duration::from_secs(timeout_s.into()),
            rise: HealthCheckConfig::nanny_rise(reentry_s, timeout_s),
            ..HealthCheckConfig::nanny()
        }
    }

    #[test]
    fn nanny_checks_after_each_check_goes_down_at_once_and_needs_reentry_to_come_back() {
        // Answers take 1 ms. nanny.c run(): check, then sleep `interval` (6 s).
        // 0 → 0.001, 6.001 → 6.002, 12.002 → 12.003, 18.003 → 18.004. The server dies at
        // 20 s: the 24.004 s check times out at 30.004 s: down at once (no retries).
        // 36.004 s still dead (fails at 42.004, the count stays 0); back at 40 s: 48.004
        // answers at 48.005 (count 1), 54.005 at 54.006 (count 2 = countThresh): up.
        let mut c = HealthChecker::new(&nanny(6, 15), t(0));
        let alive = |at: Time| at < t(20_000) || at >= t(40_000);
        let (starts, verdicts) = drive(&mut c, t(61_000), MS, alive);
        let expect: Vec<Time> =
            [0, 6001, 12_002, 18_003, 24_004, 36_004, 48_004, 54_005, 60_006].into_iter().map(t).collect();
        assert_eq!(starts, expect);
        assert_eq!(verdicts, [Verdict::Down(t(30_004)), Verdict::Up(t(54_006))]);
        let k = c.counters();
        assert_eq!((k.started, k.failed, k.downs, k.ups), (9, 2, 1, 1));
    }

    #[test]
    fn a_nanny_failure_during_reentry_starts_the_count_again() {
        // timeout 2 s, reentry 6 s: countThresh 3. Checks at 0, 2, 4, ... (answers at
        // once). Dead at 4 s: down at 6 s. Alive again except the check at 12 s:
        // 8 ok (1), 10 ok (2), 12 fails at 14 (0), 16 (1), 18 (2), 20 (3): up at 20 s.
        let mut c = HealthChecker::new(&nanny(2, 6), t(0));
        let (starts, verdicts) = drive(&mut c, t(21_000), 0, |at| !(at == t(4000) || at == t(12_000)));
        assert_eq!(starts, [0, 2000, 4000, 8000, 10_000, 12_000, 16_000, 18_000, 20_000].map(t));
        assert_eq!(verdicts, [Verdict::Down(t(6000)), Verdict::Up(t(20_000))]);
    }

    #[test]
    fn nanny_reentry_shorter_than_the_timeout_restores_on_the_first_success() {
        // reentry 5 s, timeout 10 s: countThresh = 0, and nanny's `currCount >= 0` holds
        // on the first success.
        assert_eq!(HealthCheckConfig::nanny_rise(5, 10), 1);
        assert_eq!(HealthCheckConfig::nanny_rise(180, 10), 18);
        assert_eq!(HealthCheckConfig::nanny_rise(15, 6), 2);
        assert_eq!(HealthCheckConfig::nanny().rise, HealthCheckConfig::nanny_rise(180, 10));
        let mut c = HealthChecker::new(&nanny(10, 5), t(0));
        let (_, verdicts) = drive(&mut c, t(35_000), 0, |at| at != t(0));
        // 0 fails at 10 s (down); 20 s answers at once: up.
        assert_eq!(verdicts, [Verdict::Down(t(10_000)), Verdict::Up(t(20_000))]);
    }

    #[test]
    fn nanny_brings_a_server_in_at_a_32nd_of_its_weight_and_doubles_it() {
        // weight 100, timeout 6 s (doubling every 20 / 6 = 3 passing checks), reentry 15 s
        // (countThresh 2); answers at once. nanny.c: currCount starts at countThresh (2).
        // The check of 0 s passes: count 3, brought in at 100 >> 5 = 3 and, 3 % 3 == 0,
        // doubled at once: 6. Counts 6, 9, 12, 15 (18, 36, 54, 72 s): 12, 24, 48, 96;
        // count 18 (90 s): 100. The check of 96 s fails at 102 s (count 0): down. 108 s
        // (1), 114 s (2 = countThresh): up, at 3 (2 % 3 != 0); 120 s (3): 6; 138 s (6): 12.
        let mut c = HealthChecker::new(&nanny(6, 15), t(0)).with_weight(100);
        let (_, verdicts) = drive(&mut c, t(140_000), 0, |at| at != t(96_000));
        let w = |s: u64, w: u32| Verdict::Weight(t(s * 1000), w);
        assert_eq!(
            verdicts,
            [
                w(0, 6),
                w(18, 12),
                w(36, 24),
                w(54, 48),
                w(72, 96),
                w(90, 100),
                Verdict::Down(t(102_000)),
                Verdict::Up(t(114_000)),
                w(114, 3),
                w(120, 6),
                w(138, 12),
            ]
        );
        // Weights below 2 have nothing to ramp; ldirectord and keepalived never do.
        let mut c = HealthChecker::new(&nanny(6, 15), t(0)).with_weight(1);
        let (_, v) = drive(&mut c, t(140_000), 0, |at| at != t(96_000));
        assert_eq!(v, [Verdict::Down(t(102_000)), Verdict::Up(t(114_000))]);
        let mut c = HealthChecker::new(&cfg(2000, 1000, 0, None), t(0)).with_weight(100);
        let (_, v) = drive(&mut c, t(10_000), 0, |_| true);
        assert!(v.is_empty(), "{v:?}");
        // Over 20 s, every passing check doubles: 64 >> 5 = 2, 4 at once, then 8, ...
        let mut c = HealthChecker::new(&nanny(30, 180), t(0)).with_weight(64);
        let (_, v) = drive(&mut c, t(130_000), 0, |_| true);
        assert_eq!(v, [w(0, 4), w(30, 8), w(60, 16), w(90, 32), w(120, 64)]);
    }

    #[test]
    fn keepalived_retries_after_its_delay_before_going_down() {
        // delay_loop 2 s from 2 s, 1 s timeout, 1 retry after 0.5 s; answers take 1 ms,
        // and each next check starts 2 s after the previous one ENDED: 2, 4.001, 6.002,
        // 8.003, 10.004 s. The server dies at 10.2 s: the 12.005 s check times out at
        // 13.005 s, its retry (13.505 s) at 14.505 s: DOWN. A DOWN server is checked
        // max(delay_before_retry, delay_loop) after each failure: 16.505 (fails at
        // 17.505), 19.505 (fails at 20.505). It is back at 20.5 s: the 22.505 s check
        // answers at 22.506 s: UP; the next starts at 24.506 s.
        let mut c = HealthChecker::new(&cfg(2000, 1000, 1, Some(500)), t(2000));
        let alive = |at: Time| at < t(10_200) || at >= t(20_500);
        let (starts, verdicts) = drive(&mut c, t(25_000), MS, alive);
        let expect: Vec<Time> =
            [2000, 4001, 6002, 8003, 10_004, 12_005, 13_505, 16_505, 19_505, 22_505, 24_506]
                .into_iter()
                .map(t)
                .collect();
        assert_eq!(starts, expect);
        assert_eq!(verdicts, [Verdict::Down(t(14_505)), Verdict::Up(t(22_506))]);
        let k = c.counters();
        assert_eq!((k.started, k.failed, k.downs, k.ups), (11, 4, 1, 1));
        assert!(c.is_up());
    }

    #[test]
    fn ldirectord_goes_down_after_retries_plus_one_failed_checks_an_interval_apart() {
        // failurecount 3 (retries 2), no delay: the 12 s check fails at 13 s, the next
        // starts 2 s later (15 s, fails at 16 s), then 18 s (fails at 19 s): DOWN at 19 s.
        let mut c = HealthChecker::new(&cfg(2000, 1000, 2, None), t(2000));
        let (starts, verdicts) = drive(&mut c, t(19_000), 0, |at| at < t(10_200));
        let expect: Vec<Time> =
            [2000, 4000, 6000, 8000, 10_000, 12_000, 15_000, 18_000].into_iter().map(t).collect();
        assert_eq!(starts, expect);
        assert_eq!(verdicts, [Verdict::Down(t(19_000))]);
    }

    #[test]
    fn a_success_between_failures_resets_the_count() {
        // retries 1, no delay: fail (12 s, at 13 s), succeed (15 s), fail (17 s, at
        // 18 s): still up; fail again (20 s): DOWN at 21 s; the 23 s check answers at
        // once: UP.
        let mut c = HealthChecker::new(&cfg(2000, 1000, 1, None), t(2000));
        let dead = [t(12_000), t(17_000), t(20_000)];
        let (_, verdicts) = drive(&mut c, t(24_000), 0, |at| !dead.contains(&at));
        assert_eq!(verdicts, [Verdict::Down(t(21_000)), Verdict::Up(t(23_000))]);
    }

    #[test]
    fn late_and_stale_answers_are_ignored_and_refusals_fail_at_once() {
        let mut c = HealthChecker::new(&cfg(2000, 1000, 0, None), t(2000));
        c.handle_timeout(t(2000));
        let p = c.poll_probe().expect("a check started");
        assert_eq!(p, Probe { serial: 1, deadline: t(3000) });
        assert_eq!(c.next_time(), t(3000));
        // An answer to another check changes nothing.
        c.handle_response(t(2500), 7, Outcome::Success);
        assert_eq!(c.next_time(), t(3000));
        // An answer exactly at the deadline is late.
        c.handle_response(t(3000), 1, Outcome::Success);
        c.handle_timeout(t(3000));
        assert_eq!(c.poll_verdict(), Some(Verdict::Down(t(3000))));
        assert_eq!(c.next_time(), t(5000), "an interval after the failure");
        // A refusal fails the check when it arrives.
        c.handle_timeout(t(5000));
        let p = c.poll_probe().expect("a check started");
        c.handle_response(t(5100), p.serial, Outcome::Failure);
        assert_eq!(c.next_time(), t(7100));
        c.handle_timeout(t(7100));
        let p = c.poll_probe().expect("a check started");
        c.handle_response(t(7200), p.serial, Outcome::Success);
        assert_eq!(c.poll_verdict(), Some(Verdict::Up(t(7200))));
        let k = c.counters();
        assert_eq!((k.started, k.failed, k.downs, k.ups), (3, 2, 1, 1));
    }

    #[test]
    fn a_timed_out_check_pushes_the_next_one_back() {
        // 2 s interval, 2 s timeout, a dead server: 2 s fails at 4 s, 6 s at 8 s, 10 s.
        let mut c = HealthChecker::new(&cfg(2000, 2000, 5, None), t(2000));
        let (starts, _) = drive(&mut c, t(11_000), 0, |_| false);
        assert_eq!(starts, [t(2000), t(6000), t(10_000)]);
        // A zero delay retries at the failure's time: 2 s fails at 3 s, retried; 3 s
        // fails at 4 s, retried; 4 s fails at 5 s: DOWN; then max(0, 2 s) later: 7 s.
        let mut c = HealthChecker::new(&cfg(2000, 1000, 2, Some(0)), t(2000));
        let (starts, verdicts) = drive(&mut c, t(7500), 0, |_| false);
        assert_eq!(starts, [t(2000), t(3000), t(4000), t(7000)]);
        assert_eq!(verdicts, [Verdict::Down(t(5000))]);
    }

    #[test]
    fn an_ldirectord_round_checks_one_server_after_the_other_then_sleeps() {
        // Three real servers, 5 s interval, 2 s timeout; server 1 never answers, the
        // others at once. Round 1 at 5 s: 0 (5 s), 1 (5 s, fails at 7 s), 2 (7 s); the
        // round ends at 7 s and the next starts 5 s later, at 12 s: 0 (12 s), 1 (12 s,
        // fails at 14 s), 2 (14 s); round 3 at 19 s.
        let cfg = cfg(5000, 2000, 0, None);
        let mut cs: Vec<HealthChecker> = (0..3).map(|_| HealthChecker::new(&cfg, t(5000))).collect();
        let mut round = Round::new(vec![0, 1, 2], cfg.interval);
        for c in &mut cs {
            c.pace(); // waiting for its turn
        }
        cs[round.current()].start_at(t(5000));
        let mut starts = Vec::new();
        let mut verdicts = Vec::new();
        loop {
            let (i, now) = (0..3).map(|i| (i, cs[i].next_time())).min_by_key(|x| x.1).expect("checkers");
            if now > t(19_000) {
                break;
            }
            cs[i].handle_timeout(now);
            if let Some(p) = cs[i].poll_probe() {
                starts.push((i, now));
                if i != 1 {
                    cs[i].handle_response(now, p.serial, Outcome::Success);
                }
            }
            verdicts.extend(std::iter::from_fn(|| cs[i].poll_verdict()));
            if let Some(end) = cs[i].take_ended() {
                let (next, at) = round.ended(end);
                cs[next].start_at(at);
            }
        }
        let expect = [
            (0, 5000),
            (1, 5000),
            (2, 7000),
            (0, 12_000),
            (1, 12_000),
            (2, 14_000),
            (0, 19_000),
            (1, 19_000),
        ];
        assert_eq!(starts, expect.map(|(i, ms)| (i, t(ms))));
        assert_eq!(verdicts, [Verdict::Down(t(7000))]);
    }
}
