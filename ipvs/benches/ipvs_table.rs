//! IPVS connection-table throughput: nanoseconds per connection lifecycle, at a steady
//! population of about 1000 and about 1e6 live entries; then bytes per live entry.
//!
//! Run with `cargo bench -p lvs-ipvs --bench ipvs_table` (quick: append
//! `-- --warm-up-time 1 --measurement-time 3`). One iteration is one whole connection as
//! a direct-routing director sees it: `advance` to the arrival (which expires the oldest
//! entry), `new_conn` (the SYN, scheduled by wlc over 8 real servers), then the client's
//! ACK, FIN and ACK through `packet`. The entry then sits in FIN_WAIT for its 120 s
//! timeout, so arrivals every `120 s / population` keep `population` entries live and
//! every iteration expires one. Stale timers of the SYN_RECV and ESTABLISHED states are
//! part of the steady state, which is why each table is warmed up for 8 populations
//! (longer than the 900 s ESTABLISHED timeout).
//!
//! After the timing, the memory probe fills a fresh table to 1e6 live entries and prints
//! the growth of the resident set size per live entry (Linux `/proc/self/statm`).

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use criterion::{BenchmarkId, Criterion, Throughput};
use lvs_ipvs::tcp::Segment;
use lvs_ipvs::{Ipvs, ServiceConfig, ServiceKey};
use lvs_sched::{DestConfig, Duration, Flow, Forwarding, Protocol, SchedulerKind, Time};

/// Steady populations of live entries.
const POPULATIONS: [u64; 2] = [1_000, 1_000_000];
/// FIN_WAIT timeout, how long a closed entry stays [ns].
const HOLD: Duration = Duration::from_secs(120);
/// The weights of LVS-REF-1's `base` preset.
const WEIGHTS: [u32; 8] = [2, 2, 2, 2, 2, 3, 3, 4];

/// A director with one wlc service and a steady population of connections.
struct Director {
    ipvs: Ipvs,
    now: Time,
    step: Duration,
    next_client: u32,
}

impl Director {
    fn new(population: u64) -> Director {
        let mut ipvs = Ipvs::new(1);
        let vip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        let key = ServiceKey::Addr { protocol: Protocol::Tcp, addr: vip, port: 80 };
        ipvs.add_service(key, ServiceConfig::new(SchedulerKind::Wlc)).expect("new service");
        for (i, w) in WEIGHTS.iter().enumerate() {
            let rip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1 + i as u8));
            let cfg = DestConfig { weight: *w, ..DestConfig::new(rip, 80, Forwarding::DirectRouting) };
            ipvs.add_dest(key, &cfg).expect("distinct servers");
        }
        let step = Duration(HOLD.0 / population);
        Director { ipvs, now: Time::ZERO, step, next_client: 0 }
    }

    /// One connection's life at the director, and the expiry of the oldest entry.
    fn lifecycle(&mut self) {
        self.now += self.step;
        self.ipvs.advance(self.now);
        let i = self.next_client;
        self.next_client = i.wrapping_add(1);
        // An odd multiplier is a bijection of u32: every client address is distinct.
        let flow = Flow {
            protocol: Protocol::Tcp,
            saddr: IpAddr::V4(Ipv4Addr::from(i.wrapping_mul(0x9E37_79B1))),
            sport: 1024 + (i % 60_000) as u16,
            daddr: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            dport: 80,
        };
        let s = self.ipvs.new_conn(self.now, black_box(&flow), None).expect("a server is available");
        let id = s.conn.expect("TCP entries are hashed");
        for seg in [Segment::Ack, Segment::Fin, Segment::Ack] {
            let _ = self.ipvs.packet(self.now, id, seg, false);
        }
    }

    fn warm_up(&mut self, population: u64) {
        for _ in 0..8 * population {
            self.lifecycle();
        }
    }
}

fn bench_lifecycle(c: &mut Criterion) {
    let mut group = c.benchmark_group("ipvs_lifecycle");
    group.throughput(Throughput::Elements(1));
    for population in POPULATIONS {
        // Built on first use, so that a filtered-out population costs nothing.
        let mut director: Option<Director> = None;
        group.bench_function(BenchmarkId::from_parameter(population), |b| {
            let d = director.get_or_insert_with(|| {
                let mut d = Director::new(population);
                d.warm_up(population);
                d
            });
            b.iter(|| d.lifecycle())
        });
    }
    group.finish();
}

/// Resident set size [bytes] (Linux only; 0 elsewhere).
#[allow(clippy::disallowed_methods, reason = "a benchmark, not the pure crate: it reads its own RSS")]
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    pages * 4096
}

fn memory_probe() {
    let population = 1_000_000;
    let before = rss_bytes();
    let mut d = Director::new(population);
    d.warm_up(population);
    let after = rss_bytes();
    let live = d.ipvs.conn_count() as u64;
    println!(
        "memory: {live} live entries, RSS +{} MB, {:.1} bytes per live entry; table heap {:.1} bytes per live entry",
        (after - before) >> 20,
        (after - before) as f64 / live as f64,
        d.ipvs.heap_bytes() as f64 / live as f64,
    );
    black_box(&d.ipvs);
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench_lifecycle(&mut c);
    c.final_summary();
    // `cargo test --benches` runs this binary without `--bench`: skip the slow probe.
    if std::env::args().any(|a| a == "--bench") {
        memory_probe();
    }
}
