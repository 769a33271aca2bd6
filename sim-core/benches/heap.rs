//! The event heap against the standard library's binary heap, in the same process.
//!
//! ```text
//! cargo bench -p sim-core --bench heap              # 200 and 100,000 events pending
//! cargo bench -p sim-core --bench heap -- 1000      # other sizes
//! ```
//!
//! The "hold" model of priority-queue benchmarks: `n` events pending; each step pops the
//! earliest and pushes one at its time plus a delay from a fixed mix (short and long, as
//! the simulator's messages, completions and timeouts are). Events carry 40 bytes, the
//! size of the simulator's `Event`. Both heaps pop the same sequence (checked).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use lvs_sched::Time;
use sim_core::engine::EventHeap;

const STEPS: usize = 4_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Payload([u64; 5]);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let sizes: Vec<usize> = if args.is_empty() {
        vec![200, 100_000]
    } else {
        args.iter().map(|a| a.parse::<f64>().unwrap_or_else(|_| panic!("not a size: {a}")) as usize).collect()
    };
    let delays = delays(STEPS + sizes.iter().max().copied().unwrap_or(0));
    println!("event heap, hold model, {STEPS} pop+push steps");
    println!("{:>10} {:>16} {:>16} {:>8}", "pending", "BinaryHeap ns", "EventHeap ns", "ratio");
    for &n in &sizes {
        let (std_ns, std_sum) = binary(n, &delays);
        let (ours_ns, ours_sum) = event_heap(n, &delays);
        assert_eq!(std_sum, ours_sum, "both heaps pop the same events");
        println!("{n:>10} {std_ns:>16.1} {ours_ns:>16.1} {:>8.2}", std_ns / ours_ns);
    }
}

/// A fixed mix of delays [ns]: a quarter 200 ms, a quarter 1-6 ms, a quarter 50 µs, a
/// quarter uniform below 10 ms.
fn delays(n: usize) -> Vec<u64> {
    let mut x = 1u64;
    (0..n)
        .map(|_| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let r = x >> 33;
            match r % 4 {
                0 => 200_000_000,
                1 => 1_000_000 + r % 5_000_000,
                2 => 50_000,
                _ => r % 10_000_000,
            }
        })
        .collect()
}

/// Nanoseconds per step and a checksum of the popped order.
fn binary(n: usize, d: &[u64]) -> (f64, u64) {
    let mut h = BinaryHeap::new();
    let mut seq = 0u64;
    for (i, &di) in d.iter().enumerate().take(n) {
        seq += 1;
        h.push(Reverse((Time(di), seq, Payload([i as u64; 5]))));
    }
    let mut sum = 0u64;
    let t0 = Instant::now();
    for (i, &di) in d.iter().enumerate().skip(n).take(STEPS) {
        let Reverse((at, _, p)) = h.pop().expect("n > 0");
        sum = sum.wrapping_mul(31).wrapping_add(p.0[0]);
        seq += 1;
        h.push(Reverse((Time(at.0 + di), seq, Payload([i as u64; 5]))));
    }
    (t0.elapsed().as_nanos() as f64 / STEPS as f64, sum)
}

fn event_heap(n: usize, d: &[u64]) -> (f64, u64) {
    let mut h = EventHeap::new();
    for (i, &di) in d.iter().enumerate().take(n) {
        h.push(Time(di), Payload([i as u64; 5]));
    }
    let mut sum = 0u64;
    let t0 = Instant::now();
    for (i, &di) in d.iter().enumerate().skip(n).take(STEPS) {
        let (at, p) = h.pop().expect("n > 0");
        sum = sum.wrapping_mul(31).wrapping_add(p.0[0]);
        h.push(Time(at.0 + di), Payload([i as u64; 5]));
    }
    (t0.elapsed().as_nanos() as f64 / STEPS as f64, sum)
}
