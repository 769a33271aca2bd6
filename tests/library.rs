//! Every scenario of the library, run through the `lvsim` binary: `run` (whose `expect`
//! checks must hold: exit 0), `sweep` for those with sweep axes and `plan` for those with a
//! plan. The validation presets are also checked here against queueing theory computed
//! independently of the files (sim-core's formulas), within twice the run's own
//! batch-means confidence interval.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::cli::lvsim;
use serde_json::Value;
use sim_core::theory;

fn library() -> Vec<PathBuf> {
    common::deploy::library_files()
}

fn out_dir(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("library").join(name);
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn check(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_library_scenario_runs_and_its_checks_hold() {
    let files = library();
    let names: Vec<String> =
        files.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    // What the issue asks the library to hold.
    for want in [
        "quickstart.ron",
        "tutorial-nat.ron",
        "tutorial-dr.ron",
        "tutorial-tun.ron",
        "nat-vs-dr.ron",
        "heterogeneous.ron",
        "capacity-planning.ron",
        "lvs-ref1-base.ron",
        "o1-mm1-ps.ron",
        "o5-rr-ek-m-1.ron",
        "uneven-load.ron",
        "stability.ron",
        "health-checks.ron",
        "vrrp-failover.ron",
        "heartbeat-ipfail.ron",
        "second-failover.ron",
        "active-active.ron",
        "piranha.ron",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} missing from the library: {names:?}");
    }
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let rel = f.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap().display().to_string();
        assert!(text.starts_with("//"), "{rel} must open with a comment saying what it shows");
        let stem = f.file_stem().unwrap().to_string_lossy().into_owned();
        let dir = out_dir(&stem);
        let out = lvsim(&["run", "-q", &rel, "-o", dir.to_str().unwrap()]);
        check(&out, &format!("lvsim run {rel}"));
        assert!(dir.join("report.html").is_file(), "{rel}: no report.html");
        if text.contains("sweep:") {
            let d = out_dir(&format!("{stem}-sweep"));
            check(&lvsim(&["sweep", "-q", &rel, "-o", d.to_str().unwrap()]), &format!("lvsim sweep {rel}"));
            assert!(d.join("sweep.json").is_file());
        }
        if text.contains("plan: Plan(") {
            let d = out_dir(&format!("{stem}-plan"));
            check(&lvsim(&["plan", "-q", &rel, "-o", d.to_str().unwrap()]), &format!("lvsim plan {rel}"));
            let plan: Value =
                serde_json::from_str(&std::fs::read_to_string(d.join("plan.json")).unwrap()).unwrap();
            assert!(plan["answer"]["sizes"][0].is_u64(), "{rel}: the plan found no answer: {plan}");
        }
    }
}

fn summary(rel: &str) -> Value {
    let stem = Path::new(rel).file_stem().unwrap().to_string_lossy().into_owned();
    let dir = out_dir(&format!("oracle-{stem}"));
    let out = lvsim(&["run", "-q", rel, "-o", dir.to_str().unwrap()]);
    check(&out, rel);
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
}

/// |measured - exact| within twice the batch-means 95% half-width, and that half-width
/// itself small (the run is long enough to tell).
fn assert_mean(s: &Value, exact_ms: f64, max_rel_ci: f64, what: &str) {
    let mean = s["latency_ms"]["mean"].as_f64().unwrap();
    let ci = s["latency_ms"]["mean_ci95"].as_f64().unwrap();
    assert!(ci > 0.0 && ci < max_rel_ci * exact_ms, "{what}: half-width {ci} ms too wide");
    assert!((mean - exact_ms).abs() <= 2.0 * ci, "{what}: mean {mean} ms, exact {exact_ms} ms, ±{ci}");
}

fn assert_quantile(s: &Value, key: &str, exact_ms: f64, rel: f64, what: &str) {
    let q = s["latency_ms"][key].as_f64().unwrap();
    assert!((q - exact_ms).abs() <= rel * exact_ms, "{what}: {key} {q} ms, exact {exact_ms} ms");
}

#[test]
fn validation_scenarios_reproduce_the_oracles() {
    let (lambda1, mu1) = (80.0, 100.0);
    let s = summary("scenarios/library/validation/o1-mm1-ps.ron");
    assert_mean(&s, 1e3 * theory::mm1_mean_response(lambda1, mu1), 0.03, "o1 M/M/1-PS");
    let u = s["real_servers"][0]["utilization"].as_f64().unwrap();
    assert!((u - 0.8).abs() < 0.01, "o1 utilisation {u}");

    let s = summary("scenarios/library/validation/o2-mg1-ps-lognormal.ron");
    assert_mean(&s, 1e3 * theory::mm1_mean_response(lambda1, mu1), 0.04, "o2 M/G/1-PS");

    let s = summary("scenarios/library/validation/o3-mm1-fcfs.ron");
    assert_mean(&s, 1e3 * theory::mm1_mean_response(lambda1, mu1), 0.03, "o3 M/M/1-FCFS");
    for (key, q) in [("p50", 0.5), ("p99", 0.99)] {
        let exact = 1e3 * theory::mm1_fcfs_response_quantile(lambda1, mu1, q);
        assert_quantile(&s, key, exact, 0.03, "o3");
    }

    let s = summary("scenarios/library/validation/o4-mm4-erlang-c.ron");
    assert_mean(&s, 1e3 * theory::mmc_mean_response(4, 320.0, 100.0), 0.03, "o4 M/M/4");
    for (key, q) in [("p50", 0.5), ("p99", 0.99)] {
        let exact = 1e3 * theory::mmc_response_quantile(4, 320.0, 100.0, q);
        assert_quantile(&s, key, exact, 0.03, "o4");
    }

    let s = summary("scenarios/library/validation/o5-rr-ek-m-1.ron");
    let sigma = theory::gi_m_1_erlang_sigma(4, 320.0, 100.0);
    assert_mean(&s, 1e3 * theory::gi_m_1_mean_response(sigma, 100.0), 0.03, "o5 E4/M/1");
    let conns: Vec<u64> =
        s["real_servers"].as_array().unwrap().iter().map(|r| r["connections"].as_u64().unwrap()).collect();
    let (lo, hi) = (conns.iter().min().unwrap(), conns.iter().max().unwrap());
    assert!(hi - lo <= 1, "rr must split exactly: {conns:?}");

    // base: below random dispatch's M/M/1-PS bound (38.58 ms), and wlc below rr's 22.6.
    let s = summary("scenarios/library/bench/lvs-ref1-base.ron");
    let mean = s["latency_ms"]["mean"].as_f64().unwrap();
    assert!(mean < 22.6, "base wlc mean {mean} ms");
}
