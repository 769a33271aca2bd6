//! The breakdowns per service, population and backend in summary.json, the CSV files
//! and the page, from real runs of the small cluster (one service, one population, no
//! backend) and of a variant with a hostile population name and a backend.

mod common;

use std::path::PathBuf;

use serde_json::Value;
use sim_core::cpu::CpuConfig;
use sim_core::dist::Dist;
use sim_core::model::{BackendConfig, Simulation};

fn out_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("reports-breakdown").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn the_lists_are_always_present_and_read_back_equal() {
    let r = common::run(7, 2, 0);
    let s = reports::summary(&common::meta(), &r);
    let text = reports::summary_json(&s);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["backends"], Value::Array(Vec::new()), "an empty list, not absent");
    assert_eq!(v["services"].as_array().unwrap().len(), 1);
    let svc = &v["services"][0];
    assert_eq!(svc["name"], "tcp-172.17.60.201-80");
    assert!(svc.get("fwmark").is_none(), "no fwmark key on a VIP:port service");
    // One service, one population: both are the run's totals.
    assert_eq!(svc["connections"], v["connections"]);
    assert_eq!(v["populations"][0]["connections"], v["connections"]);
    assert_eq!(svc["latency_ms"]["p99"], v["latency_ms"]["p99"]);
    assert_eq!(svc["throughput_cps"], v["throughput_cps"]);
    // A reader (compare, show) gets the same summary back.
    let back: reports::Summary = serde_json::from_str(&text).unwrap();
    assert_eq!(back, s);
    // An older summary.json without the lists still reads.
    let mut old = v.clone();
    for k in ["services", "populations", "backends"] {
        old.as_object_mut().unwrap().remove(k);
    }
    let old: reports::Summary = serde_json::from_value(old).unwrap();
    assert!(old.services.is_empty() && old.backends.is_empty());
}

#[test]
fn files_and_page_carry_every_name_escaped() {
    let mut cfg = common::config(5, 3, 0);
    let mut other = cfg.populations[0].clone();
    other.name = "<script>alert(1)</script>, \"x\"".into();
    other.arrival = sim_core::arrival::ArrivalProcess::Poisson { rate: 100.0 };
    other.backend_demand = Some(Dist::Constant(0.002));
    cfg.populations.push(other);
    cfg.backends.push(BackendConfig {
        name: "db".into(),
        latency: lvs_sched::Duration::from_micros(200),
        cpu: CpuConfig { cores: 4, speed: 1.0, max_in_service: None, backlog: None },
    });
    for s in &mut cfg.servers {
        s.backend = Some(0);
    }
    let r = Simulation::new(cfg).expect("valid").run();
    let dir = out_dir("hostile");
    reports::write_run(&dir, &common::meta(), &r).expect("writes");
    let pops = std::fs::read_to_string(dir.join("populations.csv")).unwrap();
    // RFC 4180: the comma and quotes in the name are quoted, so the row keeps its columns.
    assert!(pops.contains("\"<script>alert(1)</script>, \"\"x\"\"\",tcp-172.17.60.201-80,"), "{pops}");
    let backends = std::fs::read_to_string(dir.join("backends.csv")).unwrap();
    let row: Vec<&str> = backends.lines().nth(1).unwrap().split(',').collect();
    assert_eq!(row[0], "db");
    let util: f64 = row[1].parse().unwrap();
    // The second population's 100 conn/s query for 2 ms on 4 cores: 100 · 0.002 / 4 = 5%.
    assert!((util - 0.05).abs() < 0.01, "db utilisation {util}");
    let page = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(!page.contains("<script>"), "a name reached the page unescaped");
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(page.contains("<h2 id=\"breakdown\">"), "no Breakdowns section");
    let text = reports::text_summary(&common::meta(), &r);
    assert!(text.lines().any(|l| l.starts_with("db ")), "no backend row in\n{text}");
}
