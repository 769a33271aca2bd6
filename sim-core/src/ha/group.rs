//! A fail-over group: its members' state machines (heartbeat, VRRP or Saru membership),
//! the messages between them, and who serves the VIP.
//!
//! The group knows nothing of the cluster but what [`Net`] tells it: whether a member is
//! alive and whether its links are up. A message (keepalive, advert) is sent only by a
//! live member and reaches a live peer `latency` later when the medium works both at
//! the sending and at the arrival time:
//! - VRRP: every interface of the instance (`interfaces`, `External` if empty) is up at
//!   both ends;
//! - heartbeat and Saru: any medium of `media` works: [`Medium::Dedicated`] while both
//!   members are alive, [`Medium::Lan`] while both members' links on that side are up.
//!
//! A member is alive when it runs here (not stopped by [`Group::member_down`]) and
//! [`Net::alive`] says so.
//!
//! # Driving it
//! Call [`Group::run_until`] at every time [`Group::next_time`] names, and at `t` before
//! telling the group of a change at `t` ([`Group::member_down`], [`Group::member_up`],
//! [`Group::link_changed`]); the [`Net`] given must describe the cluster at that time.
//! The last two run what falls due at `now` themselves.
//!
//! # Order
//! Messages in flight (and delayed gratuitous ARPs) are an [`EventHeap`] ordered by
//! `(arrival, send sequence)`. At equal times, arrivals come before timers (a keepalive arriving at
//! a deadline is in time), and timers go in member order. Nothing is random.
//!
//! # The router
//! [`Group::arp_target`] is the member whose gratuitous ARP reached the upstream router
//! last. It does not change when that member dies or gives up the VIP: packets go to
//! it, and are lost, until another member's ARP (the fail-over gap). VRRP's ARP reaches
//! the router `garp_delay` after the transition to MASTER, and counts only if the member
//! is still MASTER then; heartbeat's at once, when the node becomes active.

use lvs_sched::{Duration, Time};

use crate::engine::EventHeap;

use super::heartbeat::{self, Node, Status};
use super::saru::{self, Assignment, Keepalive};
use super::vrrp::{self, Advert, Router};
use super::{Failover, HaConfig, HeartbeatConfig, Medium, SaruConfig, Side, VrrpConfig};

/// What the group asks of the cluster.
pub trait Net {
    /// Is member `m` (index into the group's members) running?
    fn alive(&self, m: usize) -> bool;
    /// Is member `m`'s link on `side` up?
    fn link_up(&self, m: usize, side: Side) -> bool;
}

/// A change of state of a member, for reports and logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    /// When.
    pub at: Time,
    /// The member (index into the group's members).
    pub member: usize,
    /// `MASTER`, `BACKUP`, `FAULT` (VRRP); `active`, `standby`, `acquiring`,
    /// `releasing`, and of a peer `warn`, `dead` (heartbeat); `member`, `left`, and of a
    /// peer `warn` (active-active); `arp`: the router now sends the VIP's packets to the
    /// member (its gratuitous ARP arrived; heartbeat, VRRP).
    pub state: &'static str,
    /// Why: `master down`, `preempt`, `peer dead`, `ipfail`, `link down`, `start`, ...
    pub cause: String,
}

/// What a member's state machine asks of its group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action<M> {
    /// Send `M` to every other member (each copy crosses its own medium).
    Broadcast(M),
    /// Report a state change of `member` (the machine itself, or a peer it watches).
    Report {
        /// The member the report is about.
        member: usize,
        /// Its new state.
        state: &'static str,
        /// Why.
        cause: &'static str,
    },
    /// Send a gratuitous ARP for the VIP now.
    Garp,
}

/// What crosses between members (or reaches the router).
#[derive(Clone, Copy, Debug)]
enum Payload {
    Advert(Advert),
    Status(Status),
    Keepalive,
    /// A gratuitous ARP of `from` reaching the router (VRRP's `garp_delay`).
    Garp,
}

/// A message in flight (or a delayed gratuitous ARP), keyed in the heap by its arrival.
#[derive(Clone, Debug)]
struct InFlight {
    from: usize,
    to: usize,
    payload: Payload,
}

/// The members' state machines, `None` for a stopped member.
#[derive(Clone, Debug)]
enum Machines {
    Vrrp { cfg: VrrpConfig, routers: Vec<Option<Router>> },
    Heartbeat { cfg: HeartbeatConfig, nodes: Vec<Option<Node>> },
    Saru { cfg: SaruConfig, members: Vec<Option<saru::Member>>, blocks: Assignment },
}

/// A fail-over group in virtual time.
#[derive(Clone, Debug)]
pub struct Group {
    latency: Duration,
    n: usize,
    machines: Machines,
    flight: EventHeap<InFlight>,
    now: Time,
    arp: Option<usize>,
    transitions: Vec<Transition>,
}

impl Group {
    /// A group whose members all start (as after boot) at `now`, with their links up.
    /// VRRP: every member BACKUP but a priority-255 one, MASTER; heartbeat: the first
    /// member active (and the router's target), the others standby; active-active:
    /// block `b` to member `b % n`. First messages go out at the first
    /// [`Group::run_until`].
    pub fn new(cfg: &HaConfig, now: Time) -> Self {
        let n = cfg.members.len();
        assert!(n > 0, "a fail-over group needs a member");
        let machines = match &cfg.failover {
            Failover::Vrrp(v) => {
                assert_eq!(v.priorities.len(), n, "one VRRP priority per member");
                Machines::Vrrp { cfg: v.clone(), routers: vec![None; n] }
            }
            Failover::Heartbeat(h) => Machines::Heartbeat { cfg: h.clone(), nodes: vec![None; n] },
            Failover::ActiveActive(s) => {
                assert!(s.blocks > 0, "active-active needs blocks");
                let blocks = Assignment::new(s.blocks, n);
                Machines::Saru { cfg: s.clone(), members: vec![None; n], blocks }
            }
        };
        let mut group = Group {
            latency: cfg.latency,
            n,
            machines,
            flight: EventHeap::new(),
            now,
            arp: None,
            transitions: Vec::new(),
        };
        for m in 0..n {
            group.start(now, m, None);
            if let Machines::Saru { .. } = group.machines {
                group.report(now, m, "member", "start");
            }
        }
        group
    }

    /// The number of members.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Does the group have no member? (Never: [`Group::new`] refuses.)
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// When the group next has something to do (a timer, a message arriving).
    pub fn next_time(&self) -> Option<Time> {
        let msg = self.flight.peek_time();
        let timer = self.next_timer().map(|(t, _)| t);
        [msg, timer].into_iter().flatten().min()
    }

    /// Runs every timer and message due by `now`.
    pub fn run_until(&mut self, now: Time, net: &dyn Net) {
        assert!(now >= self.now, "ha group: time went backwards ({now} < {})", self.now);
        loop {
            let msg = self.flight.peek_time().filter(|&t| t <= now);
            let timer = self.next_timer().filter(|&(t, _)| t <= now);
            match (msg, timer) {
                (Some(t), timer) if timer.is_none_or(|(tt, _)| t <= tt) => {
                    let Some((at, f)) = self.flight.pop() else { unreachable!("peeked") };
                    self.now = at;
                    self.deliver(at, f, net);
                }
                (_, Some((t, m))) => {
                    self.now = t;
                    self.fire(t, m, net);
                }
                _ => break,
            }
        }
        self.now = now;
    }

    /// Member `m` died at `now` (its state machine stops; messages to it are lost). The
    /// router's target does not change.
    pub fn member_down(&mut self, now: Time, m: usize) {
        self.advance(now);
        match &mut self.machines {
            Machines::Vrrp { routers, .. } => routers[m] = None,
            Machines::Heartbeat { nodes, .. } => nodes[m] = None,
            Machines::Saru { members, .. } => members[m] = None,
        }
        self.flight.retain(|f| f.to != m);
        self.reconcile(now);
    }

    /// Member `m` booted again at `now`: its state machine starts afresh (VRRP: BACKUP,
    /// or FAULT with a tracked link down, or MASTER at priority 255; heartbeat: standby,
    /// peers unknown so `initdead` applies; active-active: not a member until the
    /// coordinator hears it). Runs what falls due at `now`.
    pub fn member_up(&mut self, now: Time, m: usize, net: &dyn Net) {
        self.advance(now);
        assert!(!self.running(m), "member {m} is already up");
        self.start(now, m, Some(net));
        self.run_until(now, net);
    }

    /// A link of member `m` changed at `now`: VRRP's interface tracking reacts at once
    /// (FAULT, or back from it); heartbeat and ipfail notice through their timers.
    pub fn link_changed(&mut self, now: Time, m: usize, net: &dyn Net) {
        self.advance(now);
        let links = self.vrrp_links_up(m, net);
        let mut out = Vec::new();
        if let Machines::Vrrp { cfg, routers } = &mut self.machines {
            if let Some(r) = &mut routers[m] {
                r.handle_links(now, cfg, links, &mut out);
            }
        }
        self.apply(now, m, out, Some(net), Payload::Advert);
        self.run_until(now, net);
    }

    /// The member the upstream router sends the VIP's packets to: the last one whose
    /// gratuitous ARP reached it (heartbeat, VRRP), `None` before any. Active-active:
    /// `None` (see [`Group::block_owner`]).
    pub fn arp_target(&self) -> Option<usize> {
        match self.machines {
            Machines::Saru { .. } => None,
            _ => self.arp,
        }
    }

    /// Does member `m` hold the VIP now (it accepts the VIP's packets)? VRRP: it is
    /// MASTER; heartbeat: active or releasing; active-active: it runs and owns a block.
    pub fn holds_vip(&self, m: usize) -> bool {
        match &self.machines {
            Machines::Vrrp { routers, .. } => {
                routers[m].as_ref().is_some_and(|r| r.state() == vrrp::State::Master)
            }
            Machines::Heartbeat { nodes, .. } => nodes[m].as_ref().is_some_and(|n| n.role().holds_vip()),
            Machines::Saru { members, blocks, .. } => members[m].is_some() && blocks.owned(m) > 0,
        }
    }

    /// Active-active: the member owning block `b` (0..blocks), `None` if no member does
    /// (past the last block, or not an active-active group). A dead member owns its
    /// blocks until the coordinator declares it dead.
    pub fn block_owner(&self, b: u32) -> Option<usize> {
        match &self.machines {
            Machines::Saru { blocks, .. } => blocks.owner(b),
            _ => None,
        }
    }

    /// Active-active: how many blocks member `m` owns (0 in other groups).
    pub fn blocks_owned(&self, m: usize) -> u32 {
        match &self.machines {
            Machines::Saru { blocks, .. } => blocks.owned(m),
            _ => 0,
        }
    }

    /// Member `m`'s state now, as transitions name it (`MASTER`, `active`, `member`,
    /// `joining`, ...); `None` while it is down.
    pub fn state(&self, m: usize) -> Option<&'static str> {
        match &self.machines {
            Machines::Vrrp { routers, .. } => routers[m].as_ref().map(|r| r.state().name()),
            Machines::Heartbeat { nodes, .. } => nodes[m].as_ref().map(|n| n.role().name()),
            Machines::Saru { members, blocks, .. } => {
                members[m].as_ref().map(|_| if blocks.is_member(m) { "member" } else { "joining" })
            }
        }
    }

    /// The state changes since the last call, in time order.
    pub fn take_transitions(&mut self) -> Vec<Transition> {
        std::mem::take(&mut self.transitions)
    }

    fn advance(&mut self, now: Time) {
        assert!(now >= self.now, "ha group: time went backwards ({now} < {})", self.now);
        self.now = now;
    }

    fn running(&self, m: usize) -> bool {
        match &self.machines {
            Machines::Vrrp { routers, .. } => routers[m].is_some(),
            Machines::Heartbeat { nodes, .. } => nodes[m].is_some(),
            Machines::Saru { members, .. } => members[m].is_some(),
        }
    }

    fn up(&self, m: usize, net: &dyn Net) -> bool {
        self.running(m) && net.alive(m)
    }

    /// Are all of `m`'s VRRP interfaces up? (`true` outside VRRP.)
    fn vrrp_links_up(&self, m: usize, net: &dyn Net) -> bool {
        match &self.machines {
            Machines::Vrrp { cfg, .. } => vrrp_sides(cfg).iter().all(|&s| net.link_up(m, s)),
            _ => true,
        }
    }

    /// Does a message from `a` to `b` get through now?
    fn medium_ok(&self, a: usize, b: usize, net: &dyn Net) -> bool {
        let media = match &self.machines {
            Machines::Vrrp { cfg, .. } => {
                return vrrp_sides(cfg).iter().all(|&s| net.link_up(a, s) && net.link_up(b, s));
            }
            Machines::Heartbeat { cfg, .. } => &cfg.media,
            Machines::Saru { cfg, .. } => &cfg.heartbeat.media,
        };
        media.iter().any(|medium| match *medium {
            Medium::Dedicated => self.up(a, net) && self.up(b, net),
            Medium::Lan(side) => net.link_up(a, side) && net.link_up(b, side),
        })
    }

    /// Starts member `m`'s state machine at `now` (`net`: `None` at the group's birth,
    /// when every link is taken as up).
    fn start(&mut self, now: Time, m: usize, net: Option<&dyn Net>) {
        let n = self.n;
        let links = net.is_none_or(|net| self.vrrp_links_up(m, net));
        match &mut self.machines {
            Machines::Vrrp { cfg, routers } => {
                let mut out = Vec::new();
                routers[m] = Some(Router::start(now, m, cfg, links, &mut out));
                self.apply(now, m, out, net, Payload::Advert);
            }
            Machines::Heartbeat { cfg, nodes } => {
                let mut out = Vec::new();
                // At the group's birth the first member is active; a restarted one waits.
                let active = net.is_none() && m == 0;
                nodes[m] = Some(Node::start(now, m, n, active, cfg, &mut out));
                self.apply(now, m, out, net, Payload::Status);
            }
            Machines::Saru { members, .. } => {
                members[m] = Some(saru::Member::start(now, m, n));
                self.reconcile(now);
            }
        }
    }

    /// When member `m`'s state machine next wants to run (`None` while it is down).
    fn member_next_time(&self, m: usize) -> Option<Time> {
        match &self.machines {
            Machines::Vrrp { routers, .. } => routers[m].as_ref().and_then(Router::next_time),
            Machines::Heartbeat { cfg, nodes } => nodes[m].as_ref().and_then(|n| n.next_time(cfg)),
            Machines::Saru { cfg, members, .. } => {
                members[m].as_ref().and_then(|s| s.next_time(&cfg.heartbeat))
            }
        }
    }

    /// The earliest member timer and its member (the lowest index at equal times).
    fn next_timer(&self) -> Option<(Time, usize)> {
        (0..self.n).filter_map(|m| self.member_next_time(m).map(|t| (t, m))).min()
    }

    /// Runs member `m`'s timers due at `now`.
    fn fire(&mut self, now: Time, m: usize, net: &dyn Net) {
        let coordinator = self.coordinator() == Some(m);
        match &mut self.machines {
            Machines::Vrrp { cfg, routers } => {
                let mut out = Vec::new();
                routers[m].as_mut().expect("timer of a stopped member").handle_timeout(now, cfg, &mut out);
                self.apply(now, m, out, Some(net), Payload::Advert);
            }
            Machines::Heartbeat { cfg, nodes } => {
                let mut out = Vec::new();
                nodes[m].as_mut().expect("timer of a stopped member").handle_timeout(now, cfg, net, &mut out);
                self.apply(now, m, out, Some(net), Payload::Status);
            }
            Machines::Saru { cfg, members, .. } => {
                let mut out = Vec::new();
                let member = members[m].as_mut().expect("timer of a stopped member");
                member.handle_timeout(now, &cfg.heartbeat, coordinator, &mut out);
                self.apply(now, m, out, Some(net), |Keepalive| Payload::Keepalive);
                self.reconcile(now);
            }
        }
    }

    /// A message (or a delayed ARP) arrives.
    fn deliver(&mut self, now: Time, f: InFlight, net: &dyn Net) {
        if let Payload::Garp = f.payload {
            let master = match &self.machines {
                Machines::Vrrp { routers, .. } => {
                    routers[f.from].as_ref().is_some_and(|r| r.state() == vrrp::State::Master)
                }
                _ => self.running(f.from),
            };
            if master {
                self.router_follows(now, f.from);
            }
            return;
        }
        if !self.up(f.to, net) || !self.medium_ok(f.from, f.to, net) {
            return;
        }
        match (&mut self.machines, f.payload) {
            (Machines::Vrrp { cfg, routers }, Payload::Advert(a)) => {
                let mut out = Vec::new();
                if let Some(r) = &mut routers[f.to] {
                    r.handle_advert(now, f.from, a, cfg, &mut out);
                }
                self.apply(now, f.to, out, Some(net), Payload::Advert);
            }
            (Machines::Heartbeat { cfg, nodes }, Payload::Status(s)) => {
                let mut out = Vec::new();
                if let Some(node) = &mut nodes[f.to] {
                    node.handle_status(now, f.from, s, cfg, &mut out);
                }
                self.apply(now, f.to, out, Some(net), Payload::Status);
            }
            (Machines::Saru { members, .. }, Payload::Keepalive) => {
                if let Some(member) = &mut members[f.to] {
                    member.handle_keepalive(now, f.from);
                }
                self.reconcile(now);
            }
            _ => unreachable!("a message of another protocol"),
        }
    }

    /// Carries out member `m`'s actions at `now`. Sends need `net` (a machine never
    /// sends while the group is being built).
    fn apply<M>(
        &mut self,
        now: Time,
        m: usize,
        out: Vec<Action<M>>,
        net: Option<&dyn Net>,
        wrap: impl Fn(M) -> Payload,
    ) {
        for action in out {
            match action {
                Action::Broadcast(msg) => {
                    let net = net.expect("a member sends only while the group runs");
                    let payload = wrap(msg);
                    self.broadcast(now, m, payload, net);
                }
                Action::Report { member, state, cause } => self.report(now, member, state, cause),
                Action::Garp => self.garp(now, m),
            }
        }
    }

    fn broadcast(&mut self, now: Time, from: usize, payload: Payload, net: &dyn Net) {
        if !self.up(from, net) {
            return;
        }
        for to in (0..self.n).filter(|&to| to != from) {
            if self.medium_ok(from, to, net) {
                self.flight.push(now + self.latency, InFlight { from, to, payload });
            }
        }
    }

    fn garp(&mut self, now: Time, m: usize) {
        match &self.machines {
            Machines::Vrrp { cfg, .. } if cfg.garp_delay > Duration::ZERO => {
                let at = now + cfg.garp_delay;
                self.flight.push(at, InFlight { from: m, to: m, payload: Payload::Garp });
            }
            Machines::Saru { .. } => {}
            _ => self.router_follows(now, m),
        }
    }

    fn router_follows(&mut self, now: Time, m: usize) {
        if self.arp != Some(m) {
            self.arp = Some(m);
            self.report(now, m, "arp", "gratuitous ARP");
        }
    }

    fn report(&mut self, now: Time, member: usize, state: &'static str, cause: &str) {
        self.transitions.push(Transition { at: now, member, state, cause: cause.to_string() });
    }

    /// Active-active: the member whose view decides the assignment.
    fn coordinator(&self) -> Option<usize> {
        let Machines::Saru { members, blocks, .. } = &self.machines else { return None };
        let running = |m: &usize| members[*m].is_some();
        (0..self.n).filter(running).find(|&m| blocks.is_member(m)).or_else(|| (0..self.n).find(running))
    }

    /// Active-active: brings the assignment in line with the coordinator's view.
    fn reconcile(&mut self, now: Time) {
        let Some(c) = self.coordinator() else { return };
        let Machines::Saru { members, blocks, .. } = &mut self.machines else { return };
        let view = members[c].as_ref().expect("the coordinator runs").liveness();
        let mut changes = Vec::new();
        for j in 0..self.n {
            if view.state(j) == heartbeat::PeerLiveness::Alive && !blocks.is_member(j) {
                blocks.join(j);
                changes.push((j, "member", "joined"));
            }
        }
        for l in 0..self.n {
            if view.state(l) == heartbeat::PeerLiveness::Dead && blocks.is_member(l) {
                blocks.leave(l);
                changes.push((l, "left", "peer dead"));
            }
        }
        for (m, state, cause) in changes {
            self.report(now, m, state, cause);
        }
    }
}

/// The sides a VRRP instance's adverts cross.
fn vrrp_sides(cfg: &VrrpConfig) -> &[Side] {
    if cfg.interfaces.is_empty() { &[Side::External] } else { &cfg.interfaces }
}
