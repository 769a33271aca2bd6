//! summary.json and the terminal summary from a real (small) run.

mod common;

use serde_json::Value;

fn keys(v: &Value) -> Vec<&str> {
    v.as_object().expect("an object").keys().map(String::as_str).collect()
}

#[test]
fn summary_json_has_every_design_md_key() {
    let r = common::run(7, 2, 100);
    let s = reports::summary(&common::meta(), &r);
    let v: Value = serde_json::from_str(&reports::summary_json(&s)).expect("valid JSON");
    for k in ["scenario", "seed", "simulated_s", "wall_s", "events", "throughput_cps"] {
        assert!(v.get(k).is_some(), "missing {k}");
    }
    let conns = &v["connections"];
    for k in ["offered", "completed", "refused", "dropped", "lost_on_failover"] {
        assert!(conns[k].is_u64(), "connections.{k}");
    }
    for k in ["mean", "p50", "p90", "p99", "p999", "max", "mean_ci95"] {
        assert!(v["latency_ms"][k].is_f64(), "latency_ms.{k}");
    }
    let rs = v["real_servers"].as_array().expect("real_servers");
    assert_eq!(rs.len(), 3);
    for s in rs {
        for k in ["name", "address", "connections", "utilization", "weight_final", "active_conns_mean"] {
            assert!(s.get(k).is_some(), "real_servers[].{k} in {:?}", keys(s));
        }
        assert!(s["latency_ms"]["p50"].is_f64() && s["latency_ms"]["p99"].is_f64());
    }
    let ds = v["directors"].as_array().expect("directors");
    assert_eq!(ds.len(), 1);
    for k in ["name", "in_pkts", "out_pkts", "in_bytes", "out_bytes", "link_utilization"] {
        assert!(ds[0].get(k).is_some(), "directors[].{k}");
    }
}

#[test]
fn summary_keys_are_written_in_struct_order() {
    let r = common::run(7, 1, 0);
    let text = reports::summary_json(&reports::summary(&common::meta(), &r));
    let order = [
        "\"scenario\"",
        "\"seed\"",
        "\"simulated_s\"",
        "\"wall_s\"",
        "\"events\"",
        "\"connections\"",
        "\"latency_ms\"",
        "\"throughput_cps\"",
        "\"real_servers\"",
        "\"directors\"",
    ];
    let at: Vec<usize> = order.iter().map(|k| text.find(k).unwrap_or_else(|| panic!("{k}"))).collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{at:?}");
}

#[test]
fn summary_values_come_from_the_run() {
    let r = common::run(7, 2, 0);
    let s = reports::summary(&common::meta(), &r);
    assert_eq!(s.seed, 7);
    assert_eq!(s.events, r.engine_events);
    assert_eq!(s.connections.offered, r.connections.offered);
    assert_eq!(s.connections.completed, r.connections.completed);
    assert!(s.connections.completed > 400, "{:?}", s.connections);
    assert_eq!(s.simulated_s, r.simulated.as_nanos() as f64 / 1e9);
    assert_eq!(s.wall_s, 0.25);
    let l = &s.latency_ms;
    assert_eq!(l.mean, r.latency.mean_ns() / 1e6);
    assert!(l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.p999 && l.p999 <= l.max, "{l:?}");
    assert_eq!(l.max, r.latency.max_ns() as f64 / 1e6);
    let ci = r.ref1.batch_means.half_width_95().expect("every batch has values") * 1e3;
    assert_eq!(l.mean_ci95, ci);
    assert!(l.mean_ci95 > 0.0 && l.mean_ci95 < l.mean);
    let total: u64 = s.real_servers.iter().map(|rs| rs.connections).sum();
    assert_eq!(total, s.connections.offered - s.connections.refused);
    assert_eq!(s.real_servers[2].address, "192.168.6.6");
    assert_eq!(s.real_servers[2].weight_final, 3);
    let d = &s.directors[0];
    assert_eq!(
        (d.name.as_str(), d.in_pkts, d.out_bytes),
        ("lb1", r.directors[0].in_pkts, r.directors[0].out_bytes)
    );
    assert!(d.link_utilization > 0.0 && d.link_utilization < 1.0);
}

#[test]
fn same_run_gives_the_same_bytes_and_only_wall_s_differs() {
    let a = reports::summary_json(&reports::summary(&common::meta(), &common::run(11, 1, 50)));
    let b = reports::summary_json(&reports::summary(&common::meta(), &common::run(11, 1, 50)));
    assert_eq!(a, b);
    let mut other = common::meta();
    other.wall_s = 9.5;
    let c = reports::summary_json(&reports::summary(&other, &common::run(11, 1, 50)));
    let strip = |s: &str| s.lines().filter(|l| !l.contains("\"wall_s\"")).collect::<Vec<_>>().join("\n");
    assert_ne!(a, c);
    assert_eq!(strip(&a), strip(&c));
    let d = reports::summary_json(&reports::summary(&common::meta(), &common::run(12, 1, 50)));
    assert_ne!(strip(&a), strip(&d), "a different seed gives a different run");
}

#[test]
fn text_summary_has_outcomes_servers_and_ipvsadm_listings() {
    let r = common::run(7, 1, 0);
    let t = reports::text_summary(&common::meta(), &r);
    for needle in [
        "scenario   small <wlc> & \"nat\"",
        "seed       7",
        "throughput ",
        "p99.9 ",
        "server  address",
        "rs2     192.168.6.6",
        "# ipvsadm -L -n\nIP Virtual Server version 1.2.1 (size=4096)\n",
        "TCP  172.17.60.201:80 wlc\n",
        "# ipvsadm -L -n --stats\n",
        "Conns   InPkts  OutPkts  InBytes OutBytes",
    ] {
        assert!(t.contains(needle), "missing {needle:?} in\n{t}");
    }
    assert!(t.contains(&lvs_ipvs::ipvsadm::list_stats(&r.directors[0].ipvs)));
}
