//! An ECMP director tier: the router in front of the directors, and what happens to a
//! connection whose packets it sends to another director.
//!
//! ```text
//!                clients
//!                   |
//!               [router]  hash(flow) -> live next hop
//!              /   |   \
//!           dir1  dir2  dir3     each its own IPVS table, no sync
//!              \   |   /
//!            real servers (DR / TUN: replies go straight back)
//! ```
//!
//! The router hashes a packet's flow (`fib_multipath_hash()`: policy 0 the addresses,
//! policy 1 also the protocol and ports) to 31 bits and picks a next hop by
//! hash-threshold (`fib_select_multipath()` over the ranges `fib_rebalance()` computes)
//! or by a resilient group's buckets (`nexthop_select_path_res()`, buckets assigned as
//! `nh_res_group_rebalance()`/`nh_res_table_upkeep()` do). Linux keys its hash with a
//! random per-boot key (siphash); the model uses a seeded 64-bit mix, which is as uniform
//! and reproducible. A dead member stays in the group until the router notices
//! (`EcmpConfig::detection`): packets hashed to it are lost meanwhile.

use lvs_sched::{Flow, Time};

use super::breakdown::Outcome;
use super::flow::Msg;
use super::{Event, NO_ENTRY, Simulation};
use crate::model::config::{DirectorChange, EcmpConfig, HashPolicy, NexthopSelection};
use crate::model::report::{EcmpChange, EcmpReport, MhAddition};
use lvs_ipvs::{NoDest, Verdict};

/// The router's group of next hops.
#[derive(Clone, Debug)]
pub struct Router {
    policy: HashPolicy,
    key: u64,
    /// Each member is in the group (announced, and not known dead).
    in_group: Vec<bool>,
    pick: Pick,
}

#[derive(Clone, Debug)]
enum Pick {
    /// Each member's upper bound of the 31-bit hash (`fib_nh_upper_bound`), -1 if out.
    Threshold(Vec<i64>),
    /// The member of each bucket (`None`: unoccupied).
    Resilient(Vec<Option<u16>>),
}

/// `DIV_ROUND_CLOSEST` for non-negative operands.
fn div_round_closest(n: u64, d: u64) -> u64 {
    (n + d / 2) / d
}

/// `fib_rebalance()` with weight 1 each: the upper bound of each live next hop's range.
pub fn threshold_bounds(in_group: &[bool]) -> Vec<i64> {
    let total = in_group.iter().filter(|&&b| b).count() as u64;
    let mut w = 0;
    in_group
        .iter()
        .map(|&live| {
            if !live {
                return -1;
            }
            w += 1;
            div_round_closest(w << 31, total) as i64 - 1
        })
        .collect()
}

/// `fib_select_multipath()`: the first live next hop whose upper bound is at least the
/// hash.
pub fn threshold_select(bounds: &[i64], hash: u32) -> Option<usize> {
    bounds.iter().position(|&b| b >= 0 && i64::from(hash) <= b)
}

/// Resilient buckets after the group became `in_group` (`nh_res_table_migrate_buckets()`,
/// `nh_res_group_rebalance()`, `nh_res_table_upkeep()`): a bucket of a member that left
/// is unoccupied and must move; a bucket of a member over its share moves too (the
/// kernel waits until the bucket is idle for `idle_timer`; the model moves it at once);
/// each goes to the first member of the under-weight list, which the kernel builds by
/// adding at its head, so the last under-weight member in group order comes first.
pub fn resilient_rebalance(buckets: &mut [Option<u16>], in_group: &[bool]) {
    let n = buckets.len() as u64;
    for b in buckets.iter_mut() {
        if b.is_some_and(|m| !in_group[usize::from(m)]) {
            *b = None;
        }
    }
    let mut count = vec![0u64; in_group.len()];
    for m in buckets.iter().flatten() {
        count[usize::from(*m)] += 1;
    }
    let total = in_group.iter().filter(|&&b| b).count() as u64;
    let (mut w, mut prev) = (0, 0);
    let mut wants = vec![0u64; in_group.len()];
    let mut under = Vec::new();
    for (m, _) in in_group.iter().enumerate().filter(|(_, live)| **live) {
        w += 1;
        let upper = div_round_closest(n * w, total);
        wants[m] = upper - prev;
        prev = upper;
        if count[m] < wants[m] {
            under.insert(0, m);
        }
    }
    for b in buckets.iter_mut() {
        let migrate = match *b {
            None => true,
            Some(m) => count[usize::from(m)] > wants[usize::from(m)],
        };
        if !migrate {
            continue;
        }
        let Some(&to) = under.first() else { break };
        if let Some(m) = *b {
            count[usize::from(m)] -= 1;
        }
        *b = Some(to as u16);
        count[to] += 1;
        if count[to] == wants[to] {
            under.remove(0);
        }
    }
}

impl Router {
    /// A router over `members` next hops, those in `in_group` announced; `key` seeds the
    /// hash.
    pub fn new(policy: HashPolicy, selection: NexthopSelection, in_group: Vec<bool>, key: u64) -> Router {
        let pick = match selection {
            NexthopSelection::HashThreshold => Pick::Threshold(threshold_bounds(&in_group)),
            NexthopSelection::Resilient { buckets } => {
                let mut b = vec![None; usize::from(buckets)];
                resilient_rebalance(&mut b, &in_group);
                Pick::Resilient(b)
            }
        };
        Router { policy, key, in_group, pick }
    }

    /// The flow's 31-bit hash (`fib_multipath_hash() >> 1` in the kernel's terms).
    pub fn hash(&self, flow: &Flow) -> u32 {
        let addr = |a: std::net::IpAddr| match a {
            std::net::IpAddr::V4(v) => u64::from(u32::from(v)),
            std::net::IpAddr::V6(v) => {
                let x = u128::from(v);
                (x as u64) ^ ((x >> 64) as u64).rotate_left(17)
            }
        };
        let mut h = mix(self.key ^ addr(flow.saddr));
        h = mix(h ^ addr(flow.daddr));
        if self.policy == HashPolicy::L3L4 {
            let l4 = (u64::from(flow.protocol.number()) << 32)
                | (u64::from(flow.sport) << 16)
                | u64::from(flow.dport);
            h = mix(h ^ l4);
        }
        (h >> 33) as u32
    }

    /// The member a flow's packets go to now; `None` if the group is empty.
    pub fn select(&self, flow: &Flow) -> Option<usize> {
        self.member_of(self.hash(flow))
    }

    fn member_of(&self, hash: u32) -> Option<usize> {
        match &self.pick {
            Pick::Threshold(bounds) => threshold_select(bounds, hash),
            Pick::Resilient(b) => b[hash as usize % b.len()].map(usize::from),
        }
    }

    /// Member `m` joins (`true`) or leaves the group; returns the share of the hash space
    /// whose next hop changed.
    pub fn set_member(&mut self, m: usize, in_group: bool) -> f64 {
        if self.in_group[m] == in_group {
            return 0.0;
        }
        self.in_group[m] = in_group;
        match &mut self.pick {
            Pick::Threshold(bounds) => {
                let old = std::mem::replace(bounds, threshold_bounds(&self.in_group));
                moved_share(&old, bounds)
            }
            Pick::Resilient(b) => {
                let old = b.clone();
                resilient_rebalance(b, &self.in_group);
                let moved = old.iter().zip(b.iter()).filter(|(x, y)| x != y).count();
                moved as f64 / b.len() as f64
            }
        }
    }

    /// Member `m` is in the group.
    pub fn in_group(&self, m: usize) -> bool {
        self.in_group[m]
    }
}

/// The share of the 31-bit hash space whose next hop differs between two sets of
/// hash-threshold bounds.
fn moved_share(old: &[i64], new: &[i64]) -> f64 {
    // Both partitions are ordered ranges: walk their common refinement.
    let mut cuts: Vec<i64> = old.iter().chain(new).copied().filter(|&b| b >= 0).collect();
    cuts.sort_unstable();
    cuts.dedup();
    let (mut lo, mut moved) = (0i64, 0i64);
    for hi in cuts {
        let h = hi as u32;
        if threshold_select(old, h) != threshold_select(new, h) {
            moved += hi - lo + 1;
        }
        lo = hi + 1;
    }
    moved as f64 / (1u64 << 31) as f64
}

/// The 64-bit finaliser of MurmurHash3 (a bijection with full avalanche).
fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// Most flows an mh addition is looked up over.
const MH_PROBE_FLOWS: u32 = 100_000;

/// An mh service's lookups before a real server is added.
pub(super) struct MhProbe {
    flows: Vec<Flow>,
    picks: Vec<Option<lvs_sched::DestId>>,
    table: Vec<Option<lvs_sched::DestId>>,
    servers_before: u32,
}

/// The real servers a service picks for `flows` (on a copy: the run's state is left as
/// it is).
fn picks(svc: &lvs_sched::Service, now: Time, flows: &[Flow]) -> Vec<Option<lvs_sched::DestId>> {
    let mut copy = svc.clone();
    flows.iter().map(|f| copy.schedule(now, f)).collect()
}

/// The tier in a run: the router, and what happened to connections it moved.
pub(super) struct Tier {
    members: Vec<usize>,
    detection: lvs_sched::Duration,
    router: Router,
    pub(super) report: EcmpReport,
    /// Connections (slot, serial) that lost a message at a dead member.
    lost_at_dead: std::collections::BTreeSet<(u32, u32)>,
}

impl Tier {
    pub(super) fn new(cfg: &crate::model::ClusterConfig, e: &EcmpConfig, key: u64) -> Tier {
        let in_group = e.members.iter().map(|m| !e.standby.contains(m)).collect();
        let router = Router::new(e.policy, e.selection, in_group, key);
        let report = EcmpReport {
            members: e.members.iter().map(|&m| cfg.directors[m].name.clone()).collect(),
            policy: match e.policy {
                HashPolicy::L3 => "l3",
                HashPolicy::L3L4 => "l3l4",
            }
            .to_owned(),
            selection: match e.selection {
                NexthopSelection::HashThreshold => "hash-threshold".to_owned(),
                NexthopSelection::Resilient { buckets } => format!("resilient ({buckets} buckets)"),
            },
            scheduled_by_director: vec![0; e.members.len()],
            ..EcmpReport::default()
        };
        Tier {
            members: e.members.clone(),
            detection: e.detection,
            router,
            report,
            lost_at_dead: Default::default(),
        }
    }

    /// Director `d` is a member.
    pub(super) fn has(&self, d: usize) -> bool {
        self.members.contains(&d)
    }

    /// The director a flow's packets reach now, `None` if no member is in the group.
    pub(super) fn route(&self, flow: &Flow) -> Option<usize> {
        self.router.select(flow).map(|m| self.members[m])
    }

    /// Director `d`, if a member, scheduled a connection's first packet.
    pub(super) fn count_scheduled(&mut self, d: usize) {
        if let Some(m) = self.members.iter().position(|&x| x == d) {
            self.report.scheduled_by_director[m] += 1;
        }
    }

    /// Member `m` (director `name`) joins or leaves the router's group at `at`.
    fn change(&mut self, at: Time, m: usize, join: bool, what: &str, name: String) {
        let moved_share = self.router.set_member(m, join);
        self.report.changes.push(EcmpChange { at, director: name, what: what.to_owned(), moved_share });
    }
}

impl Simulation {
    /// A director event on a tier member: the router's view changes at once (withdraw,
    /// announce, boot) or after the detection time (death).
    pub(super) fn ecmp_director_event(&mut self, d: usize, change: DirectorChange) {
        let now = self.now;
        let name = self.cfg.directors[d].name.clone();
        let Some(t) = self.ecmp.as_mut() else { return };
        let Some(m) = t.members.iter().position(|&x| x == d) else { return };
        match change {
            DirectorChange::Down | DirectorChange::Link(crate::ha::Side::External, false) => {
                let at = now + t.detection;
                self.queue.push(at, Event::EcmpDetect(m as u16));
            }
            DirectorChange::Withdraw => t.change(now, m, false, "withdrawn", name),
            DirectorChange::Announce => t.change(now, m, true, "announced", name),
            // A director that boots (or whose link comes back) announces again, if the
            // router had taken it out.
            DirectorChange::Up | DirectorChange::Link(crate::ha::Side::External, true) => {
                if !t.router.in_group(m) && self.dirs[d].alive && self.dirs[d].ext_up {
                    t.change(now, m, true, "back", name);
                }
            }
            DirectorChange::Link(crate::ha::Side::Internal, _) => {}
        }
    }

    /// The router's detection time after a member's death ran out.
    pub(super) fn ecmp_detect(&mut self, m: usize) {
        let now = self.now;
        let Some(t) = self.ecmp.as_mut() else { return };
        let d = t.members[m];
        let dir = &self.dirs[d];
        if (dir.alive && dir.ext_up) || !t.router.in_group(m) {
            return;
        }
        let name = self.cfg.directors[d].name.clone();
        t.change(now, m, false, "dead (detected)", name);
    }

    /// A mid-connection TCP segment of `m`'s connection reached director `m.dir`, which
    /// has no entry for it (`moved`: another director scheduled it). Without
    /// `sloppy_tcp` the director's stack resets it; with it IPVS schedules the segment:
    /// to the connection's own real server it goes on (the entry adopted), to another
    /// one that server has no socket and resets it.
    pub(super) fn segment_without_entry(&mut self, m: &Msg, flow: &Flow, moved: bool) -> Result<(), Outcome> {
        let (now, di) = (self.now, m.dir as usize);
        let fwmark = self.cfg.populations[self.conns[m.conn as usize].pop as usize].fwmark;
        // A segment after the client settled the connection (its last ACK, a reset) is
        // no broken connection.
        let settled = self.conns[m.conn as usize].done;
        let tier = moved && !settled && self.ecmp.as_ref().is_some_and(|t| t.has(di));
        let r = self.dirs[di].ipvs.schedule_segment(now, flow, m.kind.segment(), fwmark);
        let s = match r {
            Err(NoDest::NotNew) if moved => {
                if tier && let Some(t) = self.ecmp.as_mut() {
                    t.report.reset_by_director += 1;
                }
                self.note_moved(false);
                return Err(Outcome::Lost);
            }
            Err(_) => return Err(Outcome::Refused),
            Ok(s) if s.verdict == Verdict::Drop => return Err(Outcome::Dropped),
            Ok(s) => s,
        };
        let dir = &mut self.dirs[di];
        if let Some(id) = s.conn {
            dir.ipvs.count(id, false, u64::from(m.packets), m.bytes);
        }
        let server = dir.dest_server[s.service.0 as usize][s.dest_id.0 as usize];
        let conn = &mut self.conns[m.conn as usize];
        let same = server == conn.server;
        if same {
            conn.ipvs = s.conn.unwrap_or(NO_ENTRY);
            conn.dir = di as u8;
            conn.fwd = s.fwd;
        }
        if tier && let Some(t) = self.ecmp.as_mut() {
            if same {
                t.report.survived_by_rescheduling += 1;
            } else {
                t.report.reset_by_server += 1;
            }
        }
        if moved {
            self.note_moved(same);
        }
        if same { Ok(()) } else { Err(if moved { Outcome::Lost } else { Outcome::Refused }) }
    }

    /// Before action `a` restores a real server of a tier member's mh service: that
    /// service's picks for the scenario's flows (each client address of the populations
    /// that use it, at the first source port) and its table.
    pub(super) fn mh_probe(&self, a: &crate::model::Action) -> Option<MhProbe> {
        let tier = self.ecmp.as_ref()?;
        if !tier.has(a.director) || !matches!(a.change, crate::model::Change::Restore(_)) {
            return None;
        }
        let key = self.dirs[a.director].keys[a.service];
        let svc = self.dirs[a.director].ipvs.service(&key)?.scheduler();
        if svc.scheduler() != lvs_sched::SchedulerKind::Mh {
            return None;
        }
        let mut flows = Vec::new();
        for (p, pc) in self.cfg.populations.iter().enumerate() {
            if self.cfg.service_of(pc).map(|(_, s)| s) != Some(a.service) || !tier.has(self.pops[p].dir) {
                continue;
            }
            for i in 0..pc.clients.min(MH_PROBE_FLOWS) {
                flows.push(Flow {
                    protocol: pc.protocol(),
                    saddr: super::flow::client_addr(pc.first_client, i),
                    sport: super::EPHEMERAL_FIRST,
                    daddr: pc.vip,
                    dport: pc.port,
                });
            }
        }
        Some(MhProbe {
            picks: picks(svc, self.now, &flows),
            flows,
            table: svc.lookup_table().unwrap_or_default(),
            servers_before: svc.num_dests() as u32,
        })
    }

    /// After the action `mh_probe` saw: how many flows and slots changed server.
    pub(super) fn mh_added(&mut self, a: &crate::model::Action, probe: MhProbe) {
        let key = self.dirs[a.director].keys[a.service];
        let Some(vs) = self.dirs[a.director].ipvs.service(&key) else { return };
        let svc = vs.scheduler();
        if svc.num_dests() as u32 == probe.servers_before {
            return; // the kernel refused it (the server was there already)
        }
        let after = picks(svc, self.now, &probe.flows);
        let table = svc.lookup_table().unwrap_or_default();
        let moved = |x: &[Option<lvs_sched::DestId>], y: &[Option<lvs_sched::DestId>]| {
            x.iter().zip(y).filter(|(a, b)| a != b).count() as u64
        };
        let addition = MhAddition {
            at: self.now,
            director: self.cfg.directors[a.director].name.clone(),
            server: self.cfg.servers[a.server].name.clone(),
            servers_before: probe.servers_before,
            flows: probe.flows.len() as u64,
            flows_moved: moved(&probe.picks, &after),
            slots_moved: moved(&probe.table, &table),
            slots: table.len() as u64,
        };
        if let Some(t) = self.ecmp.as_mut() {
            t.report.mh_additions.push(addition);
        }
    }

    /// A message of connection `c` was lost at a dead tier member `d`.
    pub(super) fn ecmp_lost_at(&mut self, d: usize, c: u32) {
        let serial = self.conns[c as usize].serial;
        if let Some(t) = self.ecmp.as_mut()
            && t.has(d)
        {
            t.lost_at_dead.insert((c, serial));
        }
    }

    /// Connection `c` ends: counted if it failed after losing a message at a dead member.
    pub(super) fn ecmp_conn_ended(&mut self, c: u32, failed: bool) {
        let serial = self.conns[c as usize].serial;
        if let Some(t) = self.ecmp.as_mut()
            && t.lost_at_dead.remove(&(c, serial))
            && failed
        {
            t.report.lost_at_dead_director += 1;
        }
    }
}

#[cfg(test)]
mod tests;
