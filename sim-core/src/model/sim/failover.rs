//! The simulation's side of an HA group of directors: which director the VIP's packets
//! reach (the upstream router's ARP entry, or the owner of a connection's block when the
//! directors are active-active), director faults, the sync daemons' messages between the
//! members, and what fail-overs cost.
//!
//! The group's own logic (VRRP, heartbeat, Saru membership) is [`crate::ha::group`]; this
//! file carries it: it tells the group which members are alive and which links are up,
//! runs it at its times, and turns its view into routing (`Director::holds`) and reports.

use lvs_sched::{Flow, Time};

use super::{Director, Event, Simulation};
use crate::ha::group::{Group, Net};
use crate::ha::{Failover, HaConfig, Side, SplitBy, SyncMode};
use crate::model::config::{ClusterConfig, DirectorChange};
use crate::model::report::{DirectorFaultReport, FailoverReport, HaReport, SyncReport};
use lvs_ipvs::sync::{self, Sender, SyncConn};

/// An HA group in a run.
pub(super) struct Ha {
    cfg: HaConfig,
    group: Group,
    /// Director index of each member.
    members: Vec<usize>,
    /// Time of the group's pending wake-up event, if one is queued.
    armed: Option<Time>,
    /// Where the VIP's packets go now (director index): fail-over groups only.
    target: Option<usize>,
    /// Active-active: each block's owner (director index), `None` if none.
    owners: Vec<Option<usize>>,
    /// The last director fault not yet followed by a fail-over, for its gap.
    last_fault: Option<(Time, String)>,
    pub(super) failovers: Vec<FailoverReport>,
    pub(super) director_faults: Vec<DirectorFaultReport>,
    /// Connection sync, if configured.
    sync: Option<SyncState>,
    /// Measured connections each director scheduled (active-active).
    pub(super) scheduled: Vec<u64>,
}

struct SyncState {
    /// The sender of each director that runs a sync master (`None` for the others).
    senders: Vec<Option<Sender>>,
    /// Whether a flush event is queued for each director, and when.
    flush_armed: Vec<Option<Time>>,
    /// Messages in flight: (sender director, bytes); a delivery event holds the slot.
    inflight: Vec<Option<(usize, Vec<u8>)>>,
    free: Vec<u32>,
    buf: Vec<SyncConn>,
    report: SyncReport,
}

/// The group's view of the cluster.
struct View<'a> {
    dirs: &'a [Director],
    members: &'a [usize],
}

impl Net for View<'_> {
    fn alive(&self, m: usize) -> bool {
        self.dirs[self.members[m]].alive
    }

    fn link_up(&self, m: usize, side: Side) -> bool {
        let d = &self.dirs[self.members[m]];
        match side {
            Side::External => d.ext_up,
            Side::Internal => d.int_up,
        }
    }
}

impl Ha {
    /// The group of a validated configuration, started at time zero.
    pub(super) fn new(cfg: &ClusterConfig, ha: &HaConfig) -> Self {
        let blocks = match &ha.failover {
            Failover::ActiveActive(s) => s.blocks as usize,
            _ => 0,
        };
        let sync = ha.sync.map(|s| {
            let senders = (0..cfg.directors.len())
                .map(|d| {
                    let pos = ha.members.iter().position(|&m| m == d);
                    let master = match s.mode {
                        SyncMode::MasterBackup => pos == Some(0),
                        SyncMode::PeerToPeer => pos.is_some(),
                    };
                    master.then(|| Sender::new(&s, 0))
                })
                .collect();
            SyncState {
                senders,
                flush_armed: vec![None; cfg.directors.len()],
                inflight: Vec::new(),
                free: Vec::new(),
                buf: Vec::new(),
                report: SyncReport::default(),
            }
        });
        Ha {
            cfg: ha.clone(),
            group: Group::new(ha, Time::ZERO),
            members: ha.members.clone(),
            armed: None,
            target: None,
            owners: vec![None; blocks],
            last_fault: None,
            failovers: Vec::new(),
            director_faults: Vec::new(),
            sync,
            scheduled: vec![0; cfg.directors.len()],
        }
    }

    /// Is director `d` a member?
    pub(super) fn has(&self, d: usize) -> bool {
        self.members.contains(&d)
    }

    /// The director that receives a connection's packets now (`None`: nobody does, the
    /// packets are lost): the router's ARP target, or the owner of the connection's block.
    pub(super) fn route(&self, flow: &Flow) -> Option<usize> {
        match &self.cfg.failover {
            Failover::ActiveActive(s) => {
                let n = self.owners.len() as u32;
                let key = match s.by {
                    SplitBy::SourcePort => u32::from(flow.sport),
                    SplitBy::SourceAddress => match flow.saddr {
                        std::net::IpAddr::V4(a) => u32::from(a),
                        std::net::IpAddr::V6(a) => u128::from(a) as u32,
                    },
                };
                self.owners[(key % n) as usize]
            }
            _ => self.target,
        }
    }

    /// Each director's share of the VIP's traffic.
    pub(super) fn shares(&self, directors: usize) -> Vec<f64> {
        let mut out = vec![0.0; directors];
        match &self.cfg.failover {
            Failover::ActiveActive(_) => {
                let n = self.owners.len() as f64;
                for d in self.owners.iter().flatten() {
                    out[*d] += 1.0 / n;
                }
            }
            _ => {
                if let Some(t) = self.target {
                    out[t] = 1.0;
                }
            }
        }
        out
    }

    /// What the group did, for the run's report.
    pub(super) fn report(&self, directors: usize) -> HaReport {
        let active_active = matches!(self.cfg.failover, Failover::ActiveActive(_));
        HaReport {
            failovers: self.failovers.clone(),
            director_faults: self.director_faults.clone(),
            sync: self.sync.as_ref().map(|s| s.report),
            scheduled_by_director: if active_active { self.scheduled.clone() } else { Vec::new() },
            checks: vec![Default::default(); directors],
            ..HaReport::default()
        }
    }
}

impl Simulation {
    /// Runs the group up to now, then applies its view: who holds the VIP, where packets
    /// go, fail-over records; and re-arms its wake-up.
    pub(super) fn run_ha(&mut self) {
        let Some(ha) = self.ha.as_mut() else { return };
        let now = self.now;
        let view = View { dirs: &self.dirs, members: &ha.members };
        ha.group.run_until(now, &view);
        self.apply_ha_view();
    }

    /// Reads the group's state after it ran (or a member changed).
    fn apply_ha_view(&mut self) {
        let now = self.now;
        let Some(ha) = self.ha.as_mut() else { return };
        let transitions = ha.group.take_transitions();
        for (m, &d) in ha.members.iter().enumerate() {
            self.dirs[d].holds = ha.group.holds_vip(m);
        }
        let name = |d: usize| self.cfg.directors[d].name.clone();
        let (changed, from, to) = match &ha.cfg.failover {
            Failover::ActiveActive(_) => {
                let owners: Vec<Option<usize>> = (0..ha.owners.len() as u32)
                    .map(|b| ha.group.block_owner(b).map(|m| ha.members[m]))
                    .collect();
                if owners == ha.owners {
                    (false, None, None)
                } else {
                    // The director that lost blocks, and those that gained some.
                    let count = |o: &[Option<usize>], d: usize| o.iter().filter(|x| **x == Some(d)).count();
                    let lost = ha.members.iter().copied().find(|&d| count(&owners, d) < count(&ha.owners, d));
                    let gained: Vec<String> = ha
                        .members
                        .iter()
                        .copied()
                        .filter(|&d| count(&owners, d) > count(&ha.owners, d))
                        .map(name)
                        .collect();
                    ha.owners = owners;
                    (true, lost.map(name), (!gained.is_empty()).then(|| gained.join(",")))
                }
            }
            _ => {
                let target = ha.group.arp_target().map(|m| ha.members[m]);
                if target == ha.target {
                    (false, None, None)
                } else {
                    let from = ha.target.map(name);
                    ha.target = target;
                    (true, from, target.map(name))
                }
            }
        };
        if changed {
            // The cause: the director fault that led here, else the group's own reason
            // (preemption, ipfail, a returning primary).
            let (cause, gap_s) = match ha.last_fault.take() {
                Some((at, what)) => (what, Some((now - at).as_secs_f64())),
                None => {
                    let why = transitions.last().map_or_else(|| "start".to_owned(), |t| t.cause.clone());
                    (why, None)
                }
            };
            ha.failovers.push(FailoverReport {
                at: now,
                from,
                to,
                cause,
                gap_s,
                lost_conns: 0,
                survived_conns: 0,
            });
        }
        // The group runs until the end of the measured window (its adverts and
        // keepalives would never let the run end); connections draining after it see the
        // group as it was then.
        let next = ha.group.next_time().filter(|&t| t <= self.end);
        if let Some(t) = next
            && ha.armed.is_none_or(|a| t < a)
        {
            ha.armed = Some(t);
            self.queue.push(t.max(now), Event::Ha);
        }
    }

    /// The group's wake-up event.
    pub(super) fn ha_wake(&mut self) {
        let Some(ha) = self.ha.as_mut() else { return };
        if ha.armed.is_some_and(|a| a <= self.now) {
            ha.armed = None;
        }
        self.run_ha();
    }

    /// A director fault or repair.
    pub(super) fn director_event(&mut self, i: usize) {
        let e = self.cfg.director_events[i];
        let now = self.now;
        let d = e.director;
        let kind = match e.change {
            DirectorChange::Down => {
                self.dirs[d].alive = false;
                "down"
            }
            DirectorChange::Up => {
                self.restart_director(d);
                "up"
            }
            DirectorChange::Link(Side::External, up) => {
                self.dirs[d].ext_up = up;
                if up { "external link up" } else { "external link down" }
            }
            DirectorChange::Link(Side::Internal, up) => {
                self.dirs[d].int_up = up;
                if up { "internal link up" } else { "internal link down" }
            }
            // The router's business: the director runs on.
            DirectorChange::Withdraw | DirectorChange::Announce => {
                return self.ecmp_director_event(d, e.change);
            }
        };
        if self.ecmp.as_ref().is_some_and(|t| t.has(d)) {
            // A tier member: it serves while it is alive; the router decides who gets
            // which packets.
            self.dirs[d].holds = self.dirs[d].alive;
            return self.ecmp_director_event(d, e.change);
        }
        let Some(ha) = self.ha.as_mut() else {
            // A lone director: it serves while it is alive.
            self.dirs[d].holds = self.dirs[d].alive;
            return;
        };
        ha.director_faults.push(DirectorFaultReport {
            director: self.cfg.directors[d].name.clone(),
            kind: kind.to_owned(),
            at: now,
        });
        if matches!(e.change, DirectorChange::Down | DirectorChange::Link(_, false)) {
            ha.last_fault = Some((now, format!("{} {kind}", self.cfg.directors[d].name)));
        }
        if let Some(m) = ha.members.iter().position(|&x| x == d) {
            let view = View { dirs: &self.dirs, members: &ha.members };
            match e.change {
                DirectorChange::Down => ha.group.member_down(now, m),
                DirectorChange::Up => ha.group.member_up(now, m, &view),
                DirectorChange::Link(..) => ha.group.link_changed(now, m, &view),
                DirectorChange::Withdraw | DirectorChange::Announce => {
                    unreachable!("validated: tier members only")
                }
            }
            self.apply_ha_view();
        } else {
            self.dirs[d].holds = self.dirs[d].alive;
        }
    }

    /// A connection that had an entry on another director reached `d`, which has a
    /// synced entry for it (`survived`) or none (`lost`): counted on the latest fail-over.
    pub(super) fn note_moved(&mut self, survived: bool) {
        if let Some(f) = self.ha.as_mut().and_then(|h| h.failovers.last_mut()) {
            if survived {
                f.survived_conns += 1;
            } else {
                f.lost_conns += 1;
            }
        }
    }

    /// After an incoming message was counted on director `d`: hand what its sync master
    /// decided to send to its sender, and send the messages that filled up.
    pub(super) fn sync_collect(&mut self, d: usize) {
        let now = self.now;
        let Some(s) = self.ha.as_mut().and_then(|h| h.sync.as_mut()) else { return };
        let Some(sender) = s.senders[d].as_mut() else { return };
        self.dirs[d].ipvs.take_synced(&mut s.buf);
        let mut full = Vec::new();
        for c in s.buf.drain(..) {
            if let Some(msg) = sender.push(now, &c) {
                full.push(msg);
            }
        }
        let flush = sender.next_flush();
        for msg in full {
            self.send_sync(d, msg);
        }
        self.arm_flush(d, flush);
    }

    fn arm_flush(&mut self, d: usize, at: Option<Time>) {
        let Some(s) = self.ha.as_mut().and_then(|h| h.sync.as_mut()) else { return };
        if let Some(t) = at
            && s.flush_armed[d].is_none_or(|a| t < a)
        {
            s.flush_armed[d] = Some(t);
            self.queue.push(t.max(self.now), Event::SyncFlush(d as u16));
        }
    }

    /// A sync sender's flush time came.
    pub(super) fn sync_flush(&mut self, d: usize) {
        let now = self.now;
        let Some(s) = self.ha.as_mut().and_then(|h| h.sync.as_mut()) else { return };
        if s.flush_armed[d].is_some_and(|a| a <= now) {
            s.flush_armed[d] = None;
        }
        let Some(sender) = s.senders[d].as_mut() else { return };
        let msg = if sender.next_flush().is_some_and(|t| t <= now) { sender.flush(now) } else { None };
        let next = sender.next_flush();
        if let Some(msg) = msg {
            self.send_sync(d, msg);
        }
        self.arm_flush(d, next);
    }

    /// Multicasts a sync message from director `d` to the other members: it leaves if
    /// `d` is alive with its internal link up, and each copy arrives after the sync
    /// latency.
    fn send_sync(&mut self, d: usize, msg: Vec<u8>) {
        let now = self.now;
        let dir = &self.dirs[d];
        if !(dir.alive && dir.int_up) {
            return;
        }
        let Some(ha) = self.ha.as_mut() else { return };
        let latency = ha.cfg.sync.map(|c| c.latency).unwrap_or_default();
        let Some(s) = ha.sync.as_mut() else { return };
        s.report.messages += 1;
        s.report.bytes += msg.len() as u64;
        // The header says how many records the sender packed; decoding is the receivers' work.
        s.report.conns += sync::parse_header(&msg).map_or(0, |h| u64::from(h.nr_conns));
        let slot = match s.free.pop() {
            Some(i) => {
                s.inflight[i as usize] = Some((d, msg));
                i
            }
            None => {
                s.inflight.push(Some((d, msg)));
                (s.inflight.len() - 1) as u32
            }
        };
        self.queue.push(now + latency, Event::SyncDeliver(slot));
    }

    /// A sync message arrives at every other member that is alive with its internal
    /// link up.
    pub(super) fn sync_deliver(&mut self, slot: u32) {
        let now = self.now;
        let Some(ha) = self.ha.as_mut() else { return };
        let Some(s) = ha.sync.as_mut() else { return };
        let (from, msg) = s.inflight[slot as usize].take().expect("in-flight sync message");
        s.free.push(slot);
        let Ok(conns) = sync::decode(&msg) else { return };
        for &d in &ha.members {
            let dir = &mut self.dirs[d];
            if d == from || !(dir.alive && dir.int_up) {
                continue;
            }
            for c in &conns {
                if dir.ipvs.apply_sync(now, c).is_ok() {
                    s.report.applied += 1;
                }
            }
        }
    }
}

impl Ha {
    /// Sets director `d`'s sync sysctls, and starts its sync master if it runs one (at
    /// start and after a reboot).
    pub(super) fn configure_sync(&self, d: usize, ipvs: &mut lvs_ipvs::Ipvs) {
        if let (Some(c), Some(s)) = (&self.cfg.sync, &self.sync)
            && self.has(d)
        {
            let params = lvs_ipvs::sync::SyncParams::from(c);
            ipvs.set_sync_params(params);
            if s.senders[d].is_some() {
                ipvs.set_sync_master(Some(params));
            }
        }
    }
}
