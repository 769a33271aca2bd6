//! A fail-over group: its members' state machines (heartbeat, VRRP or Saru membership),
//! the messages between them, and who serves the VIP.
//!
//! The group knows nothing of the cluster but what [`Net`] tells it: whether a member is
//! alive and whether its links are up. A message (keepalive, advert, ping) is sent only by
//! a live member and reaches a live peer `latency` later when the medium works both at
//! the sending and at the arrival time.

use lvs_sched::Time;

use super::{HaConfig, Side};

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
    /// `MASTER`, `BACKUP`, `FAULT` (VRRP); `active`, `standby` (heartbeat); `member`,
    /// `left` (active-active).
    pub state: &'static str,
    /// Why: `master down`, `preempt`, `peer dead`, `ipfail`, `link down`, `start`, ...
    pub cause: String,
}

/// A fail-over group in virtual time.
pub struct Group {
    _cfg: HaConfig,
}

impl Group {
    /// A group whose members all start (as after boot) at `now`.
    pub fn new(cfg: &HaConfig, now: Time) -> Self {
        let _ = now;
        Group { _cfg: cfg.clone() }
    }

    /// When the group next has something to do (a timer, a message arriving).
    pub fn next_time(&self) -> Option<Time> {
        unimplemented!("helper")
    }

    /// Runs every timer and message due by `now`.
    pub fn run_until(&mut self, now: Time, net: &dyn Net) {
        let _ = (now, net);
        unimplemented!("helper")
    }

    /// Member `m` died at `now` (its state machine stops; messages to it are lost).
    pub fn member_down(&mut self, now: Time, m: usize) {
        let _ = (now, m);
        unimplemented!("helper")
    }

    /// Member `m` booted again at `now`: its state machine starts afresh.
    pub fn member_up(&mut self, now: Time, m: usize, net: &dyn Net) {
        let _ = (now, m, net);
        unimplemented!("helper")
    }

    /// A link of member `m` changed at `now` (VRRP's interface tracking reacts at once).
    pub fn link_changed(&mut self, now: Time, m: usize, net: &dyn Net) {
        let _ = (now, m, net);
        unimplemented!("helper")
    }

    /// The member the upstream router sends the VIP's packets to: the last one whose
    /// gratuitous ARP reached it (heartbeat, VRRP), `None` before any. Active-active:
    /// `None` (see [`Group::block_owner`]).
    pub fn arp_target(&self) -> Option<usize> {
        unimplemented!("helper")
    }

    /// Does member `m` hold the VIP now (it accepts the VIP's packets)?
    pub fn holds_vip(&self, m: usize) -> bool {
        let _ = m;
        unimplemented!("helper")
    }

    /// Active-active: the member owning block `b` (0..blocks), `None` if no member does.
    pub fn block_owner(&self, b: u32) -> Option<usize> {
        let _ = b;
        unimplemented!("helper")
    }

    /// The state changes since the last call, in time order.
    pub fn take_transitions(&mut self) -> Vec<Transition> {
        unimplemented!("helper")
    }
}
