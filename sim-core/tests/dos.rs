//! SYN floods against a director and IPVS's defences in a run, against hand-computed
//! expectations: the flood's SYN count, a table filling the director's memory, the
//! legitimate clients' SYNs retransmitted until the flood's entries expire, drop_packet
//! mode 3's one in `am_droprate`, the time series' DoS columns, and the refusals.

use std::net::{IpAddr, Ipv4Addr};

use lvs_ipvs::{Memory, NoDest, ServiceKey};
use lvs_sched::{Duration, Forwarding, Protocol, SchedulerKind, Time};
use sim_core::arrival::ArrivalProcess;
use sim_core::cpu::CpuConfig;
use sim_core::dist::Dist;
use sim_core::model::*;

const VIP: IpAddr = IpAddr::V4(Ipv4Addr::new(172, 17, 60, 201));

fn flood(rate: f64, stop_ms: u64) -> SynFloodConfig {
    SynFloodConfig {
        name: "botnet".into(),
        vip: VIP,
        port: 80,
        rate,
        sources: 1 << 24,
        first_source: IpAddr::V4(Ipv4Addr::new(100, 0, 0, 0)),
        start: Duration::ZERO,
        stop: Some(Duration::from_millis(stop_ms)),
    }
}

/// One DR director, two real servers, legitimate clients at `legit` conn/s reaching the
/// director 10 ms after they start, for `secs` (plus 1 ms), sampled every second.
fn cluster(legit: f64, secs: u64, director: impl FnOnce(&mut DirectorConfig)) -> ClusterConfig {
    let servers = (0..2)
        .map(|i| {
            let cpu = CpuConfig { cores: 1, speed: 1.0, max_in_service: None, backlog: None };
            ServerConfig::new(format!("rs{i}"), IpAddr::V4(Ipv4Addr::new(192, 168, 6, 4 + i as u8)), cpu)
        })
        .collect();
    let dests = (0..2).map(|i| DestConfig::new(i, 80, Forwarding::DirectRouting)).collect();
    let mut d = DirectorConfig::new(
        "lb",
        "lan",
        vec![ServiceConfig::new(
            ServiceKey::Addr { protocol: Protocol::Tcp, addr: VIP, port: 80 },
            SchedulerKind::Wlc,
            dests,
        )],
    );
    director(&mut d);
    ClusterConfig {
        directors: vec![d],
        servers,
        populations: vec![PopulationConfig {
            demand: Dist::Constant(0.001),
            access_latency: Duration::from_millis(10),
            ..PopulationConfig::new("web", ArrivalProcess::Constant { rate: legit }, VIP, 80)
        }],
        sample_interval: Some(Duration::from_secs(1)),
        ..ClusterConfig::new(1, Duration::from_millis(secs * 1000 + 1))
    }
}

fn run(cfg: ClusterConfig) -> RunReport {
    Simulation::new(cfg).expect("valid configuration").run()
}

#[test]
fn a_flood_without_defences_fills_the_table_with_half_open_entries() {
    // 2000 SYN/s for 1.5 s: SYN k at k/2000 s, k = 0..2999. Every entry lasts 60 s
    // (SYN_RECV), so the table peaks at 3000 (bar the rare source/port repeat) plus the
    // legitimate clients' entries.
    let r = run(cluster(10.0, 3, |d| d.syn_floods.push(flood(2_000.0, 1_500))));
    let dos = r.dos.expect("a run with a flood reports it");
    let f = &dos.floods[0];
    assert_eq!((f.name.as_str(), f.director.as_str(), f.syns), ("botnet", "lb", 3_000));
    assert_eq!(f.entries + f.other, 3_000);
    assert!(f.other < 5, "{} repeated source/port pairs", f.other);
    assert_eq!((f.defense_dropped, f.no_memory, f.lost), (0, 0, 0));
    assert!(dos.directors[0].peak_entries >= f.entries);
    assert_eq!(dos.directors[0].defense, lvs_ipvs::DefenseStats::default());
    // Without a memory limit nobody legitimate suffers.
    assert_eq!(r.connections.completed, r.connections.offered);
    // The series: 1000 SYNs in each of the first seconds, 1000 in the third half
    // second, none after; table sizes as many as were sent.
    let syns: Vec<u64> = r.series.iter().map(|s| s.dos.as_ref().unwrap().flood_syns).collect();
    assert_eq!(syns, vec![2_000, 1_000, 0, 0]);
    let entries = r.series[1].dos.as_ref().unwrap().directors[0].entries;
    assert!(entries >= 2_995, "{entries} entries at 2 s");
}

#[test]
fn a_full_table_drops_legitimate_syns_until_the_flood_entries_expire() {
    // 100 pages of one entry each: the flood's first burst (SYNs due in the first
    // millisecond: 100 at 100000 SYN/s) fills the table at t = 0. The legitimate SYNs
    // (from 10 ms) find no memory and are retransmitted after 1, 2, 4, 8, 16 and 32 s:
    // only the last, 63 s after the first, comes after the flood's entries expire
    // (60 s), and succeeds.
    let r = run(cluster(2.0, 2, |d| {
        d.memory = Some(Memory { avail_pages: 100, entry_bytes: 4096 });
        d.syn_floods.push(flood(100_000.0, 1_000));
    }));
    let dos = r.dos.unwrap();
    let f = &dos.floods[0];
    assert_eq!((f.syns, f.entries, f.no_memory), (100_000, 100, 99_900));
    assert_eq!(dos.directors[0].peak_entries, 100);
    assert_eq!(dos.directors[0].defense.no_memory, 99_900 + 4 * 6, "4 legitimate SYNs x 6 tries");
    assert_eq!(r.connections.offered, 4);
    assert_eq!(r.connections.completed, 4);
    let first = r.latency.quantile_ns(0.0);
    assert!(first >= Duration::from_secs(63).as_nanos(), "first response after {first} ns");
    assert!(r.simulated >= Time::ZERO + Duration::from_secs(63));
}

#[test]
fn drop_packet_mode_3_drops_one_legitimate_syn_in_am_droprate() {
    // am_droprate 2 from the start (written at set-up: drop_counter 0, so the first
    // new connection is dropped, then every other one). 20 legitimate connections at
    // 10/s; each dropped SYN is retransmitted 1 s later (and drops count again).
    let r = run(cluster(10.0, 2, |d| {
        d.sysctls.drop_packet = 3;
        d.sysctls.am_droprate = 2;
    }));
    let dos = r.dos.unwrap();
    let dropped = dos.directors[0].defense.packets_dropped;
    assert_eq!(r.connections.completed, r.connections.offered, "every SYN gets through by a retry");
    // Half of all the SYNs the director scheduled or dropped were dropped.
    let scheduled = r.connections.offered;
    assert_eq!(dropped, scheduled, "one dropped for every one that got through");
    let refused_or_dropped: u64 = r.series.iter().map(|s| s.dos.as_ref().unwrap().dropped).sum();
    assert_eq!(refused_or_dropped, 0, "no legitimate connection lost for good");
}

#[test]
fn runs_without_dos_settings_have_no_dos_side() {
    let r = run(cluster(10.0, 1, |_| {}));
    assert!(r.dos.is_none());
    assert!(r.series.iter().all(|s| s.dos.is_none()));
}

#[test]
fn a_flood_is_deterministic() {
    let cfg = || {
        cluster(5.0, 3, |d| {
            d.memory = Some(Memory { avail_pages: 1_100, entry_bytes: 4096 });
            d.sysctls.drop_entry = 1;
            d.syn_floods.push(flood(500.0, 3_000));
        })
    };
    let (a, b) = (run(cfg()), run(cfg()));
    assert_eq!(a.dos, b.dos);
    assert_eq!(a.series, b.series);
    // 1100 pages, 500 entries a second: below amemthresh (1024) from 77 entries on,
    // so drop_entry switches to mode 2 at the run at 1 s and drops half-open entries.
    let modes: Vec<u8> = a.series.iter().map(|s| s.dos.as_ref().unwrap().directors[0].modes[0]).collect();
    assert_eq!(modes[0], 2);
    assert!(a.dos.unwrap().directors[0].defense.entries_dropped > 0);
}

#[test]
fn a_flood_stops_with_the_run() {
    // stop_s far beyond the run (as a careless scenario writes it): 1000 SYN/s, SYN k at
    // k/1000 s, and the run lasts 2.001 s: SYNs 0..=2000, none after the run's end.
    let r = run(cluster(1.0, 2, |d| d.syn_floods.push(flood(1_000.0, 65_535_000))));
    assert_eq!(r.dos.expect("a flood is reported").floods[0].syns, 2_001);
}

#[test]
fn flood_settings_are_checked() {
    let bad = |f: fn(&mut SynFloodConfig), want: &str| {
        let cfg = cluster(1.0, 1, |d| {
            let mut fl = flood(10.0, 500);
            f(&mut fl);
            d.syn_floods.push(fl);
        });
        let e = Simulation::new(cfg).err().expect("refused").to_string();
        assert!(e.contains(want), "{e}");
    };
    bad(|f| f.rate = 0.0, "rate must be in (0, 1000000] SYN/s, got 0");
    bad(|f| f.rate = f64::NAN, "rate must be in");
    bad(|f| f.sources = 0, "sources must be in 1..=");
    bad(|f| f.stop = Some(Duration::ZERO), "must come before stop");
    bad(|f| f.first_source = "2001:db8::1".parse().unwrap(), "one address family");
    let e = Simulation::new(cluster(1.0, 1, |d| d.sysctls.secure_tcp = 4)).err().unwrap().to_string();
    assert!(e.contains("secure_tcp must be in 0..=3, got 4"), "{e}");
    let e = Simulation::new(cluster(1.0, 1, |d| d.memory = Some(Memory { avail_pages: -1, entry_bytes: 1 })))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("available memory must be >= 0 pages"), "{e}");
    let _ = NoDest::NoMemory;
}
