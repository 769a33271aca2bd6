//! The Prequal law in the simulator, through the `lvsim` binary: on a cluster whose
//! bottleneck is a per-server lock (feedback/lock-bound.ron), the laws that read the CPU
//! leave the slow server its share and Prequal, reading requests in flight and latency,
//! takes load off it; and the same scenario and seed give the same results.

mod common;

use common::cli::{lvsim_in, scratch, text};
use serde_json::Value;

const SCENARIO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/library/feedback/lock-bound.ron");

/// Runs the scenario with `sets` in `dir/out`; its summary.
fn run(dir: &std::path::Path, out: &str, sets: &[&str]) -> Value {
    let mut args = vec!["run", "-q", "--no-progress", SCENARIO, "-o", out];
    for s in sets {
        args.extend(["--set", s]);
    }
    let o = lvsim_in(dir, &args);
    // Exit 3: an `expect` failed (the capacity law misses the p99 target, as it should).
    assert!(matches!(o.status.code(), Some(0 | 3)), "{args:?}: {}\n{}", text(&o.stdout), text(&o.stderr));
    serde_json::from_str(&std::fs::read_to_string(dir.join(out).join("summary.json")).unwrap()).unwrap()
}

/// Each real server's share of the connections, by name.
fn shares(s: &Value) -> Vec<(String, f64)> {
    let rs = s["real_servers"].as_array().unwrap();
    let total: f64 = rs.iter().map(|r| r["connections"].as_f64().unwrap()).sum();
    rs.iter()
        .map(|r| (r["name"].as_str().unwrap().to_owned(), r["connections"].as_f64().unwrap() / total))
        .collect()
}

fn p99(s: &Value) -> f64 {
    s["latency_ms"]["p99"].as_f64().unwrap()
}

#[test]
fn prequal_takes_load_off_a_server_whose_lock_is_slow_and_the_cpu_laws_do_not() {
    let d = scratch("prequal-lock-bound");
    let capacity = run(&d, "capacity", &["feedback.law=capacity"]);
    let prequal = run(&d, "prequal", &[]);
    assert_eq!(prequal["feedback"]["law"], "prequal");
    let slow = |s: &Value| shares(s).into_iter().find(|(n, _)| n == "slow1").unwrap().1;
    // The capacity law sees idle processors: slow1 keeps about its quarter.
    assert!(slow(&capacity) > 0.2, "capacity: {:?}", shares(&capacity));
    // Prequal: slow1 is hot (its requests wait for its lock) and gets well under it.
    assert!(slow(&prequal) < 0.17, "prequal: {:?}", shares(&prequal));
    assert!(
        p99(&prequal) < 0.7 * p99(&capacity),
        "p99 prequal {} capacity {}",
        p99(&prequal),
        p99(&capacity)
    );
    // Its weight is the lowest at the end, and the agents reported.
    let weight = |n: &str| {
        let rs = prequal["real_servers"].as_array().unwrap();
        rs.iter().find(|r| r["name"] == n).unwrap()["weight_final"].as_u64().unwrap()
    };
    for web in ["web1", "web2", "web3"] {
        assert!(weight("slow1") < weight(web), "slow1 {} {web} {}", weight("slow1"), weight(web));
    }
    assert!(prequal["feedback"]["reports_applied"].as_u64().unwrap() > 400);
    // Same scenario, same seed: the same results.
    let again = run(&d, "prequal-again", &[]);
    assert_eq!(prequal["latency_ms"], again["latency_ms"]);
    assert_eq!(prequal["real_servers"], again["real_servers"]);
}
