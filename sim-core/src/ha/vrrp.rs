//! A VRRP router as keepalived runs it (RFC 3768 for version 2, RFC 5798 for 3).
//!
//! ```text
//!            upstream router (follows gratuitous ARPs)
//!                  |
//!   ---------------+---------------  External (the VIP's network)
//!        |                   |
//!   [ member 0 ]  adverts  [ member 1 ]
//!    MASTER  ----------->   BACKUP
//!        |                   |
//!   ---------------+---------------  Internal (real servers)
//! ```
//!
//! # Model
//! - States BACKUP, MASTER and keepalived's FAULT (INIT is passed through at once). A
//!   router starts BACKUP with its master-down timer armed, except the address owner
//!   (priority 255), which starts MASTER.
//! - `Master_Down_Interval = 3 × advert_int + Skew_Time`, with `Skew_Time =
//!   (256 − priority) / 256` s in version 2 (keepalived's `VRRP_TIMER_SKEW` counts in
//!   `TIMER_HZ`, whatever `advert_int` is) and `(256 − priority) × advert_int / 256` in
//!   version 3 (any version but 3 is taken as 2). Integer nanoseconds, rounded down.
//! - A MASTER sends an advert at once on becoming MASTER and every `advert_int` after
//!   it, and sends a gratuitous ARP (the group applies `garp_delay`).
//! - A BACKUP re-arms its timer at start and whenever it accepts an advert. With
//!   `preempt`, an advert of lower priority than its own is ignored (the timer runs on,
//!   so the BACKUP becomes MASTER at its expiry: cause `preempt`), except within
//!   `preempt_delay` of the router's start, when it is accepted. When the timer fires
//!   the BACKUP becomes MASTER (cause `master down`).
//! - A MASTER that hears an advert of higher priority, or of equal priority from a
//!   lower-indexed member (the member index stands for the primary IP address, the
//!   lower index winning), becomes BACKUP at once and arms its timer. Any other advert
//!   it does not yield to: it keeps advertising on its schedule (keepalived's extra
//!   "forcing new election" advert is not modelled; the other side yields on the next
//!   regular one) but, as keepalived does, refreshes the router with a gratuitous ARP,
//!   so that a router which was MASTER at the same time cannot keep the traffic.
//! - The `interfaces` form one `vrrp_sync_group`: when any is down the router is in
//!   FAULT (no adverts, no VIP, adverts ignored); when all are up again it is BACKUP
//!   (MASTER for priority 255) with a fresh timer.
//!
//! # Simplified
//! One advert per interval stands for the sync group's instances (it needs every
//! instance's interface up at both ends, see [`super::group`]); since a down interface
//! puts its router in FAULT anyway, this differs from per-instance adverts only for an
//! advert in flight when a link fails. Priority-0 adverts (graceful shutdown),
//! tracked scripts, weights and authentication are not modelled.

use lvs_sched::{Duration, Time};

use super::VrrpConfig;
use super::group::Action;

/// A VRRP router's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Listening for the master's adverts.
    Backup,
    /// Holding the VIP and advertising.
    Master,
    /// A tracked interface is down (keepalived's FAULT).
    Fault,
}

impl State {
    /// The name reported in transitions, as keepalived logs it.
    pub fn name(self) -> &'static str {
        match self {
            State::Backup => "BACKUP",
            State::Master => "MASTER",
            State::Fault => "FAULT",
        }
    }
}

/// A VRRP advertisement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Advert {
    /// The sender's priority.
    pub priority: u8,
}

/// `Skew_Time` of a router of `priority`.
pub fn skew_time(cfg: &VrrpConfig, priority: u8) -> Duration {
    let rest = 256 - u64::from(priority);
    if cfg.version == 3 {
        Duration(rest * cfg.advert_int.as_nanos() / 256)
    } else {
        Duration(rest * Duration::from_secs(1).as_nanos() / 256)
    }
}

/// `Master_Down_Interval` of a router of `priority`: `3 × advert_int + Skew_Time`.
pub fn master_down_interval(cfg: &VrrpConfig, priority: u8) -> Duration {
    Duration(3 * cfg.advert_int.as_nanos() + skew_time(cfg, priority).as_nanos())
}

/// One member's VRRP instance (its sync group).
///
/// Call order: [`Router::start`]; then, whenever [`Router::next_time`] is due,
/// [`Router::handle_timeout`]; [`Router::handle_advert`] for each advert arriving;
/// [`Router::handle_links`] when the tracked interfaces change. Each pushes its adverts,
/// reports and gratuitous ARPs onto `out`.
#[derive(Clone, Debug)]
pub struct Router {
    me: usize,
    priority: u8,
    state: State,
    started: Time,
    advert_at: Option<Time>,
    master_down_at: Option<Time>,
    /// A lower-priority advert was ignored since the timer was last armed.
    ignored: bool,
}

impl Router {
    /// Member `me` starts at `now`: FAULT if a tracked interface is down, else MASTER for
    /// priority 255 (its first advert due at `now`), else BACKUP.
    pub fn start(
        now: Time,
        me: usize,
        cfg: &VrrpConfig,
        links_up: bool,
        out: &mut Vec<Action<Advert>>,
    ) -> Self {
        let priority = cfg.priorities[me];
        let mut router = Router {
            me,
            priority,
            state: State::Backup,
            started: now,
            advert_at: None,
            master_down_at: None,
            ignored: false,
        };
        router.enter(now, cfg, links_up, "start", out);
        router
    }

    /// Leaves INIT or FAULT for the state the links and priority call for.
    fn enter(
        &mut self,
        now: Time,
        cfg: &VrrpConfig,
        links_up: bool,
        cause: &'static str,
        out: &mut Vec<Action<Advert>>,
    ) {
        if !links_up {
            self.fault(out);
        } else if self.priority == 255 {
            self.become_master(now, cause, out);
        } else {
            self.become_backup(now, cfg, cause, out);
        }
    }

    /// The router's state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The router's priority.
    pub fn priority(&self) -> u8 {
        self.priority
    }

    /// When the master-down timer fires (a BACKUP's), if armed.
    pub fn master_down_at(&self) -> Option<Time> {
        self.master_down_at
    }

    /// When the router next has something to do.
    pub fn next_time(&self) -> Option<Time> {
        [self.advert_at, self.master_down_at].into_iter().flatten().min()
    }

    /// Runs the timers due by `now`: master down, then the advert.
    pub fn handle_timeout(&mut self, now: Time, cfg: &VrrpConfig, out: &mut Vec<Action<Advert>>) {
        if self.state == State::Backup && self.master_down_at.is_some_and(|t| t <= now) {
            let cause = if self.ignored { "preempt" } else { "master down" };
            self.become_master(now, cause, out);
        }
        if self.state == State::Master && self.advert_at.is_some_and(|t| t <= now) {
            out.push(Action::Broadcast(Advert { priority: self.priority }));
            self.advert_at = Some(now + cfg.advert_int);
        }
    }

    /// An advert from member `from` arrived at `now`.
    pub fn handle_advert(
        &mut self,
        now: Time,
        from: usize,
        advert: Advert,
        cfg: &VrrpConfig,
        out: &mut Vec<Action<Advert>>,
    ) {
        match self.state {
            State::Fault => {}
            State::Backup => {
                let may_preempt = cfg.preempt && self.priority > advert.priority;
                if may_preempt && now >= self.started + cfg.preempt_delay {
                    self.ignored = true;
                } else {
                    self.arm(now, cfg);
                }
            }
            State::Master => {
                let wins =
                    advert.priority > self.priority || (advert.priority == self.priority && from < self.me);
                if wins {
                    self.become_backup(now, cfg, "higher priority advert", out);
                } else {
                    // keepalived's vrrp_state_master_rx(): "we receive a lower prio adv
                    // we just refresh remote ARP cache", so a router that also claimed
                    // MASTER for a moment cannot keep the VIP's traffic.
                    out.push(Action::Garp);
                }
            }
        }
    }

    /// The tracked interfaces are now all up (`links_up`) or not.
    pub fn handle_links(
        &mut self,
        now: Time,
        cfg: &VrrpConfig,
        links_up: bool,
        out: &mut Vec<Action<Advert>>,
    ) {
        match (self.state, links_up) {
            (State::Fault, true) => self.enter(now, cfg, true, "link up", out),
            (State::Backup | State::Master, false) => self.fault(out),
            _ => {}
        }
    }

    fn arm(&mut self, now: Time, cfg: &VrrpConfig) {
        self.master_down_at = Some(now + master_down_interval(cfg, self.priority));
        self.ignored = false;
    }

    fn become_master(&mut self, now: Time, cause: &'static str, out: &mut Vec<Action<Advert>>) {
        self.state = State::Master;
        self.master_down_at = None;
        self.advert_at = Some(now); // the first advert at once
        out.push(Action::Report { member: self.me, state: "MASTER", cause });
        out.push(Action::Garp);
    }

    fn become_backup(
        &mut self,
        now: Time,
        cfg: &VrrpConfig,
        cause: &'static str,
        out: &mut Vec<Action<Advert>>,
    ) {
        self.state = State::Backup;
        self.advert_at = None;
        self.arm(now, cfg);
        out.push(Action::Report { member: self.me, state: "BACKUP", cause });
    }

    fn fault(&mut self, out: &mut Vec<Action<Advert>>) {
        self.state = State::Fault;
        self.advert_at = None;
        self.master_down_at = None;
        out.push(Action::Report { member: self.me, state: "FAULT", cause: "link down" });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ha::testing::{Run, at};
    use crate::ha::{Failover, Side};

    fn cfg(priorities: Vec<u8>) -> VrrpConfig {
        VrrpConfig { priorities, garp_delay: Duration::from_millis(10), ..VrrpConfig::default() }
    }

    /// Started so that member 0 (priority 150) becomes MASTER at 10 s exactly:
    /// 10 s − Master_Down_Interval(150) = 10 − (3 + 106/256) = 10 − 3.4140625 = 6.5859375 s.
    const START: Time = Time(6_585_937_500);

    fn run(cfg: VrrpConfig) -> Run {
        let n = cfg.priorities.len();
        Run::new(Failover::Vrrp(cfg), n, START)
    }

    #[test]
    fn master_down_interval_is_three_adverts_and_the_skew() {
        let v2 = VrrpConfig::default();
        // Skew (v2) = (256 − 100)/256 s = 0.609375 s, whatever advert_int is.
        assert_eq!(skew_time(&v2, 100), Duration(609_375_000));
        assert_eq!(master_down_interval(&v2, 100), Duration(3_609_375_000));
        // (256 − 150)/256 = 0.4140625 s.
        assert_eq!(master_down_interval(&v2, 150), Duration(3_414_062_500));
        let slow_v2 = VrrpConfig { advert_int: Duration::from_secs(2), ..VrrpConfig::default() };
        assert_eq!(master_down_interval(&slow_v2, 100), Duration(6_609_375_000));
        // v3: skew = 156 × 2 s / 256 = 1.21875 s; 3 × 2 + 1.21875 = 7.21875 s.
        let v3 = VrrpConfig { advert_int: Duration::from_secs(2), version: 3, ..VrrpConfig::default() };
        assert_eq!(skew_time(&v3, 100), Duration(1_218_750_000));
        assert_eq!(master_down_interval(&v3, 100), Duration(7_218_750_000));
    }

    #[test]
    fn backup_takes_over_one_master_down_interval_after_the_last_advert() {
        let mut r = run(cfg(vec![150, 100]));
        r.until(at(10, 500_000_000));
        // Both start BACKUP; 0's timer (3.4140625 s) fires first, at 10 s; 1's own timer
        // (START + 3.609375 = 10.1953125 s) is re-armed by 0's advert at 10.001 s.
        assert_eq!(r.times("MASTER"), vec![(at(10, 0), 0, "master down")]);
        assert_eq!(r.arps(), vec![(at(10, 10_000_000), 0)]); // + garp_delay 10 ms
        // Adverts at 10, 11, ...: the last one before the death at 10.5 s is at 10 s.
        r.kill(at(10, 500_000_000), 0);
        assert_eq!(r.group.arp_target(), Some(0), "the router still points at the dead master");
        r.until(at(30, 0));
        // 10 s + 1 ms latency + 3.609375 s = 13.610375 s.
        assert_eq!(r.times("MASTER")[1], (at(13, 610_375_000), 1, "master down"));
        // The router follows after garp_delay: 13.620375 s.
        assert_eq!(r.arps()[1], (at(13, 620_375_000), 1));
        assert!(r.group.holds_vip(1) && !r.group.holds_vip(0));
    }

    #[test]
    fn version_3_skew_scales_with_advert_int() {
        let cfg = VrrpConfig {
            advert_int: Duration::from_secs(2),
            version: 3,
            priorities: vec![150, 100],
            ..VrrpConfig::default()
        };
        let mut r = Run::new(Failover::Vrrp(cfg), 2, Time::ZERO);
        r.kill(at(11, 0), 0);
        r.until(at(30, 0));
        // 0: 3 × 2 + 106 × 2/256 = 6.828125 s; adverts at 6.828125, 8.828125, 10.828125.
        // 1: 10.828125 + 0.001 + (6 + 156 × 2/256 = 7.21875) = 18.047875 s.
        let masters = r.times("MASTER");
        assert_eq!(
            masters,
            vec![(at(6, 828_125_000), 0, "master down"), (at(18, 47_875_000), 1, "master down")]
        );
        // garp_delay 0: the router follows at once.
        assert_eq!(r.arps(), vec![(at(6, 828_125_000), 0), (at(18, 47_875_000), 1)]);
    }

    #[test]
    fn a_returning_higher_priority_router_preempts_at_its_master_down_expiry() {
        let mut r = run(cfg(vec![150, 100]));
        r.kill(at(10, 500_000_000), 0);
        r.boot(at(20, 0), 0);
        r.until(at(40, 0));
        // 0 ignores 1's adverts (arriving at 20.611375, 21.611375, ...): 20 + 3.4140625.
        assert_eq!(r.times("MASTER")[2], (at(23, 414_062_500), 0, "preempt"));
        // Its first advert reaches 1 a millisecond later; 1 yields at once.
        let backups: Vec<_> = r.times("BACKUP").into_iter().filter(|b| b.2 != "start").collect();
        assert_eq!(backups, vec![(at(23, 415_062_500), 1, "higher priority advert")]);
        // The router: 23.4140625 + 10 ms.
        assert_eq!(r.arps()[2], (at(23, 424_062_500), 0));
        assert_eq!(r.group.state(0), Some("MASTER"));
        assert_eq!(r.group.state(1), Some("BACKUP"));
    }

    #[test]
    fn without_preemption_the_returning_router_stays_backup() {
        let mut r = run(VrrpConfig { preempt: false, ..cfg(vec![150, 100]) });
        r.kill(at(10, 500_000_000), 0);
        r.boot(at(20, 0), 0);
        r.until(at(120, 0));
        assert_eq!(r.times("MASTER").len(), 2, "{:?}", r.times("MASTER"));
        assert_eq!(r.group.state(0), Some("BACKUP"));
        assert_eq!(r.group.arp_target(), Some(1));
    }

    #[test]
    fn preempt_delay_accepts_lower_adverts_for_a_while_after_start() {
        let mut r = run(VrrpConfig { preempt_delay: Duration::from_secs(10), ..cfg(vec![150, 100]) });
        r.kill(at(10, 500_000_000), 0);
        r.boot(at(20, 0), 0);
        r.until(at(40, 0));
        // 1's adverts arrive at k + 0.611375 s; until 30 s (start + 10 s) they re-arm 0's
        // timer, the last at 29.611375 s; from 30.611375 they are ignored.
        // 29.611375 + 3.4140625 = 33.0254375 s.
        assert_eq!(r.times("MASTER")[2], (at(33, 25_437_500), 0, "preempt"));
    }

    #[test]
    fn a_tracked_link_down_is_a_fault_and_the_peer_takes_over() {
        let mut r = run(cfg(vec![150, 100]));
        r.link(at(10, 500_000_000), 0, Side::External, false);
        assert_eq!(r.times("FAULT"), vec![(at(10, 500_000_000), 0, "link down")]);
        assert!(!r.group.holds_vip(0));
        assert_eq!(r.group.arp_target(), Some(0), "nobody has sent an ARP yet");
        r.until(at(20, 0));
        // As a death: last advert 10 s, + 1 ms + 3.609375 s; the router 10 ms later.
        assert_eq!(r.times("MASTER")[1], (at(13, 610_375_000), 1, "master down"));
        assert_eq!(r.arps()[1], (at(13, 620_375_000), 1));
        // Back up: BACKUP with a fresh timer, then preemption 3.4140625 s later.
        r.link(at(20, 0), 0, Side::External, true);
        r.until(at(30, 0));
        assert!(r.times("BACKUP").contains(&(at(20, 0), 0, "link up")));
        assert_eq!(r.times("MASTER")[2], (at(23, 414_062_500), 0, "preempt"));
    }

    #[test]
    fn an_untracked_link_is_no_fault() {
        let mut r = run(cfg(vec![150, 100]));
        r.link(at(10, 500_000_000), 0, Side::Internal, false);
        r.until(at(30, 0));
        assert!(r.times("FAULT").is_empty());
        assert_eq!(r.group.state(0), Some("MASTER"));
        assert_eq!(r.group.arp_target(), Some(0));
    }

    #[test]
    fn equal_priorities_the_lower_index_wins_and_keeps_the_router() {
        let mut r = Run::new(
            Failover::Vrrp(VrrpConfig { priorities: vec![100, 100], ..VrrpConfig::default() }),
            2,
            Time::ZERO,
        );
        r.until(at(10, 0));
        // Both timers fire at 3.609375 s (member 0 first); both become MASTER and ARP.
        let masters = r.times("MASTER");
        assert_eq!(
            masters,
            vec![(at(3, 609_375_000), 0, "master down"), (at(3, 609_375_000), 1, "master down")]
        );
        // At 3.610375 s each hears the other: 1 yields (equal priority, higher index),
        // 0 refreshes the router.
        assert!(r.times("BACKUP").contains(&(at(3, 610_375_000), 1, "higher priority advert")));
        assert_eq!(r.arps(), vec![(at(3, 609_375_000), 0), (at(3, 609_375_000), 1), (at(3, 610_375_000), 0)]);
        assert_eq!(r.group.arp_target(), Some(0));
    }

    #[test]
    fn the_address_owner_starts_master() {
        let mut r = Run::new(
            Failover::Vrrp(VrrpConfig { priorities: vec![255, 100], ..VrrpConfig::default() }),
            2,
            Time::ZERO,
        );
        r.until(at(20, 0));
        assert_eq!(r.times("MASTER"), vec![(Time::ZERO, 0, "start")]);
        assert_eq!(r.group.arp_target(), Some(0));
    }

    #[test]
    fn same_inputs_same_transitions() {
        let script = || {
            let mut r = run(cfg(vec![150, 100, 120]));
            r.kill(at(10, 500_000_000), 0);
            r.link(at(15, 0), 2, Side::External, false);
            r.boot(at(20, 0), 0);
            r.link(at(25, 0), 2, Side::External, true);
            r.until(at(60, 0));
            r.log
        };
        let a = script();
        assert!(a.len() > 8);
        assert_eq!(a, script());
    }
}
