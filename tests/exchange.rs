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

#[test]
fn the_exchange_option_reaches_every_run_of_a_command() {
    let c = lvsim::commands::Common {
        file: "bench/lvs-ref1-base".into(),
        exchange: Exchange::PerMessage,
        ..Default::default()
    };
    let l = c.load(&[]).expect("a library scenario");
    assert_eq!(l.cluster.exchange, Exchange::PerMessage, "run");
    // Sweep points are rebuilt from the text: the option goes with them.
    let points = l.sweep_points().expect("its sweep");
    assert!(points.len() >= 2 && points.iter().all(|(_, p)| p.cluster.exchange == Exchange::PerMessage));
    let fast = lvsim::commands::Common { exchange: Exchange::Fast, ..c };
    assert_eq!(fast.load(&[]).unwrap().cluster.exchange, Exchange::Fast, "the default");
}

#[test]
fn lvsim_run_takes_exchange_and_refuses_a_wrong_one() {
    let lvsim = env!("CARGO_BIN_EXE_lvsim");
    let dir = std::env::temp_dir().join(format!("lvsim-exchange-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut files = Vec::new();
    for how in ["fast", "per-message"] {
        let out = dir.join(how);
        let st = std::process::Command::new(lvsim)
            .args(["run", "-q", "quickstart", "--exchange", how, "--set", "duration_s=10", "-o"])
            .arg(&out)
            .current_dir(&dir)
            .status()
            .unwrap();
        assert!(st.success(), "--exchange {how}");
        let mut v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
        // The only wall-clock figure.
        v.as_object_mut().unwrap().remove("wall_s").expect("summary.json has wall_s");
        files.push(v);
    }
    assert_eq!(files[0], files[1], "the same summary.json but for the wall time");
    let bad = std::process::Command::new(lvsim)
        .args(["run", "-q", "quickstart", "--exchange", "instant"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2), "a wrong --exchange is a usage error");
    assert!(String::from_utf8_lossy(&bad.stderr).contains("per-message"), "the choices are named");
    let _ = std::fs::remove_dir_all(&dir);
}
