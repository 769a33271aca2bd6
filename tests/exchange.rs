//! The fast path of an exchange (`Exchange::Fast`, the default) against the message-by-
//! message walk (`Exchange::PerMessage`, the reference): every library scenario, run once
//! each way with the same seed, gives a byte-identical summary.json and the same full run
//! report (its `Debug` text: every counter, histogram quantile, time series, IPVS table
//! and channel). The summary's one wall-clock field (`wall_s`) is the same constant for
//! both, so the comparison is of the whole file.
//!
//! The long validation presets (10^6 connections each) run shortened to keep this test
//! within CI's budget in a debug build; the others run as written.

use std::path::Path;

use sim_core::arrival::ArrivalProcess;
use sim_core::model::{ClusterConfig, Exchange, Simulation};

/// A scenario of more connections than this runs for a shorter time.
const MAX_CONNECTIONS: f64 = 150_000.0;

fn run(l: &scenarios::Loaded, cfg: ClusterConfig) -> (String, String) {
    let report = Simulation::new(cfg).expect("a library scenario simulates").run();
    let summary = reports::summary(&lvsim::commands::meta(l, 0.0), &report);
    (reports::summary_json(&summary), format!("{report:?}"))
}

/// The scenario, shortened (duration and warm-up scaled alike) if it offers more than
/// [`MAX_CONNECTIONS`].
fn load(path: &Path) -> scenarios::Loaded {
    let l = scenarios::load(path, &[]).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let secs = l.cluster.duration.as_nanos() as f64 / 1e9;
    let rate = |a: &ArrivalProcess| match a {
        ArrivalProcess::Poisson { rate } | ArrivalProcess::Constant { rate } => *rate,
        _ => 0.0,
    };
    let offered: f64 = l.cluster.populations.iter().map(|p| rate(&p.arrival) * secs).sum();
    if offered <= MAX_CONNECTIONS || !l.scenario.events.is_empty() {
        return l;
    }
    let k = MAX_CONNECTIONS / offered;
    let mut sets = vec![format!("duration_s={}", secs * k)];
    if l.scenario.warmup_s > 0.0 {
        sets.push(format!("warmup_s={}", l.scenario.warmup_s * k));
    }
    scenarios::load(path, &sets).unwrap_or_else(|e| panic!("{} {sets:?}: {e}", path.display()))
}

#[test]
fn every_library_scenario_gives_the_same_results_both_ways() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/library");
    let files = lvsim::commands::list::library_files(&root);
    assert!(files.len() >= 20, "the library has its scenarios: {files:?}");
    for path in &files {
        let l = load(path);
        let name = path.strip_prefix(&root).unwrap().display().to_string();
        let fast = ClusterConfig { exchange: Exchange::Fast, ..l.cluster.clone() };
        let slow = ClusterConfig { exchange: Exchange::PerMessage, ..l.cluster.clone() };
        let (fast_json, fast_report) = run(&l, fast);
        let (slow_json, slow_report) = run(&l, slow);
        if fast_json != slow_json {
            let line = fast_json.lines().zip(slow_json.lines()).position(|(a, b)| a != b);
            let show = |s: &str| line.and_then(|i| s.lines().nth(i)).unwrap_or("(length)").to_owned();
            panic!(
                "{name}: summary.json differs at line {:?}:\n  fast:        {}\n  per-message: {}",
                line.map(|i| i + 1),
                show(&fast_json),
                show(&slow_json)
            );
        }
        assert!(fast_report == slow_report, "{name}: the run reports differ beyond summary.json");
        assert!(fast_json.contains("\"completed\""), "{name}: a summary with connections");
    }
}
