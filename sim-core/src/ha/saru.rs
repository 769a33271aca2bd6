//! Saru active-active: the connection space split into blocks of source ports or
//! addresses, owned by the live directors and re-divided when one leaves or joins.
//!
//! ```text
//!                 clients
//!                    |   every packet reaches every director (shared VIP and MAC)
//!       +------------+------------+
//!  [ member 0 ]  [ member 1 ]  [ member 2 ]      keepalives: each to every other
//!  blocks b%3=0   blocks b%3=1   blocks b%3=2    each accepts only its own blocks
//! ```
//!
//! # Model
//! - Membership is heartbeat's: every member sends a keepalive to every other every
//!   `keepalive` (the first at its start) and keeps a [`Liveness`] view of the others
//!   (`deadtime`, `initdead`, `warntime` as in [`super::heartbeat`]).
//! - The assignment ([`Assignment`]) is one shared view, recomputed only from the
//!   **coordinator**'s view: the lowest-indexed running member of the membership (or,
//!   when no member of it runs, the lowest-indexed running member, which then joins
//!   itself). After every event the group reconciles: a member the coordinator hears
//!   that is not in the membership joins; a member of it the coordinator declares dead
//!   leaves. Joins are applied before leaves, each in member order. Only the
//!   coordinator's warnings are reported.
//! - Initial assignment: block `b` → member `b % n`.
//! - A leaver's blocks go to the remaining members round-robin in block order (the
//!   lowest block to the lowest-indexed member); no other block moves.
//! - A joiner gets, from each other member in member order, its blocks above its fair
//!   share, highest block numbers first. Fair shares over the `k` members (joiner
//!   included): `blocks / k`, plus one for the `blocks % k` lowest-indexed members.
//! - Until the coordinator declares a dead member dead, that member still owns its
//!   blocks: their packets are black-holed (the simulator drops them).
//!
//! # Simplified
//! The members' own views are not compared: the coordinator's decision is everyone's
//! at once (in Saru each director computes the same table from the same membership).

use lvs_sched::Time;

use super::HeartbeatConfig;
use super::group::Action;
use super::heartbeat::{Liveness, PeerEvent};

/// A Saru keepalive (membership only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Keepalive;

/// One member's membership daemon: keepalives out, a view of the others.
///
/// Call order: [`Member::start`]; then [`Member::handle_timeout`] whenever
/// [`Member::next_time`] is due and [`Member::handle_keepalive`] for each arrival.
#[derive(Clone, Debug)]
pub struct Member {
    live: Liveness,
    next_keepalive: Time,
}

impl Member {
    /// Member `me` of `n` starts at `now`; its first keepalive is due at once.
    pub fn start(now: Time, me: usize, n: usize) -> Self {
        Member { live: Liveness::new(me, n, now), next_keepalive: now }
    }

    /// The member's view of the others.
    pub fn liveness(&self) -> &Liveness {
        &self.live
    }

    /// When the member next has something to do.
    pub fn next_time(&self, cfg: &HeartbeatConfig) -> Option<Time> {
        [Some(self.next_keepalive), self.live.next_time(cfg)].into_iter().flatten().min()
    }

    /// Runs the timers due by `now`; a `coordinator` reports its late peers.
    pub fn handle_timeout(
        &mut self,
        now: Time,
        cfg: &HeartbeatConfig,
        coordinator: bool,
        out: &mut Vec<Action<Keepalive>>,
    ) {
        if self.next_keepalive <= now {
            out.push(Action::Broadcast(Keepalive));
            self.next_keepalive = now + cfg.keepalive;
        }
        let mut events = Vec::new();
        self.live.expire(now, cfg, &mut events);
        for event in events {
            if let (PeerEvent::Late(p), true) = (event, coordinator) {
                out.push(Action::Report { member: p, state: "warn", cause: "peer late" });
            }
        }
    }

    /// A keepalive from `from` arrived at `now`.
    pub fn handle_keepalive(&mut self, now: Time, from: usize) {
        self.live.heard(now, from);
    }
}

/// Who owns which block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    owner: Vec<usize>,
    owned: Vec<u32>,
    member: Vec<bool>,
}

impl Assignment {
    /// `blocks` blocks over `n` members, block `b` to member `b % n`.
    pub fn new(blocks: u32, n: usize) -> Self {
        assert!(n > 0, "an active-active group needs a member");
        let owner: Vec<usize> = (0..blocks as usize).map(|b| b % n).collect();
        let mut owned = vec![0; n];
        for &o in &owner {
            owned[o] += 1;
        }
        Assignment { owner, owned, member: vec![true; n] }
    }

    /// The owner of block `b`, `None` past the last block.
    pub fn owner(&self, b: u32) -> Option<usize> {
        self.owner.get(b as usize).copied()
    }

    /// How many blocks member `m` owns.
    pub fn owned(&self, m: usize) -> u32 {
        self.owned[m]
    }

    /// Is `m` in the membership?
    pub fn is_member(&self, m: usize) -> bool {
        self.member[m]
    }

    fn give(&mut self, b: usize, to: usize) {
        self.owned[self.owner[b]] -= 1;
        self.owned[to] += 1;
        self.owner[b] = to;
    }

    /// `l` leaves: its blocks go round-robin, in block order, to the other members in
    /// member order. The last member never leaves.
    pub fn leave(&mut self, l: usize) {
        let rest: Vec<usize> = (0..self.member.len()).filter(|&m| m != l && self.member[m]).collect();
        if rest.is_empty() {
            return;
        }
        self.member[l] = false;
        let theirs: Vec<usize> = (0..self.owner.len()).filter(|&b| self.owner[b] == l).collect();
        for (i, b) in theirs.into_iter().enumerate() {
            self.give(b, rest[i % rest.len()]);
        }
    }

    /// `j` joins: each other member, in member order, gives it its blocks above its fair
    /// share, highest first.
    pub fn join(&mut self, j: usize) {
        if self.member[j] {
            return;
        }
        self.member[j] = true;
        let members: Vec<usize> = (0..self.member.len()).filter(|&m| self.member[m]).collect();
        let k = members.len() as u32;
        let blocks = self.owner.len() as u32;
        for (rank, &m) in members.iter().enumerate() {
            if m == j {
                continue;
            }
            let share = blocks / k + u32::from((rank as u32) < blocks % k);
            let excess = self.owned[m].saturating_sub(share) as usize;
            let give: Vec<usize> =
                (0..self.owner.len()).rev().filter(|&b| self.owner[b] == m).take(excess).collect();
            for b in give {
                self.give(b, j);
            }
        }
    }
}
