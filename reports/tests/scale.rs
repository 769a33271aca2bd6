//! Reports of runs with many real servers (issue 20): a run of 100,000 real servers
//! without full per-server detail writes a report.html under 5 MB that shows the servers as
//! distributions (quantiles, CDFs, top and bottom servers, time bands), a small
//! summary.json, a series.csv of a few dozen columns, and still one real_servers.csv row
//! for every server; a detailed run of more servers than a chart has lines draws bands.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use lvs_sched::{DestConfig, Duration, Forwarding};
use serde_json::Value;
use sim_core::model::{
    AcrossServers, FeedbackReport, FeedbackServerReport, RunReport, ServerReport, Simulation, Spread,
};
use sim_core::stats::Latency;

fn out_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("reports-scale").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The server that is busiest, the one with the slowest tail, and the one whose weight
/// travels most under feedback.
const BUSIEST: usize = 4242;
const SLOWEST: usize = 777;
const TRAVELLER: usize = 31337;

fn address(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 100 + (i >> 16) as u8, (i >> 8) as u8, i as u8))
}

/// Server `i` of `n` (a compact histogram, as runs without full detail keep): utilisation spread over 20–80% (one at 99%), response times of a few
/// microseconds (the slowest one's tail at 50 ms).
fn server(i: usize, n: usize) -> ServerReport {
    let spread = ((i * 7919) % n) as f64 / n as f64;
    let mut latency = Latency::compact();
    for k in 0..3u64 {
        latency.record(Duration(500 + (i as u64 % 1000) + 100 * k));
    }
    if i == SLOWEST {
        latency.record(Duration::from_millis(50));
    }
    ServerReport {
        name: format!("rs{i}"),
        address: address(i),
        connections: 3,
        utilization: if i == BUSIEST { 0.99 } else { 0.2 + 0.6 * spread },
        weight_final: 1,
        active_conns_mean: 2.0 * spread,
        latency,
        refused: 0,
    }
}

/// A real run's report with its servers replaced by `n` synthetic ones, as a run without
/// full per-server detail reports them: no per-server samples, `Sample::across` instead,
/// and every server in the director's IPVS table.
fn synthetic(n: usize) -> RunReport {
    let mut r = common::run(11, 2, 100);
    r.servers = (0..n).map(|i| server(i, n)).collect();
    r.server_detail = false;
    let spread = |lo: f64, hi: f64| Spread {
        min: lo,
        p10: lo * 1.1,
        p50: (lo + hi) / 2.0,
        p90: hi * 0.9,
        max: hi,
        mean: (lo + hi) / 2.0,
    };
    for (k, s) in r.series.iter_mut().enumerate() {
        s.servers.clear();
        let f = k as f64 / 20.0;
        s.across = Some(AcrossServers {
            utilization: spread(0.1 * f, 0.9 * f),
            active_conns: spread(0.0, 10.0 * f),
            weight: spread(1.0, 1.0),
        });
    }
    let servers = (0..n)
        .map(|i| FeedbackServerReport {
            name: format!("rs{i}"),
            reports: 10,
            weight_travel_per_min: if i == TRAVELLER { 500.0 } else { (i % 7) as f64 },
            ..FeedbackServerReport::default()
        })
        .collect();
    r.feedback = Some(FeedbackReport { law: "capacity".into(), servers, ..FeedbackReport::default() });
    let ipvs = &mut r.directors[0].ipvs;
    let key = ipvs.services().next().expect("a service").key();
    for i in 3..n {
        ipvs.add_dest(key, &DestConfig::new(address(i), 80, Forwarding::Masq)).expect("a new real server");
    }
    r
}

#[test]
fn a_hundred_thousand_servers_make_a_small_page_of_distributions() {
    const N: usize = 100_000;
    let dir = out_dir("100k");
    let r = synthetic(N);
    reports::write_run(&dir, &common::meta(), &r).expect("writes");
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    eprintln!("report.html at {N} servers: {} bytes", html.len());
    assert!(html.len() < 5_000_000, "report.html is {} bytes", html.len());
    for t in [
        "100000 real servers (the run kept no full per-server detail)",
        "across servers",
        "Utilisation across real servers (CDF)",
        "p99 across real servers (CDF)",
        "Busiest (highest utilisation)",
        "Fastest (lowest p99)",
        "Utilisation across real servers",
        "IPVS ActiveConn across real servers",
        "p10–p90",
        "more lines (every real server: real_servers.csv)",
    ] {
        assert!(html.contains(t), "missing {t}");
    }
    assert!(html.matches("<tr>").count() < 200, "{} table rows", html.matches("<tr>").count());
    assert!(html.matches("<polygon").count() >= 6, "two bands in each of three time charts");
    // The busiest and the slowest server head their tables.
    let busiest = &html[html.find("Busiest (highest").unwrap()..];
    assert!(busiest.find(&format!(">rs{BUSIEST}<")) < busiest.find("Idlest"), "busiest listed first");
    let slowest = &html[html.find("Slowest (highest").unwrap()..];
    assert!(slowest.find(&format!(">rs{SLOWEST}<")) < slowest.find("Fastest"));

    let json = std::fs::read_to_string(dir.join("summary.json")).unwrap();
    assert!(json.len() < 100_000, "summary.json is {} bytes", json.len());
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["real_servers"], Value::Array(Vec::new()), "no per-server list without detail");
    let a = &v["real_servers_across"];
    assert_eq!((a["servers"].as_u64(), a["answered"].as_u64()), (Some(N as u64), Some(N as u64)));
    assert_eq!(a["busiest"][0]["name"], format!("rs{BUSIEST}"));
    assert_eq!(a["utilization"]["max"], 0.99);
    assert_eq!(a["slowest"][0]["name"], format!("rs{SLOWEST}"));
    assert_eq!(a["busiest"].as_array().unwrap().len(), 10);
    let u = &a["utilization"];
    let q = |k: &str| u[k].as_f64().unwrap();
    assert!(q("min") <= q("p1") && q("p1") <= q("p10") && q("p10") <= q("p50") && q("p50") <= q("p90"));
    assert!((q("p50") - 0.5).abs() < 0.01, "the median of 20–80% is 50%: {}", q("p50"));

    // Feedback: the totals over every server, the list cut to the ten that travelled most.
    let fb = &v["feedback"];
    assert_eq!(fb["servers"].as_array().unwrap().len(), 10);
    assert_eq!(fb["servers"][0]["name"], format!("rs{TRAVELLER}"));
    let total: f64 = (0..N).map(|i| if i == TRAVELLER { 500.0 } else { (i % 7) as f64 }).sum();
    assert_eq!(fb["weight_travel_per_min"].as_f64(), Some(total));
    assert!(html.contains("The 10 of 100000 real servers whose weight travelled most"));

    let csv = std::fs::read_to_string(dir.join("real_servers.csv")).unwrap();
    assert_eq!(csv.lines().count(), N + 1, "one row a server");
    assert!(csv.lines().all(|l| l.split(',').count() == 11));
    assert!(csv.contains(&format!("\nrs{SLOWEST},{},3,", address(SLOWEST))));
    let series = std::fs::read_to_string(dir.join("series.csv")).unwrap();
    let header: Vec<&str> = series.lines().next().unwrap().split(',').collect();
    assert!(header.len() < 40 && header.contains(&"utilization_p90"), "{header:?}");
    assert_eq!(series.lines().count(), r.series.len() + 1);
    assert_eq!(
        std::fs::read_to_string(dir.join("servers.csv")).unwrap().lines().count(),
        1,
        "no per-server samples"
    );

    let text = reports::text_summary(&common::meta(), &r);
    assert!(text.lines().count() < 400, "{} terminal lines", text.lines().count());
    assert!(text.contains("busiest:") && text.contains(&format!("rs{BUSIEST} ")));
}

#[test]
fn a_detailed_run_of_more_servers_than_chart_lines_draws_bands_computed_from_its_samples() {
    let n = 70;
    let cfg = common::config_with(3, 1, 100, lvs_sched::SchedulerKind::Wlc, n, 2000.0);
    let r = Simulation::new(cfg).expect("valid configuration").run();
    assert!(r.server_detail && r.series.iter().all(|s| s.servers.len() == n));
    let dir = out_dir("detail70");
    reports::write_run(&dir, &common::meta(), &r).expect("writes");
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(
        html.contains("Utilisation across real servers") && !html.contains("Utilisation per real server")
    );
    assert!(html.contains("70 real servers (too many to list one a row)"));
    assert!(html.contains("Busiest (highest utilisation)"), "top lists computed for the page");
    // summary.json still lists every server of a detailed run, with no top lists.
    let v: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(v["real_servers"].as_array().unwrap().len(), n);
    assert!(v["real_servers_across"].get("busiest").is_none());
    let busiest = r.servers.iter().map(|s| s.utilization).fold(0.0, f64::max);
    assert_eq!(v["real_servers_across"]["utilization"]["max"].as_f64(), Some(busiest));
    // series.csv has no across-server columns when the samples hold every server.
    let series = std::fs::read_to_string(dir.join("series.csv")).unwrap();
    assert!(!series.lines().next().unwrap().contains("utilization_p50"));
}
