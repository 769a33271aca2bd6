//! A heartbeat node (ha.cf's keepalive, deadtime, warntime, initdead, nice_failback) and
//! ipfail's ping-node quorum.
//!
//! ```text
//!        keepalives (serial / bcast ethN)
//!   [ node 0 ] <========================> [ node 1 ]
//!    primary  \                          /  standby
//!              ping ----> ping node <--- ping        (ipfail)
//! ```
//!
//! # Model
//! - **Keepalives.** A node sends its [`Status`] to every peer at its start and every
//!   `keepalive` after it, and at once whenever its role, its hand-over target or its
//!   fail-back request changes (extra sends do not move the periodic schedule). The
//!   status carries the node's ping count, so a peer learns it with the next keepalive.
//! - **Liveness** ([`Liveness`], shared with Saru): a peer last heard at `h` is warned
//!   about at `h + warntime` (once per silence, only if `warntime < deadtime`) and
//!   declared dead at `h + deadtime`; a peer never heard since this node's start `s` is
//!   declared dead at `s + initdead`. A keepalive arriving exactly at a deadline is in
//!   time.
//! - **Roles.** `standby → acquiring → active → releasing → standby`. Acquiring and
//!   releasing each take `takeover` (the resource scripts). A node holds the VIP while
//!   active or releasing; on becoming active it sends a gratuitous ARP (the router
//!   follows at once).
//! - **Taking over.** A standby acquires (a) when a standby peer's status hands the
//!   resources to it (`yield_to`), or (b) when, in its view, no live peer claims them
//!   (acquiring, active, releasing, or never heard yet), it has handed nothing over
//!   itself, and no lower-indexed live standby is a candidate. Case (b) covers the
//!   active's death (cause `peer dead`) and a start with no peer within `initdead`.
//! - **Fail-back** (`nice_failback` off): the primary (member 0), standby, asks for the
//!   resources once it hears an active peer that sees no more ping nodes than it does
//!   (`wants_failback` in its status, sent at once). The holder releases to it and the
//!   primary acquires on hearing the release: if the primary first hears the holder at
//!   `t_h`, it is active at `t_h + 2 × latency + 2 × takeover`.
//! - **ipfail.** Every keepalive a node pings each ping node through the node's side; a
//!   ping is answered at once iff the link is up. A ping node unanswered for `deadping`
//!   (last answer `a`, dead at `a + deadping`; an answer at the deadline is in time) is
//!   dead. An active node seeing fewer ping nodes than a live standby peer's last status
//!   says releases to it (cause `ipfail`): decided at `t`, standby at `t + takeover`,
//!   the peer active at `t + takeover + latency + takeover`.
//! - **Split brain.** With every medium down both nodes end up active. When an active
//!   node hears another active node, the higher-indexed releases (cause `split brain`)
//!   and the lower-indexed sends a gratuitous ARP, so the router comes back to it.
//!
//! # Simplified
//! Two nodes are what the model is made for; with more, the lowest-indexed candidate
//! takes over. Resources are one group (the VIP and its services). The pings' own
//! delay, heartbeat's `hb_standby`, `ping_group`, quorum and STONITH are not modelled.

use lvs_sched::Time;

use super::HeartbeatConfig;
use super::group::{Action, Net};

/// What a peer looks like from one node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerLiveness {
    /// Not heard since this node started; `initdead` runs.
    Unknown,
    /// Heard within `deadtime`.
    Alive,
    /// Declared dead.
    Dead,
}

/// Something a [`Liveness`] noticed while expiring its deadlines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerEvent {
    /// The peer has been silent for `warntime`.
    Late(usize),
    /// The peer was declared dead; the cause is `deadtime` or `initdead`.
    Dead(usize, &'static str),
}

/// One node's view of its peers' keepalives: last heard, warned, declared dead.
#[derive(Clone, Debug)]
pub struct Liveness {
    me: usize,
    started: Time,
    state: Vec<PeerLiveness>,
    last: Vec<Option<Time>>,
    warned: Vec<bool>,
}

impl Liveness {
    /// The view of node `me` of `n` nodes, started at `now`: every peer unknown.
    pub fn new(me: usize, n: usize, now: Time) -> Self {
        Liveness {
            me,
            started: now,
            state: vec![PeerLiveness::Unknown; n],
            last: vec![None; n],
            warned: vec![false; n],
        }
    }

    /// Peer `p` as this node sees it (itself: [`PeerLiveness::Alive`]).
    pub fn state(&self, p: usize) -> PeerLiveness {
        if p == self.me { PeerLiveness::Alive } else { self.state[p] }
    }

    /// Is `p` not declared dead (alive or not yet judged)?
    pub fn not_dead(&self, p: usize) -> bool {
        self.state(p) != PeerLiveness::Dead
    }

    /// A keepalive from `p` arrived at `now`; true if `p` was not alive before.
    pub fn heard(&mut self, now: Time, p: usize) -> bool {
        let was = self.state[p];
        self.state[p] = PeerLiveness::Alive;
        self.last[p] = Some(now);
        self.warned[p] = false;
        was != PeerLiveness::Alive
    }

    fn deadlines(&self, cfg: &HeartbeatConfig, p: usize) -> (Option<Time>, Option<Time>) {
        match (self.state[p], self.last[p]) {
            (PeerLiveness::Unknown, _) => (None, Some(self.started + cfg.initdead)),
            (PeerLiveness::Alive, Some(h)) => {
                let warn = (!self.warned[p] && cfg.warntime < cfg.deadtime).then(|| h + cfg.warntime);
                (warn, Some(h + cfg.deadtime))
            }
            _ => (None, None),
        }
    }

    /// The next warning or death deadline.
    pub fn next_time(&self, cfg: &HeartbeatConfig) -> Option<Time> {
        (0..self.state.len())
            .filter(|&p| p != self.me)
            .flat_map(|p| {
                let (w, d) = self.deadlines(cfg, p);
                [w, d]
            })
            .flatten()
            .min()
    }

    /// Applies every deadline due by `now`, in peer order.
    pub fn expire(&mut self, now: Time, cfg: &HeartbeatConfig, events: &mut Vec<PeerEvent>) {
        for p in (0..self.state.len()).filter(|&p| p != self.me) {
            let (warn, dead) = self.deadlines(cfg, p);
            if dead.is_some_and(|d| d <= now) {
                let cause = if self.state[p] == PeerLiveness::Unknown { "initdead" } else { "deadtime" };
                self.state[p] = PeerLiveness::Dead;
                events.push(PeerEvent::Dead(p, cause));
            } else if warn.is_some_and(|w| w <= now) {
                self.warned[p] = true;
                events.push(PeerEvent::Late(p));
            }
        }
    }
}

/// A node's hold on the resources.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Holds nothing.
    Standby,
    /// Running the resource scripts to take the resources (for `takeover`).
    Acquiring,
    /// Holds the VIP and serves it.
    Active,
    /// Running the resource scripts to give the resources up (for `takeover`); still
    /// holds the VIP.
    Releasing,
}

impl Role {
    /// The name reported in transitions.
    pub fn name(self) -> &'static str {
        match self {
            Role::Standby => "standby",
            Role::Acquiring => "acquiring",
            Role::Active => "active",
            Role::Releasing => "releasing",
        }
    }

    /// Does a node in this role hold the VIP?
    pub fn holds_vip(self) -> bool {
        matches!(self, Role::Active | Role::Releasing)
    }

    /// Does a node in this role claim the resources (no one else should take them)?
    pub fn claims(self) -> bool {
        self != Role::Standby
    }
}

/// What a keepalive carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status {
    /// The sender's role.
    pub role: Role,
    /// How many ping nodes the sender reaches (ipfail; 0 without ping nodes).
    pub pings: u32,
    /// The member the sender hands its resources to (ipfail, fail-back).
    pub yield_to: Option<usize>,
    /// Why the sender's role last changed (the taker reports the same cause).
    pub cause: &'static str,
    /// The sender (the primary, standby) asks the active node for its resources back.
    pub wants_failback: bool,
}

#[derive(Clone, Copy, Debug)]
struct Ping {
    last_answer: Time,
    dead: bool,
}

/// One heartbeat node (with ipfail when ping nodes are configured).
///
/// Call order: [`Node::start`]; then, whenever [`Node::next_time`] is due,
/// [`Node::handle_timeout`], and for each keepalive arriving, [`Node::handle_status`];
/// each pushes its sends, reports and gratuitous ARPs onto `out`.
#[derive(Clone, Debug)]
pub struct Node {
    me: usize,
    role: Role,
    until: Time,
    cause: &'static str,
    live: Liveness,
    views: Vec<Option<Status>>,
    next_keepalive: Time,
    pings: Vec<Ping>,
    yield_to: Option<usize>,
    wants_failback: bool,
}

impl Node {
    /// Node `me` of `n` starts at `now`, active (with a gratuitous ARP) or standby. Its
    /// first keepalive and pings are due at `now`; every ping node counts as reachable
    /// until `deadping` without an answer.
    pub fn start(
        now: Time,
        me: usize,
        n: usize,
        active: bool,
        cfg: &HeartbeatConfig,
        out: &mut Vec<Action<Status>>,
    ) -> Self {
        let role = if active { Role::Active } else { Role::Standby };
        out.push(Action::Report { member: me, state: role.name(), cause: "start" });
        if active {
            out.push(Action::Garp);
        }
        Node {
            me,
            role,
            until: now,
            cause: "start",
            live: Liveness::new(me, n, now),
            views: vec![None; n],
            next_keepalive: now,
            pings: vec![Ping { last_answer: now, dead: false }; cfg.ping_nodes.len()],
            yield_to: None,
            wants_failback: false,
        }
    }

    /// The node's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// How many ping nodes the node reaches.
    pub fn ping_count(&self) -> u32 {
        self.pings.iter().filter(|p| !p.dead).count() as u32
    }

    /// The node's view of its peers.
    pub fn liveness(&self) -> &Liveness {
        &self.live
    }

    /// What the node's keepalives say now.
    pub fn status(&self) -> Status {
        Status {
            role: self.role,
            pings: self.ping_count(),
            yield_to: self.yield_to,
            cause: self.cause,
            wants_failback: self.wants_failback,
        }
    }

    /// The fields whose change is sent at once.
    fn key(&self) -> (Role, Option<usize>, bool) {
        (self.role, self.yield_to, self.wants_failback)
    }

    /// When the node next has something to do.
    pub fn next_time(&self, cfg: &HeartbeatConfig) -> Option<Time> {
        let scripts = matches!(self.role, Role::Acquiring | Role::Releasing).then_some(self.until);
        let pings = self.pings.iter().filter(|p| !p.dead).map(|p| p.last_answer + cfg.deadping).min();
        [Some(self.next_keepalive), scripts, pings, self.live.next_time(cfg)].into_iter().flatten().min()
    }

    /// Runs the node's timers due by `now`: resource scripts finishing, the keepalive
    /// and its pings, ping-node and peer deadlines; then decides.
    pub fn handle_timeout(
        &mut self,
        now: Time,
        cfg: &HeartbeatConfig,
        net: &dyn Net,
        out: &mut Vec<Action<Status>>,
    ) {
        let before = self.key();
        if self.role == Role::Acquiring && self.until <= now {
            self.role = Role::Active;
            out.push(Action::Report { member: self.me, state: "active", cause: self.cause });
            out.push(Action::Garp);
        }
        if self.role == Role::Releasing && self.until <= now {
            self.role = Role::Standby;
            out.push(Action::Report { member: self.me, state: "standby", cause: self.cause });
        }
        let tick = self.next_keepalive <= now;
        if tick {
            // Pings first, so the keepalive carries this round's answers.
            for (ping, node) in self.pings.iter_mut().zip(&cfg.ping_nodes) {
                if net.alive(self.me) && net.link_up(self.me, node.side) {
                    *ping = Ping { last_answer: now, dead: false };
                }
            }
            self.next_keepalive = now + cfg.keepalive;
        }
        for ping in &mut self.pings {
            if !ping.dead && ping.last_answer + cfg.deadping <= now {
                ping.dead = true;
            }
        }
        let mut events = Vec::new();
        self.live.expire(now, cfg, &mut events);
        let mut trigger = "no holder";
        for event in events {
            match event {
                PeerEvent::Late(p) => {
                    out.push(Action::Report { member: p, state: "warn", cause: "peer late" })
                }
                PeerEvent::Dead(p, cause) => {
                    out.push(Action::Report { member: p, state: "dead", cause });
                    self.views[p] = None;
                    if self.yield_to == Some(p) {
                        self.yield_to = None;
                    }
                    trigger = "peer dead";
                }
            }
        }
        self.evaluate(now, cfg, trigger, out);
        if tick || self.key() != before {
            out.push(Action::Broadcast(self.status()));
        }
    }

    /// A keepalive from peer `from` arrived at `now`.
    pub fn handle_status(
        &mut self,
        now: Time,
        from: usize,
        status: Status,
        cfg: &HeartbeatConfig,
        out: &mut Vec<Action<Status>>,
    ) {
        let before = self.key();
        let came_alive = self.live.heard(now, from);
        let was_active = self.views[from].is_some_and(|s| s.role == Role::Active);
        self.views[from] = Some(status);
        if self.yield_to == Some(from) && status.role.claims() {
            self.yield_to = None; // the hand-over is done
        }
        if self.role == Role::Active && status.role == Role::Active {
            if from < self.me {
                self.release(now, cfg, None, "split brain", out);
            } else if came_alive || !was_active {
                // Re-announce the VIP after a partition: the router may follow the peer.
                out.push(Action::Garp);
            }
        }
        self.evaluate(now, cfg, "no holder", out);
        if self.key() != before {
            out.push(Action::Broadcast(self.status()));
        }
    }

    /// Does some live peer claim the resources (or might, never heard yet)?
    fn peer_claims(&self) -> bool {
        (0..self.views.len()).filter(|&p| p != self.me && self.live.not_dead(p)).any(|p| {
            match self.views[p] {
                None => true,
                Some(s) => s.role.claims(),
            }
        })
    }

    /// Live peers heard with a status, in member order.
    fn live_views(&self) -> impl Iterator<Item = (usize, Status)> + '_ {
        (0..self.views.len())
            .filter(|&p| p != self.me && self.live.not_dead(p))
            .filter_map(|p| self.views[p].map(|s| (p, s)))
    }

    /// Decides what the node's view calls for: taking over, handing over, asking back.
    fn evaluate(
        &mut self,
        now: Time,
        cfg: &HeartbeatConfig,
        trigger: &'static str,
        out: &mut Vec<Action<Status>>,
    ) {
        let me = self.me;
        let mine = self.ping_count();
        match self.role {
            Role::Standby => {
                let handed = self
                    .live_views()
                    .find(|(_, s)| s.role == Role::Standby && s.yield_to == Some(me))
                    .map(|(_, s)| s.cause);
                let first = self.live_views().all(|(p, s)| p > me || s.yield_to.is_some());
                if let Some(cause) = handed {
                    self.acquire(now, cfg, cause, out);
                } else if !self.peer_claims() && self.yield_to.is_none() && first {
                    self.acquire(now, cfg, trigger, out);
                }
            }
            Role::Active => {
                if !cfg.ping_nodes.is_empty() {
                    let better = self
                        .live_views()
                        .filter(|(_, s)| s.role == Role::Standby && s.yield_to.is_none() && s.pings > mine)
                        .max_by_key(|&(p, s)| (s.pings, std::cmp::Reverse(p)));
                    if let Some((p, _)) = better {
                        self.release(now, cfg, Some(p), "ipfail", out);
                    }
                }
                let asks = self.views[0].is_some_and(|s| s.role == Role::Standby && s.wants_failback);
                if self.role == Role::Active && me != 0 && self.live.not_dead(0) && asks {
                    self.release(now, cfg, Some(0), "failback", out);
                }
            }
            Role::Acquiring | Role::Releasing => {}
        }
        self.wants_failback = self.role == Role::Standby
            && me == 0
            && !cfg.nice_failback
            && self.yield_to.is_none()
            && self
                .live_views()
                .any(|(_, s)| s.role == Role::Active && (cfg.ping_nodes.is_empty() || s.pings <= mine));
    }

    fn acquire(
        &mut self,
        now: Time,
        cfg: &HeartbeatConfig,
        cause: &'static str,
        out: &mut Vec<Action<Status>>,
    ) {
        self.role = Role::Acquiring;
        self.until = now + cfg.takeover;
        self.cause = cause;
        out.push(Action::Report { member: self.me, state: "acquiring", cause });
    }

    fn release(
        &mut self,
        now: Time,
        cfg: &HeartbeatConfig,
        to: Option<usize>,
        cause: &'static str,
        out: &mut Vec<Action<Status>>,
    ) {
        self.role = Role::Releasing;
        self.until = now + cfg.takeover;
        self.yield_to = to;
        self.cause = cause;
        out.push(Action::Report { member: self.me, state: "releasing", cause });
    }
}

#[cfg(test)]
mod tests {
    use lvs_sched::Duration;

    use super::*;
    use crate::ha::testing::{Run, at};
    use crate::ha::{Failover, Medium, PingNode, Side};

    /// keepalive 2 s, warntime 10 s, deadtime 30 s, initdead 120 s, takeover 1 s, a
    /// serial cable; messages take 1 ms (the test harness's latency).
    fn cfg() -> HeartbeatConfig {
        HeartbeatConfig::default()
    }

    fn run(cfg: HeartbeatConfig) -> Run {
        Run::new(Failover::Heartbeat(cfg), 2, Time::ZERO)
    }

    /// The primary dies at 11 s; its keepalives went at 0, 2, ..., 10 s.
    fn primary_dies(cfg: HeartbeatConfig) -> Run {
        let mut r = run(cfg);
        r.kill(at(11, 0), 0);
        r.until(at(50, 0));
        r
    }

    #[test]
    fn the_standby_takes_over_deadtime_after_the_last_keepalive_heard() {
        let r = primary_dies(cfg());
        assert_eq!(r.times("active")[0], (Time::ZERO, 0, "start"));
        // Last keepalive sent at 10 s, heard at 10.001 s.
        // warn: 10.001 + warntime 10 = 20.001 s; dead: 10.001 + deadtime 30 = 40.001 s.
        assert_eq!(r.times("warn"), vec![(at(20, 1_000_000), 0, "peer late")]);
        assert_eq!(r.times("dead"), vec![(at(40, 1_000_000), 0, "deadtime")]);
        assert_eq!(r.times("acquiring"), vec![(at(40, 1_000_000), 1, "peer dead")]);
        // Active after takeover (1 s); the gratuitous ARP moves the router at once.
        assert_eq!(r.times("active")[1], (at(41, 1_000_000), 1, "peer dead"));
        assert_eq!(r.arps(), vec![(Time::ZERO, 0), (at(41, 1_000_000), 1)]);
    }

    #[test]
    fn the_router_keeps_pointing_at_the_dead_primary_until_the_takeover() {
        let mut r = run(cfg());
        r.kill(at(11, 0), 0);
        r.until(at(41, 0));
        assert_eq!(r.group.arp_target(), Some(0));
        assert!(!r.group.holds_vip(0) && !r.group.holds_vip(1));
        r.until(at(41, 1_000_000));
        assert_eq!(r.group.arp_target(), Some(1));
        assert!(r.group.holds_vip(1));
    }

    #[test]
    fn initdead_applies_before_the_first_keepalive() {
        let mut r = run(HeartbeatConfig { initdead: Duration::from_secs(60), ..cfg() });
        // Dead before its first keepalive went out: 1 never hears it.
        r.kill(Time::ZERO, 0);
        r.until(at(100, 0));
        // 0 + initdead 60 s; no warning (never heard); active after takeover: 61 s.
        assert_eq!(r.times("dead"), vec![(at(60, 0), 0, "initdead")]);
        assert!(r.times("warn").is_empty());
        assert_eq!(r.times("active")[1], (at(61, 0), 1, "peer dead"));
    }

    #[test]
    fn a_returning_primary_takes_its_resources_back_with_auto_failback() {
        let mut r = primary_dies(cfg());
        r.boot(at(50, 500_000_000), 0);
        r.until(at(100, 0));
        assert!(r.times("standby").contains(&(at(50, 500_000_000), 0, "start")));
        // 1's keepalives go at even seconds; the one sent at 50 s found 0 dead (the
        // serial medium needs both ends up when sent). 0 hears 1 active at t_h = 52.001 s
        // and asks at once: 1 releases at 52.002, is standby at 53.002 (takeover), 0 hears
        // it at 53.003 and is active at 54.003 = t_h + 2 × 1 ms + 2 × 1 s.
        assert_eq!(r.times("releasing"), vec![(at(52, 2_000_000), 1, "failback")]);
        assert!(r.times("standby").contains(&(at(53, 2_000_000), 1, "failback")));
        assert!(r.times("acquiring").contains(&(at(53, 3_000_000), 0, "failback")));
        assert_eq!(r.times("active").last(), Some(&(at(54, 3_000_000), 0, "failback")));
        assert_eq!(r.arps().last(), Some(&(at(54, 3_000_000), 0)));
        // Between 53.002 and 54.003 nobody holds the VIP and the router points at 1.
    }

    #[test]
    fn nice_failback_leaves_the_resources_where_they_are() {
        let mut r = primary_dies(HeartbeatConfig { nice_failback: true, ..cfg() });
        r.boot(at(50, 500_000_000), 0);
        r.until(at(300, 0));
        assert!(r.times("releasing").is_empty());
        assert_eq!(r.group.state(0), Some("standby"));
        assert_eq!(r.group.state(1), Some("active"));
        assert_eq!(r.group.arp_target(), Some(1));
    }

    fn ipfail() -> HeartbeatConfig {
        let node = PingNode { name: "gw".into(), address: [192, 0, 2, 1].into(), side: Side::External };
        HeartbeatConfig { ping_nodes: vec![node], ..cfg() }
    }

    #[test]
    fn ipfail_moves_the_resources_to_the_node_that_sees_more() {
        let mut r = run(ipfail());
        r.link(at(10, 500_000_000), 0, Side::External, false);
        r.until(at(49, 0));
        // 0's last answered ping: 10 s; dead at 10 + deadping 30 = 40 s: 0 sees 0 ping
        // nodes, 1 said 1 in its keepalives. 0 releases at 40, is standby at 41 s; 1 hears
        // the hand-over at 41.001 s and is active at 42.001 s (takeover 1 s).
        assert_eq!(r.times("releasing"), vec![(at(40, 0), 0, "ipfail")]);
        assert_eq!(r.times("standby").last(), Some(&(at(41, 0), 0, "ipfail")));
        assert_eq!(r.times("acquiring"), vec![(at(41, 1_000_000), 1, "ipfail")]);
        assert_eq!(r.times("active").last(), Some(&(at(42, 1_000_000), 1, "ipfail")));
        assert_eq!(r.arps().last(), Some(&(at(42, 1_000_000), 1)));
        // The keepalives (serial) never stopped: nobody was declared dead.
        assert!(r.times("dead").is_empty());

        // The link comes back: 0's ping at 50 s is answered (1 ≥ 1), it asks at once;
        // 1 releases at 50.001, standby 51.001; 0 acquires at 51.002, active at 52.002.
        r.link(at(49, 500_000_000), 0, Side::External, true);
        r.until(at(60, 0));
        assert_eq!(r.times("releasing").last(), Some(&(at(50, 1_000_000), 1, "failback")));
        assert_eq!(r.times("active").last(), Some(&(at(52, 2_000_000), 0, "failback")));
    }

    #[test]
    fn split_brain_makes_both_active_and_the_router_follows_the_last_arp() {
        let cfg = HeartbeatConfig {
            deadtime: Duration::from_secs(10),
            warntime: Duration::from_secs(5),
            initdead: Duration::from_secs(30),
            media: vec![Medium::Lan(Side::Internal)],
            ..cfg()
        };
        let mut r = run(cfg);
        r.link(at(10, 500_000_000), 1, Side::Internal, false);
        r.until(at(30, 0));
        // Each heard the other last at 10.001 s: warned about at 15.001, dead at 20.001
        // (member 0's timers first: it reports peer 1).
        assert_eq!(
            r.times("warn"),
            vec![(at(15, 1_000_000), 1, "peer late"), (at(15, 1_000_000), 0, "peer late")]
        );
        assert_eq!(
            r.times("dead"),
            vec![(at(20, 1_000_000), 1, "deadtime"), (at(20, 1_000_000), 0, "deadtime")]
        );
        assert_eq!(r.times("active").last(), Some(&(at(21, 1_000_000), 1, "peer dead")));
        assert!(r.group.holds_vip(0) && r.group.holds_vip(1));
        assert_eq!(r.group.arp_target(), Some(1));

        // Healed at 30.5 s: the keepalives of 32 s arrive at 32.001 s. 1 hears 0 active
        // and releases; 0 hears 1 active and re-announces the VIP.
        r.link(at(30, 500_000_000), 1, Side::Internal, true);
        r.until(at(40, 0));
        assert_eq!(r.times("releasing"), vec![(at(32, 1_000_000), 1, "split brain")]);
        assert_eq!(r.arps().last(), Some(&(at(32, 1_000_000), 0)));
        assert_eq!(r.times("standby").last(), Some(&(at(33, 1_000_000), 1, "split brain")));
        assert_eq!(r.group.state(0), Some("active"));
    }

    #[test]
    fn same_inputs_same_transitions() {
        let script = || {
            let mut r = run(ipfail());
            r.link(at(10, 500_000_000), 0, Side::External, false);
            r.kill(at(45, 0), 1);
            r.link(at(50, 0), 0, Side::External, true);
            r.boot(at(60, 0), 1);
            r.until(at(300, 0));
            r.log
        };
        let a = script();
        assert!(a.len() > 8);
        assert_eq!(a, script());
    }
}
