//! Scheduling throughput: decisions per second of wlc, wrr and mh with 8, 64 and 1024
//! real servers.
//!
//! Run with `cargo bench -p lvs-sched --bench schedule`. One iteration is one
//! `Service::schedule` call, so criterion's elements/s is decisions per second.
//!
//! - wlc runs under load: each pick is bound (three in four as active, one in four as
//!   inactive) and, once about 16 connections per server are open, a randomly chosen
//!   older one is unbound, so the counters the scan reads keep changing. The bind and
//!   unbind are part of the measured iteration, as they are of every real decision.
//! - wrr needs no load (it never reads the counters).
//! - mh gets a different pseudo-random client address for every flow, so lookups hit the
//!   whole table.
//!
//! Weights are 1..=10, spread over the servers.

use core::net::{IpAddr, Ipv4Addr};
use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_main};
use lvs_sched::{
    ConnCount, DestConfig, DestId, Flow, Forwarding, Protocol, SchedulerKind, Service, SvcFlags, Time,
};

/// Real servers per service.
const SIZES: [usize; 3] = [8, 64, 1024];
/// Open connections per real server in the wlc benchmark.
const CONNS_PER_SERVER: usize = 16;
/// Distinct client flows cycled through by the mh benchmark.
const MH_FLOWS: usize = 4096;

/// xorshift64*: deterministic pseudo-random numbers for addresses and expiry choices.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// A service of `kind` with `n` real servers 10.0.x.y:80, weights 1..=10.
fn service(kind: SchedulerKind, n: usize) -> Service {
    let mut svc = Service::new(kind, SvcFlags(0), 1, Time::ZERO);
    for i in 0..n {
        let addr = IpAddr::V4(Ipv4Addr::from(0x0A00_0001 + i as u32));
        let weight = 1 + (i as u32 * 7) % 10;
        let cfg = DestConfig { weight, ..DestConfig::new(addr, 80, Forwarding::DirectRouting) };
        svc.add_dest(&cfg).expect("distinct servers");
    }
    svc
}

fn flow(saddr: u32, sport: u16) -> Flow {
    Flow {
        protocol: Protocol::Tcp,
        saddr: IpAddr::V4(Ipv4Addr::from(saddr)),
        sport,
        daddr: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        dport: 80,
    }
}

/// wlc with a steady population of connections whose counters keep moving.
struct LoadedWlc {
    svc: Service,
    open: Vec<(DestId, ConnCount)>,
    population: usize,
    rng: Rng,
    flow: Flow,
}

impl LoadedWlc {
    fn new(n: usize) -> Self {
        let population = CONNS_PER_SERVER * n;
        let mut s = LoadedWlc {
            svc: service(SchedulerKind::Wlc, n),
            open: Vec::with_capacity(population + 1),
            population,
            rng: Rng(0x9E37_79B9_7F4A_7C15),
            flow: flow(0xC633_6401, 40000),
        };
        // Reach the steady population before measuring.
        for _ in 0..2 * population {
            s.step();
        }
        s
    }

    /// One decision: schedule, bind the pick, expire a random older connection.
    fn step(&mut self) -> DestId {
        let id = self.svc.schedule(Time::ZERO, black_box(&self.flow)).expect("every server is usable");
        let r = self.rng.next();
        let count = if r % 4 == 0 { ConnCount::Inactive } else { ConnCount::Active };
        self.svc.bind(id, count);
        self.open.push((id, count));
        if self.open.len() > self.population {
            let victim = (r >> 8) as usize % self.open.len();
            let (old, old_count) = self.open.swap_remove(victim);
            self.svc.unbind(old, old_count);
        }
        id
    }
}

fn bench_wlc(c: &mut Criterion) {
    let mut group = c.benchmark_group("wlc");
    group.throughput(Throughput::Elements(1));
    for n in SIZES {
        let mut loaded = LoadedWlc::new(n);
        group.bench_function(BenchmarkId::from_parameter(n), |b| b.iter(|| black_box(loaded.step())));
    }
    group.finish();
}

fn bench_wrr(c: &mut Criterion) {
    let mut group = c.benchmark_group("wrr");
    group.throughput(Throughput::Elements(1));
    let f = flow(0xC633_6401, 40000);
    for n in SIZES {
        let mut svc = service(SchedulerKind::Wrr, n);
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| black_box(svc.schedule(Time::ZERO, black_box(&f))))
        });
    }
    group.finish();
}

fn bench_mh(c: &mut Criterion) {
    let mut group = c.benchmark_group("mh");
    group.throughput(Throughput::Elements(1));
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    let flows: Vec<Flow> =
        (0..MH_FLOWS).map(|_| flow(rng.next() as u32, (rng.next() >> 48) as u16)).collect();
    for n in SIZES {
        let mut svc = service(SchedulerKind::Mh, n);
        let mut i = 0;
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                i = (i + 1) % MH_FLOWS;
                black_box(svc.schedule(Time::ZERO, black_box(&flows[i])))
            })
        });
    }
    group.finish();
}

/// Private, so the `pub fn benches` the macro generates needs no doc comment.
mod group {
    criterion::criterion_group!(benches, super::bench_wlc, super::bench_wrr, super::bench_mh);
}

criterion_main!(group::benches);
