//! Hand-computed expectations for the service-level step, and its properties.

use proptest::prelude::*;

use super::*;
use crate::feedback::{GrpcInputs, GrpcWrr, Limit};
use crate::time::Duration;

fn s(secs: f64) -> Time {
    Time((secs * 1e9).round() as u64)
}

fn prequal(pool_size: u32, q_rif: f64) -> LawConfig {
    LawConfig {
        min_weight: 1,
        max_weight: 100,
        smoothing: 1.0,
        dead_band: 0,
        max_step: 0,
        slow_start: Duration::ZERO,
        kind: LawKind::Prequal(Prequal { pool_size, max_age: Duration::from_secs(5), q_rif }),
    }
}

fn probe(rif: f64, latency_ms: f64) -> Signal {
    Signal { capacity: 0.5, qps: None, eps: None, rif: Some(rif), latency: Some(latency_ms / 1000.0) }
}

/// Runs a step over `laws` (keys 0..n), `reported` saying who just reported.
fn step(
    svc: &mut ServiceLaw<u32>,
    c: &LawConfig,
    now: Time,
    laws: &mut [ServerLaw],
    reported: &[bool],
) -> Vec<Option<Update>> {
    let mut members: Vec<Member<'_, u32>> = laws
        .iter_mut()
        .enumerate()
        .map(|(i, law)| Member { key: i as u32, law, reported: reported[i] })
        .collect();
    svc.step(c, now, &mut members)
}

#[test]
fn the_quantile_is_the_nearest_rank() {
    let mut pool = ProbePool::default();
    assert_eq!(pool.rif_quantile(0.5), None);
    for (i, rif) in [5.0, 1.0, 3.0, 2.0].into_iter().enumerate() {
        pool.push(16, Probe { key: i as u32, t: Time(0), rif, latency: None });
    }
    // Sorted 1 2 3 5: q = 0.5 → rank ⌈2⌉ = 2 → 2; q = 0.6 → ⌈2.4⌉ = 3 → 3.
    assert_eq!(pool.rif_quantile(0.5), Some(2.0));
    assert_eq!(pool.rif_quantile(0.6), Some(3.0));
    assert_eq!(pool.rif_quantile(0.0), Some(1.0));
    assert_eq!(pool.rif_quantile(1.0), Some(5.0));
    // 1..=16 at the default 0.84: ⌈13.44⌉ = 14 → 14.
    let mut pool = ProbePool::default();
    for rif in 1..=16 {
        pool.push(16, Probe { key: 0u32, t: Time(0), rif: f64::from(rif), latency: None });
    }
    assert_eq!(pool.rif_quantile(0.84), Some(14.0));
}

#[test]
fn the_pool_is_bounded_by_size_and_age() {
    let c = prequal(3, 0.84);
    let mut svc = ServiceLaw::default();
    for i in 0..5u32 {
        svc.observe(&c, s(f64::from(i)), i, &probe(f64::from(i), 1.0));
    }
    let keys: Vec<u32> = svc.pool().probes().map(|p| p.key).collect();
    assert_eq!(keys, [2, 3, 4], "the oldest leave first");
    // max_age 5 s: at 8.5 s the probe of 3 s is 5.5 s old, the one of 4 s is 4.5 s old.
    svc.pool.expire(s(8.5), Duration::from_secs(5));
    assert_eq!(svc.pool().probes().map(|p| p.key).collect::<Vec<_>>(), [4]);
    // No rif, or a rif not finite or negative: no probe. A bad latency: a probe without.
    for bad in [None, Some(f64::NAN), Some(-1.0), Some(f64::INFINITY)] {
        svc.observe(&c, s(9.0), 7, &Signal { rif: bad, ..probe(1.0, 1.0) });
    }
    assert_eq!(svc.pool().len(), 1);
    svc.observe(&c, s(9.0), 8, &Signal { latency: Some(f64::NAN), ..probe(1.0, 1.0) });
    assert_eq!(svc.pool().newest(8).unwrap().latency, None);
    // Other laws keep no pool.
    let mut other = ServiceLaw::default();
    other.observe(&LawConfig::default(), s(0.0), 1u32, &probe(1.0, 1.0));
    assert!(other.pool().is_empty());
}

/// Four servers: A rif 2 at 10 ms, B 4 at 20 ms, C 8 at 5 ms, D 1 at 40 ms; q 0.5.
fn four(svc: &mut ServiceLaw<u32>, c: &LawConfig) {
    for (i, (rif, ms)) in [(2.0, 10.0), (4.0, 20.0), (8.0, 5.0), (1.0, 40.0)].into_iter().enumerate() {
        svc.observe(c, s(1.0), i as u32, &probe(rif, ms));
    }
}

#[test]
fn hcl_prefers_low_latency_among_the_cold_and_low_rif_among_the_hot() {
    let c = prequal(16, 0.5);
    let mut svc = ServiceLaw::default();
    four(&mut svc, &c);
    let mut laws = vec![ServerLaw::adopt(50); 4];
    let out = step(&mut svc, &c, s(1.0), &mut laws, &[true; 4]);
    // Sorted rif 1 2 4 8, rank ⌈0.5 × 4⌉ = 2: θ = 2. Cold: A (2), D (1); hot: B, C.
    // L_min over the cold = 10 ms. A: 100 × 10/10 = 100; D: 100 × 10/40 = 25.
    // W_cold = 25. B: 25 × 2/4 = 12.5 → 13; C: 25 × 2/8 = 6.25 → 6.
    let weights: Vec<u32> = laws.iter().map(ServerLaw::weight).collect();
    assert_eq!(weights, [100, 13, 6, 25]);
    let hot: Vec<bool> = out
        .iter()
        .map(|u| match u.unwrap().law {
            LawInputs::Prequal(p) => {
                assert_eq!((p.threshold, p.probes), (2.0, 4));
                p.hot
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(hot, [false, true, true, false]);
    // C is the fastest server but hot: HCL ranks it last, below every cold server.
    assert_eq!(out[2].unwrap().from, 50);
}

#[test]
fn a_server_without_a_probe_gets_the_mean_and_a_silent_one_waits() {
    let c = prequal(16, 0.5);
    let mut svc = ServiceLaw::default();
    four(&mut svc, &c);
    let mut laws = vec![ServerLaw::adopt(50); 6];
    // Server 4 has no probe; server 1 has one but did not just report.
    let out = step(&mut svc, &c, s(1.0), &mut laws, &[true, false, true, true, false, true]);
    assert_eq!(out[1], None, "a probed server moves at its own report");
    // Probed servers' weights: 100, 50 (unmoved), 6, 25: mean 181/4 = 45.25 → 45.
    let weights: Vec<u32> = laws.iter().map(ServerLaw::weight).collect();
    assert_eq!(weights, [100, 50, 6, 25, 45, 45]);
    match out[4].unwrap().law {
        LawInputs::Mean(m) => assert_eq!(m, MeanInputs { servers: 4, mean: 45 }),
        other => panic!("{other:?}"),
    }
    // 5.5 s later every probe has aged out: nothing moves.
    let out = step(&mut svc, &c, s(6.5), &mut laws, &[true; 6]);
    assert!(out.iter().all(Option::is_none), "{out:?}");
    assert!(svc.pool().is_empty());
}

#[test]
fn prequal_weights_pass_smoothing_and_the_step_limit() {
    let c = LawConfig { smoothing: 0.5, max_step: 30, ..prequal(16, 0.5) };
    let mut svc = ServiceLaw::default();
    four(&mut svc, &c);
    let mut laws = vec![ServerLaw::adopt(50); 4];
    step(&mut svc, &c, s(1.0), &mut laws, &[true; 4]);
    // First update: smoothed = raw. A: 50 → 100 limited to 80; C: 50 → 6 limited to 20.
    let weights: Vec<u32> = laws.iter().map(ServerLaw::weight).collect();
    assert_eq!(weights, [80, 20, 20, 25]);
    // A reports again (the same probes): raw 100, smoothed (100 + 100) / 2 = 100.
    let out = step(&mut svc, &c, s(1.0), &mut laws, &[true, false, false, false]);
    let u = out[0].unwrap();
    assert_eq!((u.from, u.to, u.limit), (80, 100, Limit::None));
}

#[test]
fn a_report_alone_leaves_a_prequal_weight() {
    let c = prequal(16, 0.5);
    let mut law = ServerLaw::adopt(42);
    let u = law.update_signal(&c, s(1.0), probe(3.0, 7.0));
    assert_eq!((u.from, u.to), (42, 42));
}

fn grpc(blackout_s: u64, expiration_s: u64) -> LawConfig {
    LawConfig {
        max_weight: 1000,
        smoothing: 1.0,
        dead_band: 0,
        max_step: 0,
        slow_start: Duration::ZERO,
        kind: LawKind::GrpcWrr(GrpcWrr {
            blackout_period: Duration::from_secs(blackout_s),
            weight_expiration_period: Duration::from_secs(expiration_s),
            ..GrpcWrr::default()
        }),
        ..LawConfig::default()
    }
}

fn load(qps: f64, utilization: f64) -> Signal {
    Signal { capacity: 1.0 - utilization, qps: Some(qps), eps: None, rif: None, latency: None }
}

fn blackout(u: &Update) -> bool {
    match u.law {
        LawInputs::GrpcWrr(GrpcInputs { blackout, .. }) => blackout,
        _ => panic!("{u:?}"),
    }
}

#[test]
fn grpc_blackout_and_expiration_timeline() {
    let c = grpc(10, 30);
    let LawKind::GrpcWrr(g) = c.kind else { unreachable!() };
    let mut law = ServerLaw::adopt(7);
    assert!(!law.grpc_usable(&g, s(0.0)), "never reported");
    // Usable reports every second from 0 s (100 q/s at 50 %: 200).
    for t in 0..10 {
        let u = law.update_signal(&c, s(f64::from(t)), load(100.0, 0.5));
        assert!(blackout(&u) && u.to == 7, "{t} s: {u:?}");
    }
    assert!(!law.grpc_usable(&g, s(9.999)));
    assert!(!law.grpc_usable(&g, s(10.0)), "blackout over, but the weight is not its own yet");
    let u = law.update_signal(&c, s(10.0), load(100.0, 0.5));
    assert!(!blackout(&u));
    assert_eq!((u.from, u.to), (7, 200));
    assert!(law.grpc_usable(&g, s(10.0)), "non_empty_since 0 s + blackout 10 s, its own weight");
    // A report with no usable figure does not refresh last_updated (A58: weight 0 is ignored).
    law.update_signal(&c, s(20.0), load(0.0, 0.5));
    assert!(law.grpc_usable(&g, s(39.999)));
    assert!(!law.grpc_usable(&g, s(40.0)), "last_updated 10 s + expiration 30 s");
    // Fresh reports after the expiry: a new blackout from 45 s to 55 s.
    let u = law.update_signal(&c, s(45.0), load(50.0, 0.5));
    assert!(blackout(&u) && u.to == 200, "{u:?}");
    assert!(!law.grpc_usable(&g, s(54.9)));
    law.update_signal(&c, s(55.0), load(50.0, 0.5));
    assert!(law.grpc_usable(&g, s(55.0)));
    assert_eq!(law.weight(), 100);
    // Expired without the step looking: the next usable report still starts a blackout.
    let mut law = ServerLaw::adopt(7);
    law.update_signal(&c, s(0.0), load(100.0, 0.5));
    assert!(blackout(&law.update_signal(&c, s(30.0), load(100.0, 0.5))), "30 s ≥ expiration: a new blackout");
    // blackout_period 0: usable at once.
    let c0 = grpc(0, 30);
    let mut law = ServerLaw::adopt(7);
    assert_eq!(law.update_signal(&c0, s(0.0), load(100.0, 0.5)).to, 200);
}

#[test]
fn grpc_servers_without_a_usable_weight_get_the_mean() {
    let c = grpc(10, 180);
    let mut svc = ServiceLaw::default();
    // A and B usable (200, 100), C in its blackout, D never reported.
    let mut laws = vec![ServerLaw::adopt(1); 4];
    for (i, qps) in [(0, 100.0), (1, 50.0)] {
        laws[i].update_signal(&c, s(0.0), load(qps, 0.5));
        laws[i].update_signal(&c, s(10.0), load(qps, 0.5));
    }
    laws[2].update_signal(&c, s(5.0), load(400.0, 0.5));
    let out = step(&mut svc, &c, s(10.0), &mut laws, &[false; 4]);
    assert_eq!((out[0], out[1]), (None, None), "usable weights are their own law's");
    let weights: Vec<u32> = laws.iter().map(ServerLaw::weight).collect();
    assert_eq!(weights, [200, 100, 150, 150]);
    match out[2].unwrap().law {
        LawInputs::Mean(m) => assert_eq!(m, MeanInputs { servers: 2, mean: 150 }),
        other => panic!("{other:?}"),
    }
    // At 190 s B's weight has expired (last report 10 s): fewer than two usable weights,
    // every server gets A's... which has expired too: none usable, the mean of the current
    // weights (200 + 100 + 150 + 150) / 4 = 150 for all (round robin).
    let out = step(&mut svc, &c, s(190.0), &mut laws, &[false; 4]);
    assert!(out.iter().all(Option::is_some));
    // A server given the mean is not usable again before its own law sets its weight.
    let LawKind::GrpcWrr(g) = c.kind else { unreachable!() };
    assert!(!laws[2].grpc_usable(&g, s(190.0)));
    assert_eq!(laws.iter().map(ServerLaw::weight).collect::<Vec<_>>(), [150; 4]);
    // Only A reports again (blackout 0 here): one usable weight, every server gets it.
    let c0 = grpc(0, 180);
    laws[0].update_signal(&c0, s(191.0), load(300.0, 0.5));
    let out = step(&mut svc, &c0, s(191.0), &mut laws, &[true, false, false, false]);
    assert_eq!(laws.iter().map(ServerLaw::weight).collect::<Vec<_>>(), [600; 4]);
    match out[1].unwrap().law {
        LawInputs::Mean(m) => assert_eq!(m, MeanInputs { servers: 1, mean: 600 }),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_capacity_law_has_no_step() {
    let c = LawConfig::default();
    let mut svc = ServiceLaw::default();
    let mut laws = vec![ServerLaw::adopt(3), ServerLaw::adopt(9)];
    assert_eq!(step(&mut svc, &c, s(1.0), &mut laws, &[true, true]), [None, None]);
}

#[test]
fn validate_checks_prequal_and_the_grpc_periods() {
    assert!(prequal(16, 0.84).validate().is_ok());
    for (c, name) in [
        (prequal(0, 0.84), "pool_size"),
        (prequal(Prequal::MAX_POOL_SIZE + 1, 0.84), "pool_size"),
        (prequal(16, 1.5), "q_rif"),
        (prequal(16, f64::NAN), "q_rif"),
        (grpc(10, 0), "weight_expiration_period"),
    ] {
        assert!(c.validate().unwrap_err().contains(name), "{c:?}");
    }
    let no_age = LawConfig {
        kind: LawKind::Prequal(Prequal { max_age: Duration::ZERO, ..Prequal::default() }),
        ..LawConfig::default()
    };
    assert!(no_age.validate().unwrap_err().contains("max_age"));
}

fn any_prequal() -> impl Strategy<Value = (LawConfig, Vec<(u32, f64, Option<f64>)>)> {
    let cfg = (1u32..40, 0u32..20, 0u32..200, 1u32..=100, 0.0f64..=1.0).prop_map(
        |(pool_size, min, extra, alpha, q_rif)| LawConfig {
            min_weight: min,
            max_weight: min + 1 + extra,
            smoothing: f64::from(alpha) / 100.0,
            dead_band: 0,
            max_step: 0,
            slow_start: Duration::ZERO,
            kind: LawKind::Prequal(Prequal { pool_size, max_age: Duration::from_secs(5), q_rif }),
        },
    );
    let probes = proptest::collection::vec((0u32..6, 0.0f64..50.0, proptest::option::of(0.0f64..0.5)), 1..60);
    (cfg, probes)
}

proptest! {
    #[test]
    fn prequal_weights_stay_in_the_clamps_and_follow_hcl((c, probes) in any_prequal()) {
        let mut svc = ServiceLaw::default();
        let mut laws = vec![ServerLaw::adopt(c.min_weight); 6];
        for (i, (key, rif, lat)) in probes.iter().enumerate() {
            let now = Time(i as u64 * 100_000_000);
            let sig = Signal { capacity: 0.5, qps: None, eps: None, rif: Some(*rif), latency: *lat };
            svc.observe(&c, now, *key, &sig);
            prop_assert!(svc.pool().len() <= c_pool(&c));
            let mut reported = [false; 6];
            reported[*key as usize] = true;
            let out = step(&mut svc, &c, now, &mut laws, &reported);
            for law in &laws {
                prop_assert!(law.weight() >= c.min_weight && law.weight() <= c.max_weight);
            }
            // Unsmoothed, a hot server's raw weight never exceeds any cold server's.
            let raws: Vec<PrequalInputs> = out.iter().flatten().filter_map(|u| match u.law {
                LawInputs::Prequal(p) => Some(p),
                _ => None,
            }).collect();
            for p in &raws {
                prop_assert!(p.raw <= f64::from(c.max_weight) + 1e-9 && p.raw >= 0.0, "{p:?}");
                prop_assert_eq!(p.hot, p.rif > p.threshold);
            }
        }
    }
}

fn c_pool(c: &LawConfig) -> usize {
    match c.kind {
        LawKind::Prequal(q) => q.pool_size as usize,
        _ => unreachable!(),
    }
}

#[test]
fn hot_never_outweighs_cold_in_one_step() {
    // Every server reports at once, unsmoothed: each hot weight ≤ each cold weight.
    let c = prequal(16, 0.5);
    let mut svc = ServiceLaw::default();
    let cases = [(0.0, 3.0), (3.0, 1.0), (9.0, 0.5), (2.0, 50.0), (5.0, 2.0), (1.0, 8.0)];
    for (i, (rif, ms)) in cases.into_iter().enumerate() {
        svc.observe(&c, s(1.0), i as u32, &probe(rif, ms));
    }
    let mut laws = vec![ServerLaw::adopt(1); 6];
    let out = step(&mut svc, &c, s(1.0), &mut laws, &[true; 6]);
    let (mut hot, mut cold) = (Vec::new(), Vec::new());
    for u in out.iter().flatten() {
        let LawInputs::Prequal(p) = u.law else { panic!("{u:?}") };
        if p.hot { hot.push(u.to) } else { cold.push(u.to) }
    }
    assert!(!hot.is_empty() && !cold.is_empty());
    assert!(hot.iter().max() <= cold.iter().min(), "hot {hot:?} cold {cold:?}");
}

proptest! {
    /// gRPC WRR's step: every weight stays in the clamps; with two or more usable weights
    /// (unlimited steps) each server without one gets exactly their rounded mean and the
    /// usable ones are left alone.
    #[test]
    fn grpc_step_gives_the_mean_to_servers_without_a_usable_weight(
        reports in proptest::collection::vec((0u32..6, 0u64..40, 1.0f64..400.0), 0..40),
        at_s in 0u64..60,
    ) {
        let c = LawConfig { max_weight: 1000, ..grpc(10, 30) };
        let LawKind::GrpcWrr(g) = c.kind else { unreachable!() };
        let mut laws = vec![ServerLaw::adopt(1); 6];
        let mut sorted = reports.clone();
        sorted.sort_by_key(|r| r.1);
        for (key, t, qps) in sorted {
            laws[key as usize].update_signal(&c, s(t as f64), load(qps, 0.5));
        }
        let now = s((40 + at_s) as f64 / 2.0);
        let usable: Vec<bool> = laws.iter_mut().map(|l| l.grpc_usable(&g, now)).collect();
        let before: Vec<u32> = laws.iter().map(ServerLaw::weight).collect();
        let out = step(&mut ServiceLaw::default(), &c, now, &mut laws, &[false; 6]);
        for law in &laws {
            prop_assert!(law.weight() >= c.min_weight && law.weight() <= c.max_weight);
        }
        let own: Vec<u32> = (0..6).filter(|&i| usable[i]).map(|i| before[i]).collect();
        for i in 0..6 {
            if usable[i] {
                prop_assert_eq!(out[i], None);
                prop_assert_eq!(laws[i].weight(), before[i]);
            } else if own.len() >= 2 {
                let mean = (own.iter().map(|&w| f64::from(w)).sum::<f64>() / own.len() as f64).round() as u32;
                prop_assert_eq!(laws[i].weight(), mean.clamp(c.min_weight, c.max_weight));
            }
        }
    }
}

#[test]
fn hostile_probes_keep_the_weights_in_the_clamps_and_the_pool_bounded() {
    let c = prequal(16, 0.84);
    let mut svc = ServiceLaw::default();
    let mut laws = vec![ServerLaw::adopt(50); 3];
    let wild = [
        (f64::MAX, Some(f64::MAX)),
        (0.0, Some(0.0)),
        (f64::MIN_POSITIVE, Some(f64::MIN_POSITIVE)),
        (1e300, None),
        (f64::NAN, Some(1.0)),
        (-5.0, Some(-1.0)),
        (f64::INFINITY, Some(f64::INFINITY)),
    ];
    // One agent floods the pool with a thousand reports between the others' two.
    for i in 0..1000u32 {
        let (rif, latency) = wild[i as usize % wild.len()];
        let key = if i % 500 == 0 { 1 + i / 500 % 2 } else { 0 };
        let sig = Signal { capacity: 0.5, qps: None, eps: None, rif: Some(rif), latency };
        svc.observe(&c, s(1.0), key, &sig);
        assert!(svc.pool().len() <= 16);
        let mut reported = [false; 3];
        reported[key as usize] = true;
        for u in step(&mut svc, &c, s(1.0), &mut laws, &reported).into_iter().flatten() {
            assert!(u.smoothed.is_finite(), "{u:?}");
            if let LawInputs::Prequal(p) = u.law {
                assert!(p.raw.is_finite() && p.raw >= 0.0, "{p:?}");
            }
        }
        for law in &laws {
            assert!((1..=100).contains(&law.weight()), "{i}: {law:?}");
        }
    }
}
