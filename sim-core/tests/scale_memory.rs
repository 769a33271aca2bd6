//! The memory bound of issue 20: without full per-server detail a real server costs less
//! than 16 KiB. Two child processes (this test executable with `--child`) run the same
//! short farm with 100,000 and with 8 real servers; the difference of their peak resident
//! sets (VmHWM) divided by the difference of servers must stay under the bound. A harness
//! of its own (`harness = false`) so that each child's VmHWM is its own run's.

#[path = "common/rss.rs"]
mod rss;
#[path = "common/scale.rs"]
mod scale;

use lvs_sched::SchedulerKind;
use scale::Farm;
use sim_core::model::ServerDetail;

/// The bound per real server without full detail [bytes].
const MAX_BYTES_PER_SERVER: f64 = 16.0 * 1024.0;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        return Farm::parse(&args[i + 1..]).child();
    }
    let exe = std::env::current_exe().expect("own path");
    // 20,000 connections over 100,000 servers: every server is set up, a fifth serve.
    let farm = |servers| Farm {
        servers,
        scheduler: SchedulerKind::Wrr,
        rate: 1e6,
        demand_s: 0.010,
        duration_s: 0.02,
        detail: ServerDetail::Auto,
    };
    let (small, large) = (farm(8).measure(&exe), farm(100_000).measure(&exe));
    assert!(small.detail, "8 servers keep full detail under Auto");
    assert!(!large.detail, "100,000 servers keep no full detail under Auto");
    assert!(large.conns > 15_000, "the farm ran: {} connections", large.conns);
    let per = (large.peak_rss as f64 - small.peak_rss as f64) / (100_000 - 8) as f64;
    println!(
        "scale_memory: {per:.0} bytes per real server (peak RSS {} MiB at 100,000 servers, {} MiB at 8; set-up {:.1} s, run {:.1} s)",
        large.peak_rss >> 20,
        small.peak_rss >> 20,
        large.setup_s,
        large.run_s
    );
    assert!(per < MAX_BYTES_PER_SERVER, "{per:.0} bytes per real server, above {MAX_BYTES_PER_SERVER}");
    // Full detail costs more per server (the same farm with a tenth of the servers): the
    // measurement sees what it is meant to see.
    let full = Farm { detail: ServerDetail::Full, ..farm(10_000) }.measure(&exe);
    assert!(full.detail);
    let per_full = (full.peak_rss as f64 - small.peak_rss as f64) / (10_000 - 8) as f64;
    println!("scale_memory: {per_full:.0} bytes per real server with full detail");
    assert!(per_full > per, "full detail {per_full:.0} bytes per server, compact {per:.0}");
}
