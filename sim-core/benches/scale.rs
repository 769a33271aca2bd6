//! Cost per real server: bytes per server without full detail, the peak resident set of
//! 100,000 real servers at 1 M connections/s for 10 simulated seconds, and the time per
//! connection at 100,000 servers against 8 for the schedulers that do not scan the list.
//!
//! ```text
//! cargo bench -p sim-core --bench scale                    # everything (a few minutes)
//! cargo bench -p sim-core --bench scale -- --time          # time per connection only
//! cargo bench -p sim-core --bench scale -- --memory        # memory only
//! cargo bench -p sim-core --bench scale -- --servers 20000 # another large size
//! ```
//!
//! Every run is a child process (this executable with `--child`), so that its peak
//! resident set (VmHWM) is its own. Time per connection is the wall time of the event loop
//! and the report divided by the connections that arrived (set-up is printed apart). The
//! small and the large farm get the same arrival rate and the same utilisation per server
//! (the mean demand grows with the servers), so that the IPVS table holds as many entries
//! in both and only the number of servers differs; each pair runs 3 times, one right
//! after the other, and the min and median of the ratio are printed.

#[path = "../tests/common/rss.rs"]
mod rss;
#[path = "../tests/common/scale.rs"]
mod scale;

use lvs_sched::SchedulerKind;
use scale::Farm;
use sim_core::model::ServerDetail;

/// Utilisation of each server in the time runs.
const RHO: f64 = 0.5;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        return Farm::parse(&args[i + 1..]).child();
    }
    let large = args
        .iter()
        .position(|a| a == "--servers")
        .map_or(100_000, |i| args[i + 1].parse().expect("--servers N"));
    let (time, memory) = match (args.contains(&"--time".into()), args.contains(&"--memory".into())) {
        (false, false) => (true, true),
        other => other,
    };
    let exe = std::env::current_exe().expect("own path");
    if memory {
        memory_figures(&exe, large);
    }
    if time {
        time_figures(&exe, large);
    }
}

/// Bytes per server (idle farms of `large` and 8 servers) and the headline run.
fn memory_figures(exe: &std::path::Path, large: usize) {
    let idle = |servers| Farm {
        servers,
        scheduler: SchedulerKind::Wrr,
        rate: 1000.0,
        demand_s: 0.010,
        duration_s: 0.1,
        detail: ServerDetail::Auto,
    };
    let (small, big) = (idle(8).measure(exe), idle(large).measure(exe));
    assert!(!big.detail, "{large} servers keep no full detail under Auto");
    let per = (big.peak_rss - small.peak_rss) as f64 / (large - 8) as f64;
    println!(
        "bytes per real server (wrr, no full detail, {large} vs 8 servers, 100 connections): {per:.0} ({:.1} KiB); set-up {:.2} s",
        per / 1024.0,
        big.setup_s
    );
    let full = Farm { detail: ServerDetail::Full, ..idle(large / 10) }.measure(exe);
    let per_full = (full.peak_rss - small.peak_rss) as f64 / (large / 10 - 8) as f64;
    println!(
        "  with full detail ({} servers, histograms still empty): {per_full:.0} bytes per server",
        large / 10
    );
    let head = Farm {
        servers: large,
        scheduler: SchedulerKind::Wrr,
        rate: 1e6,
        demand_s: 0.010,
        duration_s: 10.0,
        detail: ServerDetail::Auto,
    };
    let m = head.measure(exe);
    println!(
        "{large} real servers, wrr, DR, 1 M conn/s for 10 s: peak RSS {:.0} MiB ({:.2} GiB), {} connections, set-up {:.2} s, run {:.1} s",
        m.peak_rss as f64 / 1048576.0,
        m.peak_rss as f64 / 1073741824.0,
        m.conns,
        m.setup_s,
        m.run_s
    );
}

/// Time per connection at `large` servers against 8, per scheduler.
fn time_figures(exe: &std::path::Path, large: usize) {
    let rate = 1e6;
    let conns = 500_000.0;
    println!(
        "time per connection, {large} vs 8 servers (rate {rate} conn/s, rho {RHO}, {conns} connections)"
    );
    println!(
        "{:>6} {:>12} {:>12} {:>10} {:>10} {:>12}",
        "sched", "8: ns/conn", "N: ns/conn", "ratio min", "ratio med", "N: set-up s"
    );
    for scheduler in [SchedulerKind::Wrr, SchedulerKind::Mh, SchedulerKind::Sh, SchedulerKind::Dh] {
        let farm = |servers: usize| Farm {
            servers,
            scheduler,
            rate,
            // rho = rate · demand / (servers · 2 cores), over the servers the scheduler can
            // pick (sh and dh name 256 in their table, mh 4093).
            demand_s: RHO * reachable(scheduler, servers) as f64 * 2.0 / rate,
            duration_s: conns / rate,
            detail: ServerDetail::Auto,
        };
        let mut rows = Vec::new();
        for _ in 0..3 {
            let s = farm(8).measure(exe);
            let l = farm(large).measure(exe);
            let per = |m: &scale::Measured| m.run_s * 1e9 / m.conns as f64;
            rows.push((per(&s), per(&l), l.setup_s));
        }
        let mut ratios: Vec<f64> = rows.iter().map(|r| r.1 / r.0).collect();
        ratios.sort_by(f64::total_cmp);
        let med = |i: usize| {
            let mut v: Vec<f64> = rows.iter().map(|r| [r.0, r.1, r.2][i]).collect();
            v.sort_by(f64::total_cmp);
            v[1]
        };
        println!(
            "{:>6} {:>12.0} {:>12.0} {:>10.2} {:>10.2} {:>12.2}",
            scheduler.name(),
            med(0),
            med(1),
            ratios[0],
            ratios[1],
            med(2)
        );
    }
}

/// The servers a scheduler can pick among `servers`.
fn reachable(scheduler: SchedulerKind, servers: usize) -> usize {
    scheduler.table_size().map_or(servers, |t| servers.min(t as usize))
}
