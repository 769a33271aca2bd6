//! The web-farm benchmark: the library scenario `bench/web-farm` (a DR director behind
//! links with latency and bandwidth, eight worker-pool web servers with their own
//! uplinks, a shared database, keep-alive browsers with think times) run by the
//! simulator with the fast path of an exchange (`Exchange::Fast`, the default) and
//! message by message (`Exchange::PerMessage`), one after the other in the same process.
//!
//! ```text
//! cargo bench -p lvsim --bench web_farm              # 3 rounds of the scenario as written
//! cargo bench -p lvsim --bench web_farm -- 120       # 120 simulated seconds instead
//! cargo bench -p lvsim --bench web_farm -- --model   # the fast path alone (profiling)
//! ```
//!
//! Figures are per second of the thread's CPU time in the event loop (set-up excluded):
//! connections and engine events. Both paths must give the same summary.json (checked
//! here on every round; `tests/exchange.rs` checks every library scenario).

use std::path::Path;

use sim_core::model::{ClusterConfig, Exchange, RunReport, Simulation};

/// Rounds of each path.
const ROUNDS: usize = 3;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let sets: Vec<String> =
        args.iter().filter(|a| !a.starts_with("--")).map(|s| format!("duration_s={s}")).collect();
    let l = scenarios::library::load(Path::new("bench/web-farm"), &sets, &[], None)
        .unwrap_or_else(|e| panic!("bench/web-farm: {e}"));
    if args.iter().any(|a| a == "--model") {
        let (cps, eps, _) = run(&l.cluster, Exchange::Fast);
        return println!("web-farm, fast path alone: {cps:.0} connections/s, {eps:.0} events/s");
    }
    let secs = l.cluster.duration.as_nanos() as f64 / 1e9;
    println!("web-farm ({secs} simulated s): fast path against message by message, one core, CPU time");
    println!(
        "{:>5} {:>12} {:>12} {:>14} {:>14} {:>9} {:>10}",
        "round", "fast c/s", "per-msg c/s", "fast events/s", "p-m events/s", "fast/p-m", "events"
    );
    let mut ratios = Vec::new();
    for round in 1..=ROUNDS {
        let (fast_cps, fast_eps, fast) = run(&l.cluster, Exchange::Fast);
        let (slow_cps, slow_eps, slow) = run(&l.cluster, Exchange::PerMessage);
        let meta = lvsim::commands::meta(&l, 0.0);
        let same = reports::summary_json(&reports::summary(&meta, &fast))
            == reports::summary_json(&reports::summary(&meta, &slow));
        assert!(same, "the fast path and the per-message walk give the same summary.json");
        let ratio = fast_cps / slow_cps;
        println!(
            "{round:>5} {fast_cps:>12.0} {slow_cps:>12.0} {fast_eps:>14.0} {slow_eps:>14.0} {ratio:>9.3} {:>10}",
            fast.engine_events
        );
        ratios.push(ratio);
    }
    ratios.sort_by(f64::total_cmp);
    println!("fast / per-message, min / median of {ROUNDS}: {:.3} / {:.3}", ratios[0], ratios[ROUNDS / 2]);
}

/// One run: (connections per CPU second, engine events per CPU second, the report).
fn run(cfg: &ClusterConfig, exchange: Exchange) -> (f64, f64, RunReport) {
    let sim = Simulation::new(ClusterConfig { exchange, ..cfg.clone() }).expect("the scenario simulates");
    let t0 = cpu_seconds();
    let report = sim.run();
    let cpu = cpu_seconds() - t0;
    (report.ref1.arrivals as f64 / cpu, report.engine_events as f64 / cpu, report)
}

/// CPU time of this thread [s] (`/proc/thread-self/schedstat`, its first field in ns).
fn cpu_seconds() -> f64 {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").expect("linux /proc");
    let ns: u64 = text.split_whitespace().next().and_then(|w| w.parse().ok()).expect("schedstat");
    ns as f64 / 1e9
}
