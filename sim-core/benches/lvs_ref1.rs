//! LVS-REF-1 benchmark: the full lvsim model, with the fast path of an exchange
//! (`Exchange::Fast`, the default) and message by message (`Exchange::PerMessage`),
//! against a minimal hand-written event loop of the same scenario, measured in the same
//! process; and the memory probe.
//!
//! ```text
//! cargo bench -p sim-core --bench lvs_ref1                 # 1e6 and 1e7, memory at 1e6
//! cargo bench -p sim-core --bench lvs_ref1 -- 1e5          # other sizes
//! cargo bench -p sim-core --bench lvs_ref1 -- --memory 1e7 # the hold = T probe at 1e7
//! cargo bench -p sim-core --bench lvs_ref1 -- --model 1e6  # the model alone (profiling)
//! cargo bench -p sim-core --bench lvs_ref1 -- --model 1e6 --per-message
//! ```
//!
//! Connections per second count arrivals processed per second of the thread's CPU time
//! in the event loop (set-up excluded): CPU time, not wall time, so that other processes
//! on a shared machine slow the figures less (they still share caches and memory
//! bandwidth). Each size runs three rounds, each round the minimal loop, the fast path and
//! the per-message path one after the other; the ratios to the minimal loop of the same
//! round are printed, then their minimum and median. Bytes per in-flight connection come
//! from the peak resident set of a child process running the hold = T variant, minus that
//! of the same run at 1000 connections, divided by the peak number of connections in the
//! table.

#[path = "../tests/common/rss.rs"]
mod rss;

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rand::RngCore;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;
use sim_core::model::{ClusterConfig, Exchange, RunReport, Simulation};
use sim_core::ref1::{Hold, Preset, Ref1};

/// Rounds per size.
const ROUNDS: usize = 3;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    if let Some(i) = args.iter().position(|a| a == "--probe") {
        let conns = parse_count(&args[i + 1]);
        return probe(conns);
    }
    if let Some(i) = args.iter().position(|a| a == "--model") {
        // The model alone (for profilers).
        let exchange =
            if args.iter().any(|a| a == "--per-message") { Exchange::PerMessage } else { Exchange::Fast };
        let (cps, _) = model(&Preset::Base.run(parse_count(&args[i + 1]), 1), exchange);
        return println!("lvsim alone ({exchange:?}): {cps:.0} connections/s");
    }
    if let Some(i) = args.iter().position(|a| a == "--memory") {
        return memory(parse_count(&args[i + 1]));
    }
    let sizes: Vec<u64> = if args.is_empty() {
        vec![1_000_000, 10_000_000]
    } else {
        args.iter().map(|a| parse_count(a)).collect()
    };
    println!("LVS-REF-1 base (wlc, exponential demand, 8 PS servers, rho 0.7), one core, CPU time");
    println!(
        "{:>10} {:>5} {:>12} {:>12} {:>12} {:>7} {:>7} {:>9} {:>15} {:>9}",
        "conns",
        "round",
        "minimal c/s",
        "fast c/s",
        "per-msg c/s",
        "fast/",
        "p-m/",
        "fast/p-m",
        "mean R (ms)",
        "events"
    );
    for &n in &sizes {
        let r = Preset::Base.run(n, 1);
        let mut ratios = Vec::new();
        for round in 1..=ROUNDS {
            let (base_cps, base_r) = minimal_loop(n, 1);
            let (fast_cps, fast) = model(&r, Exchange::Fast);
            let (slow_cps, slow) = model(&r, Exchange::PerMessage);
            let (out, slow_out) = (r.outputs(&fast), r.outputs(&slow));
            assert_eq!(out, slow_out, "the fast path and the per-message walk agree");
            let row = [fast_cps / base_cps, slow_cps / base_cps, fast_cps / slow_cps];
            println!(
                "{n:>10} {round:>5} {base_cps:>12.0} {fast_cps:>12.0} {slow_cps:>12.0} {:>7.3} {:>7.3} {:>9.2} {:>6.2} / {:>6.2} {:>9}",
                row[0],
                row[1],
                row[2],
                out.mean_r * 1e3,
                base_r * 1e3,
                out.model_events
            );
            ratios.push(row);
        }
        let stat = |k: usize| {
            let mut v: Vec<f64> = ratios.iter().map(|r| r[k]).collect();
            v.sort_by(f64::total_cmp);
            (v[0], v[v.len() / 2])
        };
        let ((f0, f1), (s0, s1), (q0, q1)) = (stat(0), stat(1), stat(2));
        println!(
            "{n:>10} ratio to the minimal loop, min / median of {ROUNDS}: fast {f0:.3} / {f1:.3}, \
             per-message {s0:.3} / {s1:.3}; fast / per-message {q0:.2} / {q1:.2}"
        );
    }
    if args.is_empty() {
        memory(1_000_000);
    }
}

/// Runs `r` with `exchange`: (connections per CPU second, the report).
fn model(r: &Ref1, exchange: Exchange) -> (f64, RunReport) {
    let sim = Simulation::new(ClusterConfig { exchange, ..r.config() }).expect("valid preset");
    let t0 = cpu_seconds();
    let report = sim.run();
    let cps = report.ref1.arrivals as f64 / (cpu_seconds() - t0);
    (cps, report)
}

/// CPU time of this thread [s] (`/proc/thread-self/schedstat`, its first field in ns).
fn cpu_seconds() -> f64 {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").expect("linux /proc");
    let ns: u64 = text.split_whitespace().next().and_then(|w| w.parse().ok()).expect("schedstat");
    ns as f64 / 1e9
}

fn parse_count(s: &str) -> u64 {
    s.parse::<f64>().unwrap_or_else(|_| panic!("not a count: {s}")) as u64
}

/// Runs the hold = T variant in child processes and reports bytes per connection.
fn memory(conns: u64) {
    let exe = std::env::current_exe().expect("own path");
    let run = |n: u64| -> (u64, u64) {
        let out =
            std::process::Command::new(&exe).args(["--probe", &n.to_string()]).output().expect("probe runs");
        let text = String::from_utf8_lossy(&out.stdout);
        let mut it = text.split_whitespace().map(|w| w.parse::<u64>().expect("probe prints numbers"));
        (it.next().expect("peak rss"), it.next().expect("peak inflight"))
    };
    let (rss0, _) = run(1000);
    let (rss, inflight) = run(conns);
    let per = (rss - rss0) as f64 / inflight as f64;
    println!(
        "memory probe (hold = T) at {conns} connections: peak {inflight} in flight, peak RSS {} MiB, {per:.1} bytes per in-flight connection",
        rss >> 20
    );
}

/// Child: one hold = T run; prints peak RSS [bytes] and peak in-flight connections.
fn probe(conns: u64) {
    let r = Ref1 { hold: Hold::UntilEnd, ..Preset::Base.run(conns, 1) };
    let report = Simulation::new(r.config()).expect("valid preset").run();
    println!("{} {}", rss::peak_rss(), report.ref1.peak_inflight);
}

/// The minimal hand-written loop of LVS-REF-1 `base`: a BinaryHeap of (time, seq, event),
/// a slab of jobs, processor sharing by virtual time, wlc over the 8 servers.
/// Returns (connections per second of CPU time, mean response time [s]).
fn minimal_loop(conns: u64, seed: u64) -> (f64, f64) {
    const CAP: [f64; 8] = [1.0, 1.0, 1.0, 1.0, 1.0, 1.5, 1.5, 2.0];
    const W: [u64; 8] = [2, 2, 2, 2, 2, 3, 3, 4];
    let lambda = 1000.0;
    let t_end = conns as f64 / lambda;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut u = move || ((rng.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    struct Srv {
        v: f64,
        last: f64,
        n: u64,
        heap: BinaryHeap<Reverse<(u64, u64)>>, // (finish V as bits of a positive f64, job)
        generation: u64,
    }
    let mut srv: Vec<Srv> =
        (0..8).map(|_| Srv { v: 0.0, last: 0.0, n: 0, heap: BinaryHeap::new(), generation: 0 }).collect();
    let mut arrival_of: Vec<f64> = Vec::new();
    let mut free: Vec<u64> = Vec::new();
    // Events: (time bits, seq, kind): kind u64::MAX = arrival, else server index << 32 | generation.
    let mut q: BinaryHeap<Reverse<(u64, u64, u64)>> = BinaryHeap::new();
    let mut seq = 0u64;
    let (mut sum_r, mut n_r) = (0.0, 0u64);
    let t0 = cpu_seconds();
    q.push(Reverse(((-(u()).ln() / lambda).to_bits(), seq, u64::MAX)));
    while let Some(Reverse((tb, _, kind))) = q.pop() {
        let now = f64::from_bits(tb);
        if kind == u64::MAX {
            let next = now - u().ln() / lambda;
            if next < t_end {
                seq += 1;
                q.push(Reverse((next.to_bits(), seq, u64::MAX)));
            }
            // wlc: least (n << 8) / w, ties to the first.
            let mut best = 0;
            for i in 1..8 {
                if (srv[best].n << 8) * W[i] > (srv[i].n << 8) * W[best] {
                    best = i;
                }
            }
            let job = free.pop().unwrap_or_else(|| {
                arrival_of.push(0.0);
                arrival_of.len() as u64 - 1
            });
            arrival_of[job as usize] = now;
            let s = &mut srv[best];
            if s.n > 0 {
                s.v += (now - s.last) * CAP[best] / s.n as f64;
            } else {
                s.v = 0.0;
            }
            s.last = now;
            let d = -0.007 * u().ln();
            s.heap.push(Reverse(((s.v + d).to_bits(), job)));
            s.n += 1;
            s.generation += 1;
            let Reverse((fin, _)) = *s.heap.peek().expect("just pushed");
            let at = now + (f64::from_bits(fin) - s.v) * s.n as f64 / CAP[best];
            seq += 1;
            q.push(Reverse((at.to_bits(), seq, (best as u64) << 32 | (s.generation & 0xffff_ffff))));
        } else {
            let i = (kind >> 32) as usize;
            let s = &mut srv[i];
            if s.generation & 0xffff_ffff != kind & 0xffff_ffff {
                continue;
            }
            s.v += (now - s.last) * CAP[i] / s.n as f64;
            s.last = now;
            let Reverse((fin, job)) = s.heap.pop().expect("a job finishes");
            s.v = s.v.max(f64::from_bits(fin));
            s.n -= 1;
            let arr = arrival_of[job as usize];
            if arr >= 0.1 * t_end {
                sum_r += now - arr;
                n_r += 1;
            }
            free.push(job);
            if let Some(&Reverse((fin, _))) = s.heap.peek() {
                s.generation += 1;
                let at = now + (f64::from_bits(fin) - s.v).max(0.0) * s.n as f64 / CAP[i];
                seq += 1;
                q.push(Reverse((at.to_bits(), seq, (i as u64) << 32 | (s.generation & 0xffff_ffff))));
            }
        }
    }
    let cpu = cpu_seconds() - t0;
    (conns as f64 / cpu, sum_r / n_r as f64)
}
