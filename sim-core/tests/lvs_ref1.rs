//! LVS-REF-1's oracles: the full model, configured as the reference benchmark's presets,
//! against exact queueing-theory values computed from their formulas (sim_core::theory).
//!
//! Each run has a pinned seed. The mean must lie within twice the run's own 95%
//! batch-means half-width of the exact value (about 4 standard errors), and that
//! half-width must be small (under 3% of the value, 4% for the heavy-tailed o2), so a
//! model biased by a few percent fails. Quantiles come from REF-1's log histogram (0.5% bucket error) and are checked
//! within 4%.

use sim_core::model::Simulation;
use sim_core::ref1::{Hold, Outputs, Preset, Ref1};
use sim_core::theory;

const CONNS: u64 = 1_000_000;

fn run(r: Ref1) -> Outputs {
    let report = Simulation::new(r.config()).expect("valid preset").run();
    let out = r.outputs(&report);
    eprintln!("{r:?}: {out:?}");
    out
}

#[track_caller]
fn assert_mean(out: &Outputs, exact: f64, what: &str) {
    assert_mean_within(out, exact, 0.03, what);
}

#[track_caller]
fn assert_mean_within(out: &Outputs, exact: f64, max_rel_ci: f64, what: &str) {
    let rel_ci = out.ci95_r / exact;
    assert!(rel_ci < max_rel_ci, "{what}: confidence interval too wide to judge ({:.2}%)", rel_ci * 100.0);
    assert!(
        (out.mean_r - exact).abs() <= 2.0 * out.ci95_r,
        "{what}: mean R {:.6} s, exact {:.6} s, 95% half-width {:.6} s",
        out.mean_r,
        exact,
        out.ci95_r
    );
}

#[track_caller]
fn assert_close(got: f64, exact: f64, rel: f64, what: &str) {
    assert!(
        (got - exact).abs() <= rel * exact,
        "{what}: got {got:.6}, exact {exact:.6} (±{:.1}%)",
        rel * 100.0
    );
}

#[test]
fn o1_mm1_processor_sharing() {
    let out = run(Preset::O1.run(CONNS, 1));
    assert_mean(&out, theory::mm1_mean_response(80.0, 100.0), "o1 E[R]");
    assert_close(out.util[0], 0.8, 0.01, "o1 utilisation");
    // Poisson arrivals in [0.1 T, T): 0.9 CONNS on average, standard deviation ~950.
    assert!((out.measured as f64 - 0.9 * CONNS as f64).abs() < 5.0 * (0.9 * CONNS as f64).sqrt());
}

#[test]
fn o2_mg1_processor_sharing_is_insensitive_to_the_demand_distribution() {
    let out = run(Preset::O2.run(2 * CONNS, 2));
    // Lognormal demand with SCV 9: same mean as o1 under PS. The heavy tail widens the
    // confidence interval (3% at 2e6 connections), hence 4%.
    assert_mean_within(&out, theory::mm1_mean_response(80.0, 100.0), 0.04, "o2 E[R]");
    assert_close(out.util[0], 0.8, 0.015, "o2 utilisation");
}

#[test]
fn o3_mm1_fcfs_mean_and_quantiles() {
    let out = run(Preset::O3.run(CONNS, 3));
    assert_mean(&out, theory::mm1_mean_response(80.0, 100.0), "o3 E[R]");
    assert_close(out.p50_r, theory::mm1_fcfs_response_quantile(80.0, 100.0, 0.5), 0.04, "o3 p50");
    assert_close(out.p99_r, theory::mm1_fcfs_response_quantile(80.0, 100.0, 0.99), 0.04, "o3 p99");
}

#[test]
fn o4_mm4_erlang_c() {
    let out = run(Preset::O4.run(CONNS, 4));
    assert_mean(&out, theory::mmc_mean_response(4, 320.0, 100.0), "o4 E[R]");
    assert_close(out.p50_r, theory::mmc_response_quantile(4, 320.0, 100.0, 0.5), 0.04, "o4 p50");
    assert_close(out.p99_r, theory::mmc_response_quantile(4, 320.0, 100.0, 0.99), 0.04, "o4 p99");
    assert_close(out.util[0], 0.8, 0.01, "o4 utilisation (busy slots / 4)");
}

#[test]
fn o5_round_robin_makes_each_server_an_erlang4_m_1_queue() {
    let out = run(Preset::O5.run(CONNS, 5));
    let sigma = theory::gi_m_1_erlang_sigma(4, 320.0, 100.0);
    assert_mean(&out, theory::gi_m_1_mean_response(sigma, 100.0), "o5 E[R]");
    for (i, s) in out.share.iter().enumerate() {
        // rr deals exactly every 4th connection to each server.
        assert!((s - 0.25).abs() < 1e-5, "server {i} got share {s}");
    }
}

#[test]
fn base_beats_random_dispatch_and_wlc_follows_capacity() {
    let wlc = run(Preset::Base.run(CONNS, 6));
    let rr = run(Ref1 { scheduler: lvs_sched::SchedulerKind::Rr, ..Preset::Base.run(CONNS, 6) });
    // Bernoulli dispatch in proportion to nothing (uniform) gives each C=1 server an
    // M/M/1-PS at rho 0.875 and the mean below; rr's Erlang-8 split must do better.
    let uniform = {
        let caps = [1.0, 1.0, 1.0, 1.0, 1.0, 1.5, 1.5, 2.0];
        caps.iter().map(|c| theory::mm1_mean_response(1000.0 / 8.0, c / 0.007)).sum::<f64>() / 8.0
    };
    assert!(rr.mean_r < uniform, "rr {:.4} s should beat random dispatch {uniform:.4} s", rr.mean_r);
    assert!(wlc.mean_r < rr.mean_r, "wlc {:.4} s should beat rr {:.4} s", wlc.mean_r, rr.mean_r);
    // wlc sends the heavier-weighted servers more connections than any weight-2 one, and
    // among equal servers its tie-break (keep the earlier) favours the list's front.
    let max_w2 = wlc.share[..5].iter().cloned().fold(0.0, f64::max);
    assert!(wlc.share[5] > max_w2 && wlc.share[7] > max_w2, "shares {:?}", wlc.share);
    assert!(wlc.share[0] > wlc.share[4], "shares {:?}", wlc.share);
}

#[test]
fn hold_keeps_finished_connections_inactive_and_counts_their_expiry() {
    let r = Ref1 { hold: Hold::UntilEnd, ..Preset::Base.run(20_000, 7) };
    let report = Simulation::new(r.config()).unwrap().run();
    let out = r.outputs(&report);
    // Every connection stays until the end: the table peaks at (nearly) all of them, and
    // each one's expiry is a model event.
    assert!(out.peak_inflight as f64 > 0.999 * report.ref1.arrivals as f64, "{out:?}");
    assert_eq!(report.ref1.expiries, report.ref1.arrivals);
    assert_eq!(out.model_events, 3 * report.ref1.arrivals);
}

#[test]
fn same_seed_same_results_different_seed_different_results() {
    let a = run(Preset::Base.run(50_000, 11));
    let b = run(Preset::Base.run(50_000, 11));
    let c = run(Preset::Base.run(50_000, 12));
    assert_eq!(a, b);
    assert_ne!(a.mean_r, c.mean_r);
}
