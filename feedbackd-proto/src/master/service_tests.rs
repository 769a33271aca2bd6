//! The service-level step through the master: Prequal's pool over several agents' reports
//! and gRPC WRR's blackout, with the events and journal decisions they make.

use std::net::{IpAddr, Ipv4Addr};

use lvs_ipvs::Protocol;
use lvs_sched::feedback::{GrpcWrr, LawKind, Prequal};
use lvs_sched::{Duration, Time};

use super::*;
use crate::journal::Decision;
use crate::types::{ServerAction, Who};
use crate::wire::{Nonce, Register};

const VS: ServiceKey =
    ServiceKey::Addr { protocol: Protocol::Tcp, addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), port: 80 };
const NONCE: Nonce = [1; 16];

fn secs(s: u64) -> Time {
    Time(s * 1_000_000_000)
}

fn master(kind: LawKind) -> Master {
    let law = LawConfig {
        min_weight: 1,
        max_weight: 100,
        smoothing: 1.0,
        dead_band: 0,
        max_step: 0,
        slow_start: Duration::ZERO,
        kind,
    };
    let mut m = Master::new(MasterConfig { auth: Auth::Insecure, law, ..MasterConfig::default() });
    m.handle_table(Time(0), &[VS], &[]);
    m.set_journal(Time(0), true);
    m
}

fn spec() -> ServiceSpec {
    ServiceSpec {
        protocol: Protocol::Tcp,
        port: 80,
        vip: None,
        fwmark: None,
        forwarding: Forwarding::Masq,
        address: None,
    }
}

/// Agent `n` (rsN at 10.0.0.N+1, connection N) registers.
fn register(m: &mut Master, n: u8) {
    let msg = Message::Register(Register {
        nonce: [2; 16],
        agent_id: format!("rs{n}"),
        interval_ms: 1000,
        services: vec![spec()],
    });
    m.handle_connect(Time(0), ConnId(n.into()), IpAddr::V4(Ipv4Addr::new(10, 0, 0, n + 1)), NONCE);
    m.handle_input(Time(0), ConnId(n.into()), &wire::encode(&msg, 1, None));
    drain(m);
}

/// Agent `n` reports `metrics` at `now` (its `seq`-th frame); the events.
fn report(m: &mut Master, now: Time, n: u8, seq: u64, metrics: &[(&str, f64)]) -> Vec<MasterEvent> {
    let metrics = metrics.iter().map(|&(name, value)| Metric { name: name.into(), value }).collect();
    let msg = Message::Report(Report { admin: AdminState::Ready, capacity: vec![Some(500)], metrics });
    m.handle_input(now, ConnId(n.into()), &wire::encode(&msg, seq, None));
    drain(m)
}

fn drain(m: &mut Master) -> Vec<MasterEvent> {
    while m.poll_transmit().is_some() {}
    std::iter::from_fn(|| m.poll_event()).collect()
}

/// (last octet, from, to) of each weight change, adds as (octet, 0, weight).
fn changes(ev: &[MasterEvent]) -> Vec<(u8, u32, u32)> {
    let octet = |k: &RsKey| match k.addr {
        IpAddr::V4(a) => a.octets()[3],
        IpAddr::V6(_) => unreachable!(),
    };
    ev.iter()
        .filter_map(|e| match e {
            MasterEvent::AddRealServer { key, weight, .. } => Some((octet(key), 0, *weight)),
            MasterEvent::SetWeight { key, from, to, .. } => Some((octet(key), *from, *to)),
            _ => None,
        })
        .collect()
}

#[test]
fn prequal_sets_weights_from_the_pool_of_every_agents_reports() {
    let mut m =
        master(LawKind::Prequal(Prequal { pool_size: 16, max_age: Duration::from_secs(5), q_rif: 0.5 }));
    for n in 1..=3 {
        register(&mut m, n);
    }
    // rs1: 2 in flight at 10 ms. Alone in the pool: cold, the best: 100.
    let ev = report(&mut m, secs(1), 1, 2, &[("rif", 2.0), ("latency_ms", 10.0)]);
    assert_eq!(changes(&ev), [(2, 0, 1), (2, 1, 100)]);
    let MasterEvent::SetWeight { why, .. } = &ev[1] else { panic!("{ev:?}") };
    assert_eq!(
        why.to_string(),
        "rif 2.0 (cold: threshold 2.0 over 1 probes), latency 10.0 ms, raw 100.0, smoothed 100.0, target 100"
    );
    // rs2: 8 at 5 ms. Pool 2 8, rank ⌈0.5 × 2⌉ = 1: θ = 2; hot: 100 × 2/8 = 25.
    let ev = report(&mut m, secs(1), 2, 2, &[("rif", 8.0), ("latency_ms", 5.0)]);
    assert_eq!(changes(&ev), [(3, 0, 1), (3, 1, 25)]);
    // rs3: 1 at 40 ms. Pool 1 2 8: θ = 2; cold, L_min 10 ms: 100 × 10/40 = 25. rs1 and
    // rs2 keep theirs until their own reports.
    let ev = report(&mut m, secs(1), 3, 2, &[("rif", 1.0), ("latency_ms", 40.0)]);
    assert_eq!(changes(&ev), [(4, 0, 1), (4, 1, 25)]);
    // rs2 again, idle now: pool 2 8 1 0 → θ = 1 (rank 2); cold at 5 ms, the fastest: 100.
    let ev = report(&mut m, secs(2), 2, 3, &[("rif", 0.0), ("latency_ms", 5.0)]);
    assert_eq!(changes(&ev), [(3, 25, 100)]);
    // The journal holds every decision, the step's included.
    let sets: Vec<Decision> = std::iter::from_fn(|| m.poll_journal())
        .filter_map(|r| match r.entry {
            Entry::Decision(d @ Decision::Set { .. }) => Some(d),
            _ => None,
        })
        .collect();
    assert_eq!(sets.len(), 4);
}

#[test]
fn a_prequal_agent_without_rif_leaves_its_server_to_the_mean() {
    let mut m =
        master(LawKind::Prequal(Prequal { pool_size: 16, max_age: Duration::from_secs(5), q_rif: 0.5 }));
    for n in 1..=3 {
        register(&mut m, n);
    }
    report(&mut m, secs(1), 1, 2, &[("rif", 2.0), ("latency_ms", 10.0)]);
    // rs2: pool 2 4, θ = 2: hot, 100 × 2/4 = 50.
    let ev = report(&mut m, secs(1), 2, 2, &[("rif", 4.0), ("latency_ms", 40.0)]);
    assert_eq!(changes(&ev), [(3, 0, 1), (3, 1, 50)]);
    // rs3 reports no rif: added, then given the mean of (100, 50) = 75.
    let ev = report(&mut m, secs(1), 3, 2, &[("qps", 10.0)]);
    assert_eq!(changes(&ev), [(4, 0, 1), (4, 1, 75)]);
    let MasterEvent::SetWeight { why, .. } = &ev[1] else { panic!("{ev:?}") };
    assert_eq!(why.to_string(), "no usable weight of its own: mean 75 of 2 servers, target 75");
}

#[test]
fn grpc_servers_in_their_blackout_get_the_mean_weight() {
    let g = GrpcWrr { blackout_period: Duration::from_secs(10), ..GrpcWrr::default() };
    let mut m = master(LawKind::GrpcWrr(g));
    register(&mut m, 1);
    register(&mut m, 2);
    // rs1 60 q/s, rs2 30 q/s, both at 50 %: 120 and 60, from 0 s.
    let mut seq = 2;
    for t in 0..10 {
        let a = report(&mut m, secs(t), 1, seq, &[("qps", 60.0)]);
        let b = report(&mut m, secs(t), 2, seq, &[("qps", 30.0)]);
        seq += 1;
        let set: Vec<_> = changes(&a).into_iter().chain(changes(&b)).filter(|c| c.1 != 0).collect();
        assert!(set.is_empty(), "in the blackout both stay at min_weight ({t} s): {set:?}");
    }
    // 10 s: rs1's own weight (120, clamped to 100) is usable; fewer than two usable: rs2
    // gets the same. Then rs2's own (60) is usable too.
    let a = report(&mut m, secs(10), 1, seq, &[("qps", 60.0)]);
    assert_eq!(changes(&a), [(2, 1, 100), (3, 1, 100)]);
    let b = report(&mut m, secs(10), 2, seq, &[("qps", 30.0)]);
    assert_eq!(changes(&b), [(3, 100, 60)]);
    let MasterEvent::SetWeight { why, .. } = &a[1] else { panic!("{a:?}") };
    assert_eq!(why.to_string(), "no usable weight of its own: mean 100 of 1 servers, target 100");
}

#[test]
fn a_drained_server_is_out_of_the_step_and_its_probes_out_of_the_pool() {
    let mut m =
        master(LawKind::Prequal(Prequal { pool_size: 16, max_age: Duration::from_secs(5), q_rif: 0.5 }));
    for n in 1..=2 {
        register(&mut m, n);
    }
    report(&mut m, secs(1), 1, 2, &[("rif", 2.0), ("latency_ms", 10.0)]);
    let rs2 = RsKey { service: VS, addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 3)), port: 80 };
    report(&mut m, secs(1), 2, 2, &[("rif", 4.0), ("latency_ms", 40.0)]);
    let who = Who { user: "ops".into(), address: IpAddr::V4(Ipv4Addr::LOCALHOST) };
    m.handle_operator(secs(1), &who, rs2, ServerAction::Drain).unwrap();
    drain(&mut m);
    // rs2, drained, reports an idle fast server: no probe, no weight change for it; rs1's
    // next report sees a pool of its own probes only (cold, the best: 100, unchanged).
    let ev = report(&mut m, secs(2), 2, 3, &[("rif", 0.0), ("latency_ms", 1.0)]);
    assert_eq!(changes(&ev), []);
    assert_eq!(m.service_laws[&VS].pool().len(), 2, "rs2's drained report is no probe");
    let ev = report(&mut m, secs(2), 1, 3, &[("rif", 2.0), ("latency_ms", 10.0)]);
    assert_eq!(changes(&ev), []);
    assert_eq!(m.status(secs(2)).iter().map(|r| r.weight).collect::<Vec<_>>(), [100, 0]);
}
