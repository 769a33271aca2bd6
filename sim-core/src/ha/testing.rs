//! A scripted cluster for the fail-over tests: members' liveness and links, and a log of
//! every transition.

use lvs_sched::{Duration, Time};

use super::group::{Group, Net, Transition};
use super::{Failover, HaConfig, Side};

/// `s` seconds plus `ns` nanoseconds, as a time.
pub fn at(s: u64, ns: u64) -> Time {
    Time(s * 1_000_000_000 + ns)
}

/// The cluster as the group sees it.
#[derive(Clone, Debug)]
pub struct TestNet {
    pub alive: Vec<bool>,
    pub external: Vec<bool>,
    pub internal: Vec<bool>,
}

impl Net for TestNet {
    fn alive(&self, m: usize) -> bool {
        self.alive[m]
    }
    fn link_up(&self, m: usize, side: Side) -> bool {
        match side {
            Side::External => self.external[m],
            Side::Internal => self.internal[m],
        }
    }
}

/// A group, its cluster, and what it reported.
pub struct Run {
    pub group: Group,
    pub net: TestNet,
    pub log: Vec<Transition>,
}

impl Run {
    /// `n` members started at `start`, messages taking 1 ms.
    pub fn new(failover: Failover, n: usize, start: Time) -> Self {
        let cfg =
            HaConfig { members: (0..n).collect(), failover, sync: None, latency: Duration::from_millis(1) };
        let group = Group::new(&cfg, start);
        let net = TestNet { alive: vec![true; n], external: vec![true; n], internal: vec![true; n] };
        let mut run = Run { group, net, log: Vec::new() };
        run.collect();
        run
    }

    fn collect(&mut self) {
        let new = self.group.take_transitions();
        if let (Some(last), Some(first)) = (self.log.last(), new.first()) {
            assert!(last.at <= first.at, "transitions out of order");
        }
        assert!(new.windows(2).all(|w| w[0].at <= w[1].at), "transitions out of order");
        self.log.extend(new);
    }

    /// Runs the group to `t`, stopping at every time it names (as the simulator does).
    pub fn until(&mut self, t: Time) {
        while let Some(next) = self.group.next_time().filter(|&n| n <= t) {
            self.group.run_until(next, &self.net);
        }
        self.group.run_until(t, &self.net);
        self.collect();
    }

    /// Member `m` dies at `t`.
    pub fn kill(&mut self, t: Time, m: usize) {
        self.until(t);
        self.net.alive[m] = false;
        self.group.member_down(t, m);
        self.collect();
    }

    /// Member `m` boots at `t`.
    pub fn boot(&mut self, t: Time, m: usize) {
        self.until(t);
        self.net.alive[m] = true;
        self.group.member_up(t, m, &self.net);
        self.collect();
    }

    /// Member `m`'s link on `side` goes up or down at `t`.
    pub fn link(&mut self, t: Time, m: usize, side: Side, up: bool) {
        self.until(t);
        match side {
            Side::External => self.net.external[m] = up,
            Side::Internal => self.net.internal[m] = up,
        }
        self.group.link_changed(t, m, &self.net);
        self.collect();
    }

    /// `(time, member, cause)` of every transition to `state`.
    pub fn times(&self, state: &str) -> Vec<(Time, usize, &str)> {
        self.log.iter().filter(|t| t.state == state).map(|t| (t.at, t.member, t.cause.as_str())).collect()
    }

    /// `(time, member)` of every change of the router's target.
    pub fn arps(&self) -> Vec<(Time, usize)> {
        self.log.iter().filter(|t| t.state == "arp").map(|t| (t.at, t.member)).collect()
    }
}
