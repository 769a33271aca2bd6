//! Property tests of the schedulers against `/work/shared/ipvs/SPEC.md` §1.
//!
//! Every expected value is derived here from the SPEC's rules (weight ratios, list order,
//! exact rational comparisons, a pointer model of rr), never read back from the crate's
//! own scheduler code. Each property names the SPEC section it checks.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::collections::BTreeMap;
use std::collections::VecDeque;

use lvs_sched::{
    ConnCount, Dest, DestConfig, DestId, Duration, Flow, Forwarding, Protocol, SchedulerKind, Service,
    SvcFlags, Time,
};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

// ---------------------------------------------------------------------------------------
// Building blocks
// ---------------------------------------------------------------------------------------

/// Address of real server `i` (i < 250).
fn rip(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, u8::try_from(i + 1).expect("server index below 255")))
}

fn cfg(i: usize, weight: u32, u_threshold: u32) -> DestConfig {
    DestConfig { weight, u_threshold, ..DestConfig::new(rip(i), 80, Forwarding::DirectRouting) }
}

/// A flow drawn from small address pools (so caches and hash buckets get hit again) or
/// from the whole address space.
#[derive(Clone, Copy, Debug)]
struct FlowSpec {
    saddr: u32,
    daddr: u32,
    sport: u16,
    protocol: Protocol,
}

impl FlowSpec {
    fn flow(self) -> Flow {
        Flow {
            protocol: self.protocol,
            saddr: IpAddr::V4(Ipv4Addr::from(0xC0A8_0000_u32.wrapping_add(self.saddr))),
            sport: self.sport,
            daddr: IpAddr::V4(Ipv4Addr::from(0xAC10_0000_u32.wrapping_add(self.daddr))),
            dport: 80,
        }
    }
}

fn flow_spec() -> impl Strategy<Value = FlowSpec> {
    let addr = || prop_oneof![3 => 0..16u32, 1 => any::<u32>()];
    let protocol = prop_oneof![Just(Protocol::Tcp), Just(Protocol::Udp), Just(Protocol::Sctp)];
    (addr(), addr(), any::<u16>(), protocol).prop_map(|(saddr, daddr, sport, protocol)| FlowSpec {
        saddr,
        daddr,
        sport,
        protocol,
    })
}

/// Weights 0..=20 with plenty of quiescent servers.
fn weight_with_zeros() -> BoxedStrategy<u32> {
    prop_oneof![1 => Just(0u32), 2 => 1..=20u32].boxed()
}

fn conn_count() -> impl Strategy<Value = ConnCount> {
    prop_oneof![3 => Just(ConnCount::Active), 3 => Just(ConnCount::Inactive), 1 => Just(ConnCount::Template)]
}

/// How the test binds a pick: as a new connection the table would create, or not at all.
fn bind_pick() -> impl Strategy<Value = Option<ConnCount>> {
    prop_oneof![Just(Some(ConnCount::Active)), Just(Some(ConnCount::Inactive)), Just(None)]
}

fn svc_flags() -> impl Strategy<Value = u32> {
    prop::sample::select(vec![0, SvcFlags::SCHED1, SvcFlags::SCHED2, SvcFlags::SCHED1 | SvcFlags::SCHED2])
}

/// One real server of a generated service.
#[derive(Clone, Copy, Debug)]
struct ServerSpec {
    weight: u32,
    u_threshold: u32,
    active: u32,
    inactive: u32,
}

/// A generated service: its servers (added in this order), flags, twos seed, and whether
/// the scheduler is bound after the servers exist (`ipvsadm -E -s`) or before.
#[derive(Clone, Debug)]
struct Setup {
    servers: Vec<ServerSpec>,
    flags: u32,
    seed: u64,
    late_bind: bool,
}

fn setup(weight: BoxedStrategy<u32>, threshold: BoxedStrategy<u32>) -> impl Strategy<Value = Setup> {
    let server =
        (weight, threshold, 0..=6u32, 0..=6u32).prop_map(|(weight, u_threshold, active, inactive)| {
            ServerSpec { weight, u_threshold, active, inactive }
        });
    (prop::collection::vec(server, 1..=8), svc_flags(), any::<u64>(), any::<bool>())
        .prop_map(|(servers, flags, seed, late_bind)| Setup { servers, flags, seed, late_bind })
}

/// What happens to the service between two scheduling decisions.
#[derive(Clone, Copy, Debug)]
enum Op {
    /// A new connection: schedule it, then bind the pick (or not).
    Schedule(FlowSpec, Option<ConnCount>),
    /// `ipvsadm -e` with a new weight (thresholds unchanged).
    Edit { server: usize, weight: u32 },
    /// Some other connection got bound to the server.
    Bind { server: usize, count: ConnCount },
    /// A connection of the server expired.
    Unbind { server: usize },
    /// `ipvsadm -d`.
    Delete { server: usize },
    /// `ipvsadm -a` of a deleted server, with a new weight.
    Readd { server: usize, weight: u32 },
    /// Virtual time passes (lblc/lblcr collection, lblcr set shrinking).
    Advance { secs: u64 },
}

fn op(weight: BoxedStrategy<u32>) -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => (flow_spec(), bind_pick()).prop_map(|(f, b)| Op::Schedule(f, b)),
        2 => (0..8usize, weight.clone()).prop_map(|(server, weight)| Op::Edit { server, weight }),
        3 => (0..8usize, conn_count()).prop_map(|(server, count)| Op::Bind { server, count }),
        3 => (0..8usize).prop_map(|server| Op::Unbind { server }),
        1 => (0..8usize).prop_map(|server| Op::Delete { server }),
        1 => (0..8usize, weight).prop_map(|(server, weight)| Op::Readd { server, weight }),
        1 => (0..8 * 3600u64).prop_map(|secs| Op::Advance { secs }),
    ]
}

/// A service under test and the configuration the test gave it.
struct Sim {
    svc: Service,
    ids: Vec<DestId>,
    cfgs: Vec<DestConfig>,
    now: Time,
}

impl Sim {
    fn build(kind: SchedulerKind, setup: &Setup) -> Sim {
        let first = if setup.late_bind { SchedulerKind::Rr } else { kind };
        let mut svc = Service::new(first, SvcFlags(setup.flags), setup.seed, Time::ZERO);
        let mut ids = Vec::new();
        let mut cfgs = Vec::new();
        for (i, s) in setup.servers.iter().enumerate() {
            let c = cfg(i, s.weight, s.u_threshold);
            let id = svc.add_dest(&c).expect("fresh server");
            for _ in 0..s.active {
                svc.bind(id, ConnCount::Active);
            }
            for _ in 0..s.inactive {
                svc.bind(id, ConnCount::Inactive);
            }
            ids.push(id);
            cfgs.push(c);
        }
        if setup.late_bind {
            svc.set_scheduler(kind, Time::ZERO);
        }
        Sim { svc, ids, cfgs, now: Time::ZERO }
    }

    /// Applies `op`; `check` sees every scheduling decision before its pick is bound.
    fn apply(
        &mut self,
        op: Op,
        check: &mut impl FnMut(&Service, &Flow, Option<DestId>) -> Result<(), TestCaseError>,
    ) -> Result<(), TestCaseError> {
        let n = self.ids.len();
        match op {
            Op::Schedule(fs, bind) => {
                let flow = fs.flow();
                let pick = self.svc.schedule(self.now, &flow);
                check(&self.svc, &flow, pick)?;
                if let (Some(id), Some(count)) = (pick, bind) {
                    self.svc.bind(id, count);
                }
            }
            Op::Edit { server, weight } => {
                let i = server % n;
                if self.svc.dest(self.ids[i]).is_available() {
                    self.cfgs[i].weight = weight;
                    prop_assert_eq!(self.svc.edit_dest(&self.cfgs[i]), Ok(self.ids[i]));
                }
            }
            Op::Bind { server, count } => self.svc.bind(self.ids[server % n], count),
            Op::Unbind { server } => {
                let id = self.ids[server % n];
                let d = self.svc.dest(id);
                if d.active_conns() > 0 {
                    self.svc.unbind(id, ConnCount::Active);
                } else if d.inactive_conns() > 0 {
                    self.svc.unbind(id, ConnCount::Inactive);
                } else if d.persist_conns() > 0 {
                    self.svc.unbind(id, ConnCount::Template);
                }
            }
            Op::Delete { server } => {
                let i = server % n;
                if self.svc.dest(self.ids[i]).is_available() {
                    prop_assert_eq!(self.svc.del_dest(self.cfgs[i].addr, 80), Ok(self.ids[i]));
                }
            }
            Op::Readd { server, weight } => {
                let i = server % n;
                if !self.svc.dest(self.ids[i]).is_available() {
                    self.cfgs[i].weight = weight;
                    // Resurrected from the trash: the same handle.
                    prop_assert_eq!(self.svc.add_dest(&self.cfgs[i]), Ok(self.ids[i]));
                }
            }
            Op::Advance { secs } => self.now += Duration::from_secs(secs),
        }
        Ok(())
    }
}

/// `!ovl(d) && d.weight > 0` (SPEC §1.1).
fn usable(d: &Dest) -> bool {
    d.weight() > 0 && !d.is_overloaded()
}

fn list_ids(svc: &Service) -> Vec<DestId> {
    svc.dests().map(|(id, _)| id).collect()
}

/// `ip_vs_dest_conn_overhead()` per SPEC §1.1: `active * 256 + inactive`.
fn overhead(d: &Dest) -> u64 {
    u64::from(d.active_conns()) * 256 + u64::from(d.inactive_conns())
}

/// The first candidate, in list order, with the least `num / den` (exact: `a/b < c/d`
/// iff `a*d < c*b` for positive denominators). Later candidates win only when strictly
/// smaller, so ties go to the first in list order.
fn argmin_ratio(candidates: impl Iterator<Item = (DestId, u64, u64)>) -> Option<DestId> {
    let mut best: Option<(DestId, u64, u64)> = None;
    for (id, num, den) in candidates {
        assert!(den > 0);
        let better = match best {
            None => true,
            Some((_, bn, bd)) => u128::from(num) * u128::from(bd) < u128::from(bn) * u128::from(den),
        };
        if better {
            best = Some((id, num, den));
        }
    }
    best.map(|(id, _, _)| id)
}

/// The first candidate, in list order, with the highest weight.
fn argmax_weight<'a>(candidates: impl Iterator<Item = (DestId, &'a Dest)>) -> Option<DestId> {
    let mut best: Option<(DestId, u32)> = None;
    for (id, d) in candidates {
        if best.is_none_or(|(_, w)| d.weight() > w) {
            best = Some((id, d.weight()));
        }
    }
    best.map(|(id, _)| id)
}

/// What SPEC §1.4–§1.9 says lc, wlc, sed, nq, fo and ovf pick.
fn expected_pick(kind: SchedulerKind, svc: &Service) -> Option<DestId> {
    let usable = || svc.dests().filter(|(_, d)| usable(d));
    let active_plus_one = |d: &Dest| u64::from(d.active_conns()) + 1;
    match kind {
        SchedulerKind::Lc => argmin_ratio(usable().map(|(id, d)| (id, overhead(d), 1))),
        SchedulerKind::Wlc => argmin_ratio(usable().map(|(id, d)| (id, overhead(d), u64::from(d.weight())))),
        SchedulerKind::Sed => {
            argmin_ratio(usable().map(|(id, d)| (id, active_plus_one(d), u64::from(d.weight()))))
        }
        SchedulerKind::Nq => usable().find(|(_, d)| d.active_conns() == 0).map(|(id, _)| id).or_else(|| {
            argmin_ratio(usable().map(|(id, d)| (id, active_plus_one(d), u64::from(d.weight()))))
        }),
        SchedulerKind::Fo => argmax_weight(usable()),
        SchedulerKind::Ovf => argmax_weight(usable().filter(|(_, d)| d.active_conns() <= d.weight())),
        other => unreachable!("no closed form for {other}"),
    }
}

/// Every scheduler that returns `None` only when no linked server is usable: all but the
/// hashing ones (a flow hashes to one bucket) and ovf (its own active <= weight cap).
fn work_conserving(kind: SchedulerKind) -> bool {
    !matches!(kind, SchedulerKind::Sh | SchedulerKind::Dh | SchedulerKind::Mh | SchedulerKind::Ovf)
}

/// splitmix64, for many pseudo-random client addresses from one generated seed.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// wrr's period: each server's share `w / gcd` of the positive weights.
fn wrr_shares(weights: &[u32]) -> Vec<u32> {
    let g = weights.iter().copied().filter(|&w| w > 0).fold(0, gcd);
    weights.iter().map(|&w| w.checked_div(g).unwrap_or(0)).collect()
}

/// How often each of `ids` occurs in `picks`.
fn counts(ids: &[DestId], picks: &[Option<DestId>]) -> Vec<u32> {
    ids.iter().map(|id| picks.iter().filter(|p| **p == Some(*id)).count() as u32).collect()
}

// ---------------------------------------------------------------------------------------
// Properties over every scheduler
// ---------------------------------------------------------------------------------------

proptest! {
    /// SPEC §1.1: weight 0 is quiescent: no scheduler returns such a server for a new
    /// connection, whatever the load, the history (edits to 0 after mh built its table
    /// from `last_weight`, lblc/lblcr cache entries made while the weight was positive,
    /// deletions and re-adds) or the flow. Nor does any return a deleted server.
    #[test]
    fn quiescent_server_never_gets_a_new_connection(
        setup in setup(weight_with_zeros(), prop_oneof![3 => Just(0u32), 1 => 1..=8u32].boxed()),
        ops in prop::collection::vec(op(weight_with_zeros()), 1..60),
    ) {
        for kind in SchedulerKind::ALL {
            let mut sim = Sim::build(kind, &setup);
            let mut check = |svc: &Service, flow: &Flow, pick: Option<DestId>| {
                if let Some(id) = pick {
                    let d = svc.dest(id);
                    prop_assert!(d.weight() > 0, "{kind}: picked quiescent {d} for {flow:?}");
                    prop_assert!(d.is_available(), "{kind}: picked deleted {d} for {flow:?}");
                }
                Ok(())
            };
            for &op in &ops {
                sim.apply(op, &mut check)?;
            }
        }
    }

    /// SPEC §1.1: OVERLOAD (set when `active + inactive` reaches the upper threshold at
    /// bind, cleared on unbind below the lower one) makes every scheduler skip the server.
    ///
    /// lblc is the exception: its cache-hit path checks AVAILABLE, weight and lblc's own
    /// `is_overloaded()` but not the OVERLOAD flag (SPEC §1.13), so a flagged server can
    /// keep the destination addresses cached for it. For lblc the test checks exactly that
    /// much: a flagged server is returned only for a daddr whose previous pick it was
    /// (the cache entry always names the last server returned for its daddr), i.e. never
    /// by the wlc fallback. lblcr is *not* exempt: its cache hit goes through `set_min()`,
    /// which skips OVERLOAD members, and its fallback is wlc (SPEC §1.14).
    #[test]
    fn overloaded_server_is_skipped(
        setup in setup(weight_with_zeros(), prop_oneof![1 => Just(0u32), 2 => 1..=6u32].boxed()),
        ops in prop::collection::vec(op(weight_with_zeros()), 1..60),
    ) {
        for kind in SchedulerKind::ALL {
            let mut sim = Sim::build(kind, &setup);
            let mut last_pick: BTreeMap<IpAddr, DestId> = BTreeMap::new();
            let mut check = |svc: &Service, flow: &Flow, pick: Option<DestId>| {
                if let Some(id) = pick {
                    let d = svc.dest(id);
                    if kind == SchedulerKind::Lblc {
                        if d.is_overloaded() {
                            prop_assert_eq!(
                                last_pick.get(&flow.daddr), Some(&id),
                                "lblc: overloaded {} picked for {:?} by the wlc fallback", d, flow
                            );
                        }
                        last_pick.insert(flow.daddr, id);
                    } else {
                        prop_assert!(!d.is_overloaded(), "{kind}: picked overloaded {d} for {flow:?}");
                    }
                }
                Ok(())
            };
            for &op in &ops {
                sim.apply(op, &mut check)?;
            }
        }
    }

    /// SPEC §1.2–§1.10, §1.13, §1.14: every scheduler that is not a hash or ovf finds a
    /// server whenever one is linked, has weight > 0 and is not overloaded; ovf finds one
    /// whenever such a server also has `active <= weight`.
    #[test]
    fn no_destination_only_when_none_is_usable(
        setup in setup(weight_with_zeros(), prop_oneof![1 => Just(0u32), 1 => 1..=6u32].boxed()),
        ops in prop::collection::vec(op(weight_with_zeros()), 1..60),
    ) {
        for kind in SchedulerKind::ALL.into_iter().filter(|&k| work_conserving(k) || k == SchedulerKind::Ovf) {
            let mut sim = Sim::build(kind, &setup);
            let mut check = |svc: &Service, flow: &Flow, pick: Option<DestId>| {
                if pick.is_none() {
                    let eligible = svc.dests().find(|(_, d)| {
                        usable(d) && (kind != SchedulerKind::Ovf || d.active_conns() <= d.weight())
                    });
                    prop_assert!(
                        eligible.is_none(),
                        "{kind}: no destination for {flow:?} though {} is eligible", eligible.unwrap().1
                    );
                }
                Ok(())
            };
            for &op in &ops {
                sim.apply(op, &mut check)?;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// wrr
// ---------------------------------------------------------------------------------------

proptest! {
    /// SPEC §1.3: bound to an existing list (`ipvsadm -E -s wrr`, `cw = mw`), the very
    /// first period of `Σ w/gcd` picks gives each server exactly `w/gcd` picks, and so
    /// does every following period.
    #[test]
    fn wrr_period_follows_weights_from_init(weights in prop::collection::vec(0..=20u32, 1..=8)) {
        let mut svc = Service::new(SchedulerKind::Rr, SvcFlags(0), 0, Time::ZERO);
        let ids: Vec<DestId> =
            weights.iter().enumerate().map(|(i, &w)| svc.add_dest(&cfg(i, w, 0)).unwrap()).collect();
        svc.set_scheduler(SchedulerKind::Wrr, Time::ZERO);
        let shares = wrr_shares(&weights);
        let period: u32 = shares.iter().sum();
        if period == 0 {
            prop_assert_eq!(svc.schedule(Time::ZERO, &FlowSpec { saddr: 0, daddr: 0, sport: 1, protocol: Protocol::Tcp }.flow()), None);
            return Ok(());
        }
        let flow = FlowSpec { saddr: 0, daddr: 0, sport: 1, protocol: Protocol::Tcp }.flow();
        for round in 0..3 {
            let picks: Vec<Option<DestId>> = (0..period).map(|_| svc.schedule(Time::ZERO, &flow)).collect();
            prop_assert!(picks.iter().all(Option::is_some), "round {}: {:?}", round, picks);
            prop_assert_eq!(counts(&ids, &picks), shares.clone(), "round {}: {:?}", round, picks);
        }
    }

    /// SPEC §1.3: however the state got there (servers added one by one, picks, edits
    /// that reset `cl` and adjust `cw`), after at most one partial round the picks are
    /// periodic: every window of `Σ w/gcd` consecutive picks holds exactly `w/gcd` of each
    /// server.
    #[test]
    fn wrr_steady_state_windows_follow_weights(
        weights in prop::collection::vec(0..=20u32, 1..=8),
        warmup in 0..40usize,
        edits in prop::collection::vec((0..8usize, 0..=20u32, 0..10usize), 0..4),
    ) {
        let mut weights = weights;
        let flow = FlowSpec { saddr: 0, daddr: 0, sport: 1, protocol: Protocol::Tcp }.flow();
        let mut svc = Service::new(SchedulerKind::Wrr, SvcFlags(0), 0, Time::ZERO);
        let ids: Vec<DestId> =
            weights.iter().enumerate().map(|(i, &w)| svc.add_dest(&cfg(i, w, 0)).unwrap()).collect();
        for _ in 0..warmup {
            svc.schedule(Time::ZERO, &flow);
        }
        for &(server, w, picks_after) in &edits {
            let i = server % weights.len();
            weights[i] = w;
            svc.edit_dest(&cfg(i, w, 0)).unwrap();
            for _ in 0..picks_after {
                svc.schedule(Time::ZERO, &flow);
            }
        }
        let shares = wrr_shares(&weights);
        let period = shares.iter().sum::<u32>() as usize;
        if period == 0 {
            prop_assert_eq!(svc.schedule(Time::ZERO, &flow), None);
            return Ok(());
        }
        let picks: Vec<Option<DestId>> = (0..3 * period).map(|_| svc.schedule(Time::ZERO, &flow)).collect();
        prop_assert!(picks.iter().all(Option::is_some));
        for start in period..=2 * period {
            let window = &picks[start..start + period];
            prop_assert_eq!(counts(&ids, window), shares.clone(), "window at {}: {:?}", start, picks);
        }
    }
}

/// SPEC §1.3's worked examples (weights A=4, B=3, C=2 added in that order, list C, B, A):
/// the period `A B A C B A C B A`; built by adds, a first round `C B A` (cw = 1) before
/// it; and the reset of `cl` to the list head by a no-op edit.
#[test]
fn wrr_spec_examples() {
    let flow = FlowSpec { saddr: 0, daddr: 0, sport: 1, protocol: Protocol::Tcp }.flow();
    let build = |first: SchedulerKind| {
        let mut svc = Service::new(first, SvcFlags(0), 0, Time::ZERO);
        let a = svc.add_dest(&cfg(0, 4, 0)).unwrap();
        let b = svc.add_dest(&cfg(1, 3, 0)).unwrap();
        let c = svc.add_dest(&cfg(2, 2, 0)).unwrap();
        (svc, a, b, c)
    };
    let picks = |svc: &mut Service, n: usize| -> Vec<DestId> {
        (0..n).map(|_| svc.schedule(Time::ZERO, &flow).unwrap()).collect()
    };

    // Bound after the adds (`ipvsadm -E -s wrr`): cw starts at mw = 4.
    let (mut svc, a, b, c) = build(SchedulerKind::Rr);
    svc.set_scheduler(SchedulerKind::Wrr, Time::ZERO);
    let period = [a, b, a, c, b, a, c, b, a];
    assert_eq!(picks(&mut svc, 18), [period, period].concat());

    // Created with wrr, servers added one at a time: cw = 1 first.
    let (mut svc, ..) = build(SchedulerKind::Wrr);
    assert_eq!(picks(&mut svc, 3 + 18), [&[c, b, a][..], &period, &period].concat());

    // Two picks into a period (cl on B, cw = 3), a no-op edit of C resets cl to the head
    // and keeps cw = 3: the scan restarts at C and picks B again.
    let (mut svc, ..) = build(SchedulerKind::Rr);
    svc.set_scheduler(SchedulerKind::Wrr, Time::ZERO);
    assert_eq!(picks(&mut svc, 2), [a, b]);
    svc.edit_dest(&cfg(2, 2, 0)).unwrap();
    assert_eq!(picks(&mut svc, 8 + 9), [&[b, a, c, b, a, c, b, a][..], &period].concat());
}

// ---------------------------------------------------------------------------------------
// rr
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum RrOp {
    Pick,
    Add { server: usize, weight: u32 },
    Delete { server: usize },
    Edit { server: usize, weight: u32 },
}

fn rr_op() -> impl Strategy<Value = RrOp> {
    prop_oneof![
        6 => Just(RrOp::Pick),
        1 => (0..12usize, 1..=20u32).prop_map(|(server, weight)| RrOp::Add { server, weight }),
        1 => (0..12usize).prop_map(|server| RrOp::Delete { server }),
        1 => (0..12usize, 1..=20u32).prop_map(|(server, weight)| RrOp::Edit { server, weight }),
    ]
}

proptest! {
    /// SPEC §1.2: on a fresh service with every server usable, rr cycles through the list
    /// in list order, starting with the most recently added server.
    #[test]
    fn rr_cycles_in_list_order(weights in prop::collection::vec(1..=20u32, 1..=8)) {
        let mut svc = Service::new(SchedulerKind::Rr, SvcFlags(0), 0, Time::ZERO);
        let ids: Vec<DestId> =
            weights.iter().enumerate().map(|(i, &w)| svc.add_dest(&cfg(i, w, 0)).unwrap()).collect();
        let flow = FlowSpec { saddr: 0, daddr: 0, sport: 1, protocol: Protocol::Tcp }.flow();
        let n = ids.len();
        for k in 0..3 * n {
            prop_assert_eq!(svc.schedule(Time::ZERO, &flow), Some(ids[n - 1 - k % n]), "pick {}", k);
        }
    }

    /// SPEC §1.2 with list changes: the pick is always the entry after rr's pointer in the
    /// current list (wrapping); adds do not move the pointer (the new front entry is
    /// reached on the wrap), a delete of the pointed-at server moves the pointer to its
    /// predecessor (the head if it was first), weight edits change nothing.
    #[test]
    fn rr_follows_its_pointer_through_list_changes(
        initial in prop::collection::vec(1..=20u32, 1..=8),
        ops in prop::collection::vec(rr_op(), 1..80),
    ) {
        let mut svc = Service::new(SchedulerKind::Rr, SvcFlags(0), 0, Time::ZERO);
        for (i, &w) in initial.iter().enumerate() {
            svc.add_dest(&cfg(i, w, 0)).unwrap();
        }
        let flow = FlowSpec { saddr: 0, daddr: 0, sport: 1, protocol: Protocol::Tcp }.flow();
        // The model: the server the pointer is on, `None` for the list head.
        let mut pointer: Option<DestId> = None;
        for op in ops {
            let list = list_ids(&svc);
            match op {
                RrOp::Pick => {
                    let expected = match pointer {
                        _ if list.is_empty() => None,
                        None => Some(list[0]),
                        Some(p) => {
                            let pos = list.iter().position(|&x| x == p).expect("pointer on a linked server");
                            Some(list[(pos + 1) % list.len()])
                        }
                    };
                    let got = svc.schedule(Time::ZERO, &flow);
                    prop_assert_eq!(got, expected, "list {:?}, pointer {:?}", list, pointer);
                    if got.is_some() {
                        pointer = got;
                    }
                }
                RrOp::Add { server, weight } => {
                    if svc.find_dest(rip(server), 80).is_none() {
                        svc.add_dest(&cfg(server, weight, 0)).unwrap();
                    }
                }
                RrOp::Delete { server } => {
                    if let Some(id) = svc.find_dest(rip(server), 80) {
                        if pointer == Some(id) {
                            let pos = list.iter().position(|&x| x == id).unwrap();
                            pointer = pos.checked_sub(1).map(|p| list[p]);
                        }
                        svc.del_dest(rip(server), 80).unwrap();
                    }
                }
                RrOp::Edit { server, weight } => {
                    if svc.find_dest(rip(server), 80).is_some() {
                        svc.edit_dest(&cfg(server, weight, 0)).unwrap();
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// The least-connection family, fo and ovf: exact picks
// ---------------------------------------------------------------------------------------

proptest! {
    /// SPEC §1.4–§1.9: lc picks the least `active*256 + inactive`, wlc the least
    /// `(active*256 + inactive) / weight`, sed the least `(active + 1) / weight`, nq the
    /// first idle server else sed's choice, fo the highest weight, ovf the highest weight
    /// with `active <= weight`; always among servers with weight > 0 and no OVERLOAD, and
    /// ties go to the first in list order. Checked at every step while picks get bound.
    #[test]
    fn least_connection_family_picks_the_exact_minimum(
        kind in prop::sample::select(vec![
            SchedulerKind::Lc, SchedulerKind::Wlc, SchedulerKind::Sed,
            SchedulerKind::Nq, SchedulerKind::Fo, SchedulerKind::Ovf,
        ]),
        servers in prop::collection::vec(
            (
                weight_with_zeros(),
                prop_oneof![3 => Just(0u32), 1 => 1..=400u32],
                prop_oneof![0..=3u32, 0..=300u32],
                prop_oneof![0..=3u32, 0..=600u32],
            ),
            1..=8,
        ),
        steps in prop::collection::vec(bind_pick(), 1..30),
    ) {
        let mut svc = Service::new(kind, SvcFlags(0), 0, Time::ZERO);
        let mut thresholds = BTreeMap::new();
        for (i, &(w, u, active, inactive)) in servers.iter().enumerate() {
            let id = svc.add_dest(&cfg(i, w, u)).unwrap();
            thresholds.insert(id, u);
            for _ in 0..active {
                svc.bind(id, ConnCount::Active);
            }
            for _ in 0..inactive {
                svc.bind(id, ConnCount::Inactive);
            }
        }
        let flow = FlowSpec { saddr: 0, daddr: 0, sport: 1, protocol: Protocol::Tcp }.flow();
        for (step, bind) in steps.into_iter().enumerate() {
            // Counters only grow here, so OVERLOAD is set exactly when the total reached
            // the upper threshold (SPEC §1.1).
            for (id, d) in svc.dests() {
                let u = thresholds[&id];
                prop_assert_eq!(d.is_overloaded(), u != 0 && d.active_conns() + d.inactive_conns() >= u);
            }
            let expected = expected_pick(kind, &svc);
            let got = svc.schedule(Time::ZERO, &flow);
            prop_assert_eq!(got, expected, "{} step {}", kind, step);
            if let (Some(id), Some(count)) = (got, bind) {
                svc.bind(id, count);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// sh, mh, dh
// ---------------------------------------------------------------------------------------

proptest! {
    /// SPEC §1.11, §1.12, §1.15: while the configuration is unchanged the same flow maps to
    /// the same server (or to none), whatever load gets bound in between, after a no-op
    /// edit (which rebuilds sh's and mh's tables) and in a twin service built the same way.
    #[test]
    fn hashing_schedulers_are_stable(
        kind in prop::sample::select(vec![SchedulerKind::Sh, SchedulerKind::Mh, SchedulerKind::Dh]),
        weights in prop::collection::vec(weight_with_zeros(), 1..=8),
        flags in svc_flags(),
        flows in prop::collection::vec(flow_spec(), 1..40),
        load in prop::collection::vec((0..8usize, conn_count()), 0..100),
        noop_edit in 0..8usize,
    ) {
        let build = || {
            let mut svc = Service::new(kind, SvcFlags(flags), 0, Time::ZERO);
            let ids: Vec<DestId> =
                weights.iter().enumerate().map(|(i, &w)| svc.add_dest(&cfg(i, w, 0)).unwrap()).collect();
            (svc, ids)
        };
        let (mut svc, ids) = build();
        let map = |svc: &mut Service| -> Vec<Option<DestId>> {
            flows.iter().map(|f| svc.schedule(Time::ZERO, &f.flow())).collect()
        };
        let first = map(&mut svc);
        prop_assert_eq!(&map(&mut svc), &first, "{}: asked twice", kind);
        let reversed: Vec<_> = flows.iter().rev().map(|f| svc.schedule(Time::ZERO, &f.flow())).collect();
        prop_assert_eq!(reversed.into_iter().rev().collect::<Vec<_>>(), first.clone(), "{}: other order", kind);
        for &(server, count) in &load {
            svc.bind(ids[server % ids.len()], count);
        }
        prop_assert_eq!(&map(&mut svc), &first, "{}: after binding load", kind);
        let i = noop_edit % weights.len();
        svc.edit_dest(&cfg(i, weights[i], 0)).unwrap();
        prop_assert_eq!(&map(&mut svc), &first, "{}: after a no-op edit", kind);
        let (mut twin, _) = build();
        prop_assert_eq!(&map(&mut twin), &first, "{}: twin service", kind);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// SPEC §1.11, §1.15: over many random client addresses, sh's and mh's picks follow the
    /// weights. Each server's share of the table is within `w / table size` of `w / Σw`
    /// (the last, partial round of the fill), plus sampling noise; the bound is loose.
    #[test]
    fn sh_and_mh_spread_follows_weights(
        kind in prop::sample::select(vec![SchedulerKind::Sh, SchedulerKind::Mh]),
        weights in prop::collection::vec(1..=20u32, 1..=8),
        seed in any::<u64>(),
        v6 in any::<bool>(),
    ) {
        const N: u32 = 20_000;
        let mut svc = Service::new(kind, SvcFlags(0), 0, Time::ZERO);
        let ids: Vec<DestId> =
            weights.iter().enumerate().map(|(i, &w)| svc.add_dest(&cfg(i, w, 0)).unwrap()).collect();
        let mut state = seed;
        let mut picks = Vec::with_capacity(N as usize);
        for _ in 0..N {
            let saddr = if v6 {
                let hi = u128::from(splitmix64(&mut state));
                IpAddr::V6(Ipv6Addr::from((hi << 64) | u128::from(splitmix64(&mut state))))
            } else {
                IpAddr::V4(Ipv4Addr::from(splitmix64(&mut state) as u32))
            };
            let daddr = if v6 { IpAddr::V6(Ipv6Addr::LOCALHOST) } else { IpAddr::V4(Ipv4Addr::LOCALHOST) };
            let flow = Flow { protocol: Protocol::Tcp, saddr, sport: 40000, daddr, dport: 80 };
            picks.push(svc.schedule(Time::ZERO, &flow));
        }
        prop_assert!(picks.iter().all(Option::is_some), "{}: every server is usable", kind);
        let table = if kind == SchedulerKind::Sh { 256.0 } else { 4093.0 };
        let total: u32 = weights.iter().sum();
        for ((id, &w), hits) in ids.iter().zip(&weights).zip(counts(&ids, &picks)) {
            let got = f64::from(hits) / f64::from(N);
            let want = f64::from(w) / f64::from(total);
            let tolerance = f64::from(w) / table + 0.03;
            prop_assert!(
                (got - want).abs() <= tolerance,
                "{}: {:?} (weight {}) got {:.4} of the picks, want {:.4} ± {:.4}",
                kind, id, w, got, want, tolerance
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// twos
// ---------------------------------------------------------------------------------------

/// twos picks with a steady connection population: each pick bound as active, the oldest
/// unbound once more than 16 are open.
fn twos_run(weights: &[u32], seed: u64, picks: usize) -> Vec<Option<DestId>> {
    let mut svc = Service::new(SchedulerKind::Twos, SvcFlags(0), seed, Time::ZERO);
    for (i, &w) in weights.iter().enumerate() {
        svc.add_dest(&cfg(i, w, 0)).unwrap();
    }
    let flow = FlowSpec { saddr: 0, daddr: 0, sport: 1, protocol: Protocol::Tcp }.flow();
    let mut open = VecDeque::new();
    (0..picks)
        .map(|_| {
            let pick = svc.schedule(Time::ZERO, &flow);
            if let Some(id) = pick {
                svc.bind(id, ConnCount::Active);
                open.push_back(id);
                if open.len() > 16 {
                    svc.unbind(open.pop_front().unwrap(), ConnCount::Active);
                }
            }
            pick
        })
        .collect()
}

proptest! {
    /// SPEC §1.10 with the injected generator: the same seed gives the same sequence in
    /// two services; another seed gives another sequence (with two or more usable servers
    /// every pick is random, so 300 equal picks would be astronomically unlikely).
    #[test]
    fn twos_is_deterministic_per_seed(
        weights in prop::collection::vec(1..=20u32, 2..=8),
        seed in any::<u64>(),
        other in any::<u64>(),
    ) {
        prop_assume!(seed != other);
        let a = twos_run(&weights, seed, 300);
        prop_assert!(a.iter().all(Option::is_some));
        prop_assert_eq!(&twos_run(&weights, seed, 300), &a);
        prop_assert_ne!(&twos_run(&weights, other, 300), &a);
    }
}

// ---------------------------------------------------------------------------------------
// List order and the destination trash
// ---------------------------------------------------------------------------------------

/// SPEC §1 (list order) and the destination trash: A, B, C added give C, B, A; B deleted
/// and re-added goes to the front (B, C, A) with the same handle and its counters.
#[test]
fn list_order_and_trash_resurrection() {
    for kind in SchedulerKind::ALL {
        let mut svc = Service::new(kind, SvcFlags(0), 0, Time::ZERO);
        let a = svc.add_dest(&cfg(0, 1, 0)).unwrap();
        let b = svc.add_dest(&cfg(1, 2, 0)).unwrap();
        let c = svc.add_dest(&cfg(2, 3, 0)).unwrap();
        assert_eq!(list_ids(&svc), [c, b, a], "{kind}");
        svc.bind(b, ConnCount::Active);
        svc.bind(b, ConnCount::Active);
        svc.bind(b, ConnCount::Inactive);
        svc.bind(b, ConnCount::Template);
        assert_eq!(svc.del_dest(rip(1), 80), Ok(b));
        assert_eq!(list_ids(&svc), [c, a], "{kind}");
        assert!(!svc.dest(b).is_available());
        assert_eq!(svc.find_dest(rip(1), 80), None);
        assert_eq!(svc.add_dest(&cfg(1, 5, 0)), Ok(b), "{kind}: resurrected under the same handle");
        assert_eq!(list_ids(&svc), [b, c, a], "{kind}");
        let d = svc.dest(b);
        assert!(d.is_available());
        assert_eq!((d.active_conns(), d.inactive_conns(), d.persist_conns()), (2, 1, 1), "{kind}");
        assert_eq!(d.weight(), 5);
    }
}

proptest! {
    /// The same for any list length, any deleted position and any counters, including
    /// connections that come and go while the server sits in the trash.
    #[test]
    fn readded_server_goes_to_the_front_with_its_counters(
        kind in prop::sample::select(SchedulerKind::ALL.to_vec()),
        weights in prop::collection::vec(weight_with_zeros(), 2..=8),
        victim in 0..8usize,
        before in (0..20u32, 0..20u32, 0..5u32),
        in_trash in prop::collection::vec(conn_count(), 0..10),
        new_weight in weight_with_zeros(),
    ) {
        let mut svc = Service::new(kind, SvcFlags(0), 0, Time::ZERO);
        let ids: Vec<DestId> =
            weights.iter().enumerate().map(|(i, &w)| svc.add_dest(&cfg(i, w, 0)).unwrap()).collect();
        let reversed: Vec<DestId> = ids.iter().rev().copied().collect();
        prop_assert_eq!(list_ids(&svc), reversed.clone());
        let v = victim % ids.len();
        let id = ids[v];
        let (active, inactive, persist) = before;
        for (count, times) in [(ConnCount::Active, active), (ConnCount::Inactive, inactive), (ConnCount::Template, persist)] {
            for _ in 0..times {
                svc.bind(id, count);
            }
        }
        prop_assert_eq!(svc.del_dest(rip(v), 80), Ok(id));
        let rest: Vec<DestId> = reversed.iter().copied().filter(|&x| x != id).collect();
        prop_assert_eq!(list_ids(&svc), rest.clone());
        // Connections still bound to it are counted in the trash.
        let mut want = [active, inactive, persist];
        for &count in &in_trash {
            svc.bind(id, count);
            want[match count { ConnCount::Active => 0, ConnCount::Inactive => 1, ConnCount::Template => 2 }] += 1;
        }
        prop_assert_eq!(svc.add_dest(&cfg(v, new_weight, 0)), Ok(id));
        let mut front = vec![id];
        front.extend(rest);
        prop_assert_eq!(list_ids(&svc), front);
        let d = svc.dest(id);
        prop_assert!(d.is_available());
        prop_assert_eq!([d.active_conns(), d.inactive_conns(), d.persist_conns()], want);
        prop_assert_eq!(d.weight(), new_weight);
        prop_assert_eq!(d.last_weight(), new_weight);
    }
}
