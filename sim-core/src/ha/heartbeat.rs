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
