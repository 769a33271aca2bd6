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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ha::testing::{Run, at};
    use crate::ha::{Failover, SaruConfig};

    fn blocks_of(a: &Assignment, m: usize) -> Vec<u32> {
        (0..a.owner.len() as u32).filter(|&b| a.owner(b) == Some(m)).collect()
    }

    #[test]
    fn a_leavers_blocks_go_round_robin_and_a_joiner_takes_the_excess() {
        let mut a = Assignment::new(512, 4);
        assert!((0..512).all(|b| a.owner(b) == Some(b as usize % 4)));
        let before = a.clone();
        a.leave(2);
        // 2 owned 2, 6, ..., 510 (128 blocks): 2 → 0, 6 → 1, 10 → 3, 14 → 0, ...
        // 128 = 3 × 42 + 2: members 0 and 1 get 43, member 3 gets 42.
        assert_eq!([a.owned(0), a.owned(1), a.owned(2), a.owned(3)], [128 + 43, 128 + 43, 0, 128 + 42]);
        assert_eq!((a.owner(2), a.owner(6), a.owner(10), a.owner(14)), (Some(0), Some(1), Some(3), Some(0)));
        assert_eq!(a.owner(506), Some(0)); // the 127th of 2's blocks: index 126, 126 % 3 = 0
        assert_eq!(a.owner(510), Some(1)); // index 127
        assert!(
            (0..512).filter(|b| b % 4 != 2).all(|b| a.owner(b) == before.owner(b)),
            "only 2's blocks move"
        );
        a.join(2);
        // Fair share 512 / 4 = 128: 0 and 1 give their 43 highest, 3 its 42 highest.
        assert_eq!([a.owned(0), a.owned(1), a.owned(2), a.owned(3)], [128; 4]);
        assert_eq!(blocks_of(&a, 2).len(), 128);
        // Member 0 had 0, 4, ..., 508 and 2, 14, ..., 506 (2 + 12k): it keeps the lowest
        // 128 of those 171 and gave the highest 43.
        let mut had: Vec<u32> = (0..128).map(|k| 4 * k).chain((0..43).map(|k| 2 + 12 * k)).collect();
        had.sort_unstable();
        assert_eq!(blocks_of(&a, 0), had[..128].to_vec());
        assert!(had[128..].iter().all(|&b| a.owner(b) == Some(2)));
    }

    #[test]
    fn uneven_shares_give_the_extra_blocks_to_the_lowest_members() {
        let mut a = Assignment::new(512, 3);
        // 512 = 3 × 170 + 2.
        assert_eq!([a.owned(0), a.owned(1), a.owned(2)], [171, 171, 170]);
        a.leave(1);
        // 171 blocks round-robin to 0 and 2: 86 and 85.
        assert_eq!([a.owned(0), a.owned(1), a.owned(2)], [257, 0, 255]);
        a.join(1);
        // Shares in member order 171, 171, 170: 0 gives 86, 2 gives 85.
        assert_eq!([a.owned(0), a.owned(1), a.owned(2)], [171, 171, 170]);
    }

    fn run() -> Run {
        // keepalive 2 s, warntime 10 s, deadtime 30 s, initdead 120 s; messages 1 ms.
        Run::new(Failover::ActiveActive(SaruConfig::default()), 4, Time::ZERO)
    }

    #[test]
    fn a_dead_member_black_holes_its_blocks_until_the_coordinator_declares_it_dead() {
        let mut r = run();
        assert_eq!(r.times("member").len(), 4);
        r.kill(at(11, 0), 2);
        r.until(at(40, 0));
        // Its last keepalive, sent at 10 s, reached the coordinator (0) at 10.001 s.
        assert_eq!(r.group.block_owner(2), Some(2));
        assert!(!r.group.holds_vip(2));
        assert_eq!(r.times("warn"), vec![(at(20, 1_000_000), 2, "peer late")]);
        r.until(at(40, 1_000_000));
        // 10.001 + deadtime 30 = 40.001 s.
        assert_eq!(r.times("left"), vec![(at(40, 1_000_000), 2, "peer dead")]);
        let owned: Vec<u32> = (0..4).map(|m| r.group.blocks_owned(m)).collect();
        assert_eq!(owned, vec![171, 171, 0, 170]);
        assert_eq!(r.group.block_owner(2), Some(0));
        assert_eq!(r.group.arp_target(), None);

        // Back at 50.5 s: its first keepalive reaches the coordinator at 50.501 s.
        r.boot(at(50, 500_000_000), 2);
        assert_eq!(r.group.state(2), Some("joining"));
        r.until(at(60, 0));
        assert_eq!(r.times("member").last(), Some(&(at(50, 501_000_000), 2, "joined")));
        let owned: Vec<u32> = (0..4).map(|m| r.group.blocks_owned(m)).collect();
        assert_eq!(owned, vec![128; 4]);
        assert!((0..4).all(|m| r.group.holds_vip(m)));
    }

    #[test]
    fn when_the_coordinator_dies_the_next_member_decides() {
        let mut r = run();
        r.kill(at(11, 0), 0);
        r.until(at(60, 0));
        // Member 1 (now the lowest running member) heard 0 last at 10.001 s.
        assert_eq!(r.times("left"), vec![(at(40, 1_000_000), 0, "peer dead")]);
        let owned: Vec<u32> = (0..4).map(|m| r.group.blocks_owned(m)).collect();
        assert_eq!(owned, vec![0, 128 + 43, 128 + 43, 128 + 42]);
    }

    #[test]
    fn same_inputs_same_transitions() {
        let script = || {
            let mut r = run();
            r.kill(at(11, 0), 2);
            r.kill(at(13, 0), 0);
            r.boot(at(70, 0), 2);
            r.boot(at(71, 0), 0);
            r.until(at(300, 0));
            let owners: Vec<Option<usize>> = (0..512).map(|b| r.group.block_owner(b)).collect();
            (r.log, owners)
        };
        let a = script();
        assert!(a.0.len() > 8);
        assert_eq!(a, script());
    }
}
