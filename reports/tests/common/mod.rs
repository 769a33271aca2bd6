//! A small cluster to report on: one NAT director (wlc) in front of three real servers of
//! unequal speed, Poisson arrivals, a time series every 100 ms.

#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr};

use lvs_ipvs::ServiceKey;
use lvs_sched::{Duration, Forwarding, Protocol, SchedulerKind};
use sim_core::arrival::ArrivalProcess;
use sim_core::cpu::CpuConfig;
use sim_core::dist::Dist;
use sim_core::link::ChannelConfig;
use sim_core::model::*;

const VIP: IpAddr = IpAddr::V4(Ipv4Addr::new(172, 17, 60, 201));

/// The cluster with `seed`, `secs` seconds long, sampled every `sample_ms` (none if 0).
pub fn config(seed: u64, secs: u64, sample_ms: u64) -> ClusterConfig {
    config_with(seed, secs, sample_ms, SchedulerKind::Wlc, 3, 300.0)
}

/// The cluster with `n` real servers (speeds 1, 1, 2, 1, 1, 2...), `scheduler` and
/// Poisson arrivals at `rate` [conn/s].
pub fn config_with(
    seed: u64,
    secs: u64,
    sample_ms: u64,
    scheduler: SchedulerKind,
    n: usize,
    rate: f64,
) -> ClusterConfig {
    let speeds: Vec<f64> = (0..n).map(|i| if i % 3 == 2 { 2.0 } else { 1.0 }).collect();
    let servers = speeds
        .iter()
        .enumerate()
        .map(|(i, &speed)| ServerConfig {
            gateway: Some(0),
            ..ServerConfig::new(
                format!("rs{i}"),
                IpAddr::V4(Ipv4Addr::new(192, 168, 6, 4 + i as u8)),
                CpuConfig { cores: 1, speed, max_in_service: None, backlog: None },
            )
        })
        .collect();
    let dests = (0..speeds.len())
        .map(|i| DestConfig { weight: 1 + (i % 3) as u32, ..DestConfig::new(i, 80, Forwarding::Masq) })
        .collect();
    let link = ChannelConfig {
        bandwidth_bps: Some(100_000_000),
        latency: Duration::from_micros(100),
        ..ChannelConfig::IDEAL
    };
    let mut director = DirectorConfig::new(
        "lb1",
        "lan",
        vec![ServiceConfig::new(
            ServiceKey::Addr { protocol: Protocol::Tcp, addr: VIP, port: 80 },
            scheduler,
            dests,
        )],
    );
    director.external = DuplexLink { inbound: link, outbound: link };
    ClusterConfig {
        warmup: Duration::from_millis(200),
        sample_interval: (sample_ms > 0).then(|| Duration::from_millis(sample_ms)),
        directors: vec![director],
        servers,
        populations: vec![PopulationConfig {
            access_latency: Duration::from_millis(5),
            request_bytes: Dist::Constant(1000.0),
            response_bytes: Dist::Exponential { mean: 20_000.0 },
            demand: Dist::Exponential { mean: 0.003 },
            ..PopulationConfig::new("web", ArrivalProcess::Poisson { rate }, VIP, 80)
        }],
        ..ClusterConfig::new(seed, Duration::from_secs(secs))
    }
}

/// Runs the cluster.
pub fn run(seed: u64, secs: u64, sample_ms: u64) -> RunReport {
    Simulation::new(config(seed, secs, sample_ms)).expect("valid configuration").run()
}

/// The summary of a run of `config_with`.
pub fn summary_with(seed: u64, scheduler: SchedulerKind, n: usize, rate: f64) -> reports::Summary {
    let r = Simulation::new(config_with(seed, 1, 0, scheduler, n, rate)).expect("valid configuration").run();
    reports::summary(&reports::RunMeta { scenario: "small".into(), ..reports::RunMeta::default() }, &r)
}

/// A sweep over the scheduler (rr, wlc) and the rate (200, 300, 400 conn/s), two seeds a
/// point, with an axis name and value that need escaping.
pub fn sweep() -> reports::SweepReport {
    let mut points = Vec::new();
    for (sched, kind) in [("\"rr\"", SchedulerKind::Rr), ("\"wlc\"", SchedulerKind::Wlc)] {
        for rate in ["200.0", "300.0", "400.0"] {
            let runs = (1..=2).map(|seed| summary_with(seed, kind, 3, rate.parse().unwrap())).collect();
            points.push(reports::SweepPoint {
                values: vec![sched.to_string(), rate.to_string()],
                result: reports::replications(runs),
            });
        }
    }
    reports::SweepReport {
        scenario: "sweep <&>".into(),
        axes: vec!["services[0].scheduler".into(), "workload.rate".into()],
        points,
    }
}

/// A capacity plan: rr and wlc with 1 to 4 real servers at 300 conn/s, SLO on the p99.
pub fn plan(threshold_ms: f64) -> reports::PlanReport {
    let mut trials = Vec::new();
    for (name, kind) in [("rr", SchedulerKind::Rr), ("wlc", SchedulerKind::Wlc)] {
        for n in 1..=4u32 {
            let runs: Vec<_> = (1..=2).map(|seed| summary_with(seed, kind, n as usize, 300.0)).collect();
            let result = reports::replications(runs);
            let estimate = result.latency_p99_ms;
            let meets = estimate.mean + estimate.ci95 <= threshold_ms;
            let verdict = if meets { reports::Verdict::Meets } else { reports::Verdict::Fails };
            trials.push(reports::PlanTrial {
                scheduler: name.into(),
                sizes: vec![n],
                cost: f64::from(n),
                checks: vec![reports::PlanCheck {
                    check: format!("latency_ms.p99 <= {threshold_ms}"),
                    metric: "latency_ms.p99".into(),
                    estimate,
                    verdict,
                }],
                meets,
                result,
            });
        }
    }
    let value = |t: &reports::PlanTrial| t.checks[0].estimate;
    let answer = trials
        .iter()
        .filter(|t| t.meets)
        .min_by(|a, b| a.cost.total_cmp(&b.cost).then(value(a).mean.total_cmp(&value(b).mean)))
        .map(|t| reports::PlanAnswer {
            scheduler: t.scheduler.clone(),
            sizes: t.sizes.clone(),
            cost: t.cost,
            value: value(t),
            choice: "only".into(),
            rivals: Vec::new(),
            why: format!("fewest servers that meet the SLO; {} <b>wins</b> the tie on p99", t.scheduler),
        });
    reports::PlanReport {
        scenario: "plan".into(),
        slo: format!("latency_ms.p99 <= {threshold_ms}"),
        load: "Poisson 300 conn/s".into(),
        groups: vec![reports::PlanGroup {
            label: "real servers".into(),
            path: "servers[0].count".into(),
            min: 1,
            max: 4,
            cost: 1.0,
        }],
        replications: 2,
        search: "every size".into(),
        grid_points: 8,
        trials,
        answer,
    }
}

/// Report metadata with text that needs escaping in HTML.
pub fn meta() -> reports::RunMeta {
    reports::RunMeta {
        scenario: "small <wlc> & \"nat\"".into(),
        description: "Three real servers <b>behind</b> one NAT director & a 100 Mb/s link".into(),
        source: "tests/common/mod.rs".into(),
        overrides: vec!["workload.rate=300".into()],
        wall_s: 0.25,
        warnings: Vec::new(),
        ..reports::RunMeta::default()
    }
}

/// Hand-built feedback results for a run (the simulator does not fill them yet): every
/// server reported from the second sample on with a capacity falling over time; rs1
/// reacted in 1.5 s, rs2 in 2.5 s, rs0 had no background change; rs2's agent never
/// reported (no last capacity).
pub fn with_feedback(mut r: RunReport) -> RunReport {
    let n = r.servers.len();
    for (k, s) in r.series.iter_mut().enumerate() {
        for (i, ss) in s.servers.iter_mut().enumerate() {
            ss.capacity = (k > 0 && i != 2).then(|| 1.0 - (k as f64 * 0.02 * (i + 1) as f64).min(0.9));
        }
    }
    let servers: Vec<FeedbackServerReport> = r
        .servers
        .iter()
        .enumerate()
        .map(|(i, s)| FeedbackServerReport {
            name: s.name.clone(),
            reports: 20 + i as u64,
            weight_changes: 3 * i as u64,
            weight_mean: 50.0 + i as f64,
            weight_min: 10,
            weight_max: 100 - i as u32,
            weight_travel_per_min: 10.0 * (i + 1) as f64,
            reaction_s: [None, Some(1.5), Some(2.5)][i % 3],
            capacity_last: (i != 2).then_some(0.25 * (i + 1) as f64),
        })
        .collect();
    r.feedback = Some(FeedbackReport {
        law: "capacity".into(),
        reports_sent: servers.iter().map(|s| s.reports).sum(),
        reports_applied: servers.iter().map(|s| s.reports).sum::<u64>() - 1,
        weight_changes: servers.iter().map(|s| s.weight_changes).sum(),
        segments_lost: 2,
        reconnects: 1,
        servers,
    });
    assert_eq!(r.feedback.as_ref().map(|f| f.servers.len()), Some(n));
    r
}

/// Hand-built high-availability results for a run of `run(_, 2, 100)` (the simulator does
/// not fill them yet): a second director `lb2` holding the VIP from 1.05 s (lb1 down at
/// 0.95 s) until lb1 preempts at 1.75 s; rs1 crashes at 0.5 s, detected at 0.75 s,
/// recovered at 1.6 s, restored at 1.8 s; rs2 hangs 1.3–1.4 s undetected; sync on.
pub fn with_ha(mut r: RunReport) -> RunReport {
    let at = |ms: u64| lvs_sched::Time(ms * 1_000_000);
    let idle = ChannelReport::default();
    r.directors.push(DirectorReport {
        name: "lb2".into(),
        in_pkts: 0,
        out_pkts: 0,
        in_bytes: 0,
        out_bytes: 0,
        link_utilization: 0.0,
        external_in: idle,
        external_out: idle,
        internal_out: idle,
        internal_in: idle,
        cpu: idle,
        ipvs: lvs_ipvs::Ipvs::new(0),
    });
    for s in &mut r.series {
        let ms = s.t.as_nanos() / 1_000_000;
        let lb1 = !(1050..1750).contains(&ms);
        s.director_link_utilization.push(0.0);
        s.director_share = if lb1 { vec![1.0, 0.0] } else { vec![0.0, 1.0] };
        s.failed = match ms {
            600..=800 => 6,
            1100 => 7,
            _ => 0,
        };
    }
    r.connections.lost_on_failover = 6;
    let checks = CheckStats { checks: 40, failed: 3, downs: 1, ups: 1, fallbacks: 0 };
    r.ha = Some(HaReport {
        faults: vec![
            FaultReport {
                server: "rs1".into(),
                kind: "crash".into(),
                at: at(500),
                recovered_at: Some(at(1600)),
                detected_at: Some(at(750)),
                restored_at: Some(at(1800)),
                failed_before_detection: 12,
                failed_after_detection: 3,
            },
            FaultReport {
                server: "rs2".into(),
                kind: "hang".into(),
                at: at(1300),
                recovered_at: Some(at(1400)),
                failed_before_detection: 2,
                ..FaultReport::default()
            },
        ],
        checks: vec![checks, CheckStats { checks: 38, failed: 2, ups: 0, ..checks }],
        failovers: vec![
            FailoverReport {
                at: at(1050),
                from: Some("lb1".into()),
                to: Some("lb2".into()),
                cause: "director down".into(),
                gap_s: Some(0.1),
                lost_conns: 7,
                survived_conns: 25,
            },
            FailoverReport {
                at: at(1750),
                from: Some("lb2".into()),
                to: Some("lb1".into()),
                cause: "preempt".into(),
                gap_s: None,
                lost_conns: 0,
                survived_conns: 30,
            },
        ],
        director_faults: vec![
            DirectorFaultReport { director: "lb1".into(), kind: "down".into(), at: at(950) },
            DirectorFaultReport { director: "lb1".into(), kind: "up".into(), at: at(1700) },
        ],
        sync: Some(SyncReport { messages: 120, conns: 900, bytes: 48_000, applied: 880 }),
        scheduled_by_director: Vec::new(),
    });
    r
}
