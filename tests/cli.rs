//! End-to-end tests of the simulation subcommands through the `lvsim` binary: `run`,
//! `validate`, `sweep`, `plan`, `export`, `list`; `--set`; exit codes; report files;
//! determinism.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::cli::{lvsim, text};
use serde_json::Value;

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    common::cli::scratch(&format!("cli-{name}"))
}

fn json(path: &Path) -> Value {
    let t = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&t).unwrap()
}

fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// A small NAT scenario on the tutorial topology.
const SMALL: &str = r#"// A small test scenario.
Scenario(
    description: "small",
    duration_s: 20.0,
    warmup_s: 2.0,
    topology: "tutorial-nat",
    clients: [
        Clients(
            arrival: Poisson(rate: 100.0),
            demand_ms: Exponential(mean: 5.0),
        ),
    ],
)
"#;

fn write(dir: &Path, name: &str, body: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p.display().to_string()
}

#[test]
fn run_writes_the_report_directory_with_the_contracts_keys() {
    let d = scratch("run");
    let f = write(&d, "small.ron", SMALL);
    let out_dir = d.join("out");
    let out = lvsim(&["run", &f, "-o", out_dir.to_str().unwrap()]);
    ok(&out);
    let stdout = text(&out.stdout);
    assert!(stdout.contains("# ipvsadm -L -n"), "{stdout}");
    assert!(stdout.contains("192.168.6.4:80"), "{stdout}");
    assert!(stdout.contains("report.html"), "{stdout}");
    for f in ["summary.json", "report.html", "series.csv", "servers.csv"] {
        assert!(out_dir.join(f).is_file(), "{f} missing");
    }
    let s = json(&out_dir.join("summary.json"));
    for k in ["scenario", "seed", "simulated_s", "wall_s", "events", "throughput_cps"] {
        assert!(s.get(k).is_some(), "summary.json lacks {k}");
    }
    for k in ["offered", "completed", "refused", "dropped", "lost_on_failover"] {
        assert!(s["connections"][k].is_u64(), "connections.{k}");
    }
    for k in ["mean", "p50", "p90", "p99", "p999", "max"] {
        assert!(s["latency_ms"][k].is_f64(), "latency_ms.{k}");
    }
    let rs = s["real_servers"].as_array().unwrap();
    assert_eq!(rs.len(), 2);
    assert_eq!(rs[0]["name"], "rs1");
    assert_eq!(rs[0]["address"], "192.168.6.4");
    for k in ["connections", "utilization", "weight_final", "active_conns_mean"] {
        assert!(rs[0][k].is_number(), "real_servers[0].{k}");
    }
    assert!(rs[0]["latency_ms"]["p50"].is_number() && rs[0]["latency_ms"]["p99"].is_number());
    let dirs = s["directors"].as_array().unwrap();
    for k in ["name", "in_pkts", "out_pkts", "in_bytes", "out_bytes", "link_utilization"] {
        assert!(dirs[0].get(k).is_some(), "directors[0].{k}");
    }
    assert_eq!(s["scenario"], "small");
    // 100 conn/s for 18 measured seconds, ρ = 0.25 per server.
    let offered = s["connections"]["offered"].as_u64().unwrap();
    assert!((1600..2000).contains(&offered), "offered {offered}");
    assert_eq!(s["connections"]["completed"], s["connections"]["offered"]);
    let u = rs[0]["utilization"].as_f64().unwrap();
    assert!((0.2..0.3).contains(&u), "utilisation {u}");
    // The CSV time series: a header and one row per sample (default interval 0.1 s).
    let series = std::fs::read_to_string(out_dir.join("series.csv")).unwrap();
    assert!(series.lines().count() > 150, "{} rows", series.lines().count());
}

#[test]
fn same_seed_same_summary_and_set_changes_it() {
    let d = scratch("determinism");
    let f = write(&d, "small.ron", SMALL);
    let strip = |mut v: Value| {
        v.as_object_mut().unwrap().remove("wall_s");
        // `--replications 3` is an override the summary records.
        v.as_object_mut().unwrap().remove("overrides");
        serde_json::to_string(&v).unwrap()
    };
    let a = lvsim(&["run", &f, "--json", "-o", d.join("a").to_str().unwrap()]);
    let b = lvsim(&["run", &f, "--json", "-o", d.join("b").to_str().unwrap()]);
    ok(&a);
    ok(&b);
    let (sa, sb) = (json(&d.join("a/summary.json")), json(&d.join("b/summary.json")));
    assert_eq!(strip(sa.clone()), strip(sb));
    // --json prints the summary itself.
    let printed: Value = serde_json::from_slice(&a.stdout).unwrap();
    assert_eq!(strip(printed), strip(sa.clone()));
    // --set changes the run: another seed, and a higher rate.
    let c = lvsim(&["run", &f, "-q", "--seed", "2", "-o", d.join("c").to_str().unwrap()]);
    ok(&c);
    assert!(c.stdout.is_empty(), "--quiet prints nothing");
    let sc = json(&d.join("c/summary.json"));
    assert_eq!(sc["seed"], 2);
    assert_ne!(sc["connections"]["offered"], sa["connections"]["offered"]);
    // Replications: one run per seed, with confidence intervals.
    let r = lvsim(&["run", &f, "--replications", "3", "-o", d.join("r").to_str().unwrap()]);
    ok(&r);
    let reps = json(&d.join("r/replications.json"));
    let seeds: Vec<u64> =
        reps["runs"].as_array().unwrap().iter().map(|x| x["seed"].as_u64().unwrap()).collect();
    assert_eq!(seeds, [1, 2, 3]);
    assert_eq!(reps["latency_mean_ms"]["n"], 3);
    assert!(reps["latency_mean_ms"]["ci95"].as_f64().unwrap() > 0.0);
    assert!(text(&r.stdout).contains("3 replications (seeds 1..=3)"), "{}", text(&r.stdout));
    // The first replication is the plain run.
    assert_eq!(strip(json(&d.join("r/summary.json"))), strip(sa.clone()));
    let e = lvsim(&[
        "run",
        &f,
        "-q",
        "--set",
        "clients[0].arrival.rate=300",
        "-o",
        d.join("e").to_str().unwrap(),
    ]);
    ok(&e);
    let offered = json(&d.join("e/summary.json"))["connections"]["offered"].as_u64().unwrap();
    assert!((5000..5800).contains(&offered), "offered {offered} at 300/s for 18 s");
}

#[test]
fn set_switches_the_topology_and_wildcards_fan_out() {
    let d = scratch("set");
    let f = write(&d, "small.ron", SMALL);
    let out = lvsim(&[
        "run",
        &f,
        "--json",
        "--set",
        "topology=\"tutorial-dr\"",
        "--set",
        "directors[0].services[*].scheduler=wlc",
        "-o",
        d.join("o").to_str().unwrap(),
    ]);
    ok(&out);
    let s = json(&d.join("o/summary.json"));
    assert_eq!(s["real_servers"][0]["address"], "172.17.60.199");
    assert_eq!(s["real_servers"][1]["address"], "172.17.60.200");
    // Direct routing: the director rewrites no reply.
    assert_eq!(s["directors"][0]["out_pkts"], 0);
    assert!(s["directors"][0]["in_pkts"].as_u64().unwrap() > 0);
}

#[test]
fn errors_name_file_line_column_and_exit_2() {
    let d = scratch("errors");
    let cases = [
        // Unknown field: line 5, column of the field, and what was expected.
        (SMALL.replace("arrival:", "arival:"), "bad.ron:9:13", "`arrival`"),
        // Unknown variant.
        (SMALL.replace("Exponential(", "Expo("), "bad.ron:10:24", "Exponential"),
        // Semantic: an unknown server name, at the field written.
        (
            SMALL.replace(
                "topology: \"tutorial-nat\",",
                "topology: \"tutorial-nat\",\n    events: [Event(at_s: 1.0, server: \"rs9\", change: Weight(0))],",
            ),
            "bad.ron:7:39",
            "no real server named \"rs9\" (servers are: rs1, rs2)",
        ),
        // A syntax error.
        (SMALL.replace("demand_ms: Exponential(mean: 5.0),", "demand_ms: Exponential(mean: 5.0"), "bad.ron:12:5", "expected a field name"),
    ];
    for (body, place, what) in cases {
        let f = write(&d, "bad.ron", &body);
        let out = lvsim(&["validate", &f]);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
        let err = text(&out.stderr);
        assert!(err.contains(place), "expected {place:?} in: {err}");
        assert!(err.contains(what), "expected {what:?} in: {err}");
    }
    // DR to a server off the director's segment; a weight out of range: named by path.
    let f = write(&d, "ok.ron", SMALL);
    let out = lvsim(&[
        "validate",
        &f,
        "--set",
        "topology=\"tutorial-tun\"",
        "--set",
        "directors[0].services[0].real_servers[0].forwarding=DR",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("direct routing only reaches servers on the director's own segment"), "{err}");
    assert!(err.contains("directors[0].services[0].real_servers[0].forwarding"), "{err}");
    let out = lvsim(&["validate", &f, "--set", "directors[0].services[0].real_servers[1].weight=70000"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("weight 70000 is out of range"), "{}", text(&out.stderr));
    // A --set path that does not exist, and a malformed --set.
    let out = lvsim(&["run", &f, "--set", "clients[3].arrival.rate=1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("has 1 elements; there is no [3]"), "{}", text(&out.stderr));
    let out = lvsim(&["run", &f, "--set", "seed"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("expected PATH=VALUE"));
    // A missing file.
    let out = lvsim(&["run", "no/such/file.ron"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no/such/file.ron"));
    // validate accepts the good file.
    let out = lvsim(&["validate", &f]);
    ok(&out);
    assert!(text(&out.stdout).contains("ok:"), "{}", text(&out.stdout));
}

#[test]
fn a_failed_expectation_exits_3_after_writing_the_report() {
    let d = scratch("expect");
    let body = SMALL.replace(
        "clients: [",
        "expect: [Expect(metric: \"latency_ms.mean\", at_most: 0.001, note: \"impossible\")],\n    clients: [",
    );
    let f = write(&d, "x.ron", &body);
    let out = lvsim(&["run", &f, "-o", d.join("o").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("FAIL latency_ms.mean"), "{}", text(&out.stdout));
    assert!(d.join("o/report.html").is_file());
}

#[test]
fn ipvsadm_save_import_becomes_the_services() {
    let d = scratch("import");
    std::fs::write(
        d.join("director.save"),
        "-A -t 172.17.60.201:80 -s wlc\n-a -t 172.17.60.201:80 -r 192.168.6.4:80 -m -w 3\n-a -t 172.17.60.201:80 -r 192.168.6.5:80 -m -w 1\n",
    )
    .unwrap();
    let body = SMALL.replace(
        "topology: \"tutorial-nat\",",
        "topology: \"tutorial-nat\",\n    import_ipvsadm: \"director.save\",",
    );
    let f = write(&d, "imp.ron", &body);
    let out = lvsim(&["run", &f, "--json", "-o", d.join("o").to_str().unwrap()]);
    ok(&out);
    let s = json(&d.join("o/summary.json"));
    assert_eq!(s["real_servers"][0]["weight_final"], 3);
    let (a, b) = (
        s["real_servers"][0]["connections"].as_f64().unwrap(),
        s["real_servers"][1]["connections"].as_f64().unwrap(),
    );
    // wlc with weights 3:1 sends most connections to the heavier server.
    assert!(a > 2.0 * b, "{a} vs {b}");
    // A malformed save file: its own name, line and column.
    std::fs::write(
        d.join("director.save"),
        "-A -t 172.17.60.201:80 -s wlc\n-a -t 172.17.60.201:80 -r 192.168.6.4:80 -m -w x\n",
    )
    .unwrap();
    let out = lvsim(&["validate", &f]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("director.save:2:"), "{}", text(&out.stderr));
}

#[test]
fn sweep_runs_the_product_of_the_axes() {
    let d = scratch("sweep");
    let body = SMALL.replace(
        "clients: [",
        "replications: 2,\n    sweep: [\n        Axis(field: \"directors[0].services[0].scheduler\", values: [rr, wlc]),\n        Axis(field: \"clients[0].arrival.rate\", values: [50.0, 150.0]),\n    ],\n    clients: [",
    );
    let f = write(&d, "sw.ron", &body);
    let out = lvsim(&["sweep", &f, "-o", d.join("o").to_str().unwrap()]);
    ok(&out);
    for f in ["sweep.json", "sweep.csv", "report.html"] {
        assert!(d.join("o").join(f).is_file(), "{f}");
    }
    let s = json(&d.join("o/sweep.json"));
    let points = s["points"].as_array().unwrap();
    assert_eq!(points.len(), 4);
    let values: Vec<String> = points.iter().map(|p| p["values"].to_string()).collect();
    assert_eq!(values, [r#"["rr","50.0"]"#, r#"["rr","150.0"]"#, r#"["wlc","50.0"]"#, r#"["wlc","150.0"]"#]);
    for p in points {
        assert_eq!(p["result"]["runs"].as_array().unwrap().len(), 2, "two replications");
    }
    // Throughput follows the rate axis.
    let tput = |i: usize| points[i]["result"]["throughput_cps"]["mean"].as_f64().unwrap();
    assert!((tput(0) - 50.0).abs() < 8.0 && (tput(1) - 150.0).abs() < 15.0, "{} {}", tput(0), tput(1));
    let csv = std::fs::read_to_string(d.join("o/sweep.csv")).unwrap();
    assert_eq!(csv.lines().count(), 5, "{csv}");
    // A bad axis value is named with its point.
    let bad = body.replace("values: [rr, wlc]", "values: [rr, wlcx]");
    let f = write(&d, "bad.ron", &bad);
    let out = lvsim(&["sweep", &f, "-o", d.join("o2").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("sweep point") && err.contains("wlcx"), "{err}");
}

#[test]
fn feedback_fields_are_set_and_swept_through_the_binary() {
    let d = scratch("feedback");
    let body = SMALL.replace(
        "clients: [",
        "feedback: Feedback(interval_s: 1.0),\n    \
         events: [Event(at_s: 5.0, server: \"rs2\", change: Background(2))],\n    \
         sweep: [\n        Axis(field: \"feedback.enabled\", values: [false, true]),\n        \
         Axis(field: \"feedback.law\", values: [capacity, grpc_wrr]),\n    ],\n    clients: [",
    );
    let f = write(&d, "fb.ron", &body);
    ok(&lvsim(&["validate", &f, "--set", "feedback.max_step=5"]));
    // A bad value names the field.
    let out = lvsim(&["validate", &f, "--set", "feedback.smoothing=0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("feedback.smoothing:"), "{}", text(&out.stderr));
    let out = lvsim(&["sweep", &f, "-o", d.join("o").to_str().unwrap()]);
    ok(&out);
    let s = json(&d.join("o/sweep.json"));
    let values: Vec<String> =
        s["points"].as_array().unwrap().iter().map(|p| p["values"].to_string()).collect();
    assert_eq!(
        values,
        [
            r#"["false","capacity"]"#,
            r#"["false","grpc_wrr"]"#,
            r#"["true","capacity"]"#,
            r#"["true","grpc_wrr"]"#
        ]
    );
    let csv = std::fs::read_to_string(d.join("o/sweep.csv")).unwrap();
    assert!(csv.lines().next().unwrap().contains(",utilization_spread,utilization_spread_ci95"), "{csv}");
    // A Background event cannot name a director.
    let bad = body.replace("server: \"rs2\", change", "server: \"rs2\", director: \"lvs\", change");
    let out = lvsim(&["validate", &write(&d, "bad.ron", &bad)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("events[0].director:"), "{}", text(&out.stderr));
}

#[test]
fn plan_finds_the_smallest_farm_that_meets_the_slo() {
    let d = scratch("plan");
    // Two-core servers of capacity 200 conn/s each (demand 10 ms): at 500 conn/s at least
    // 3 are needed for stability; p99 <= 100 ms needs more headroom.
    let body = r#"Scenario(
    duration_s: 30.0,
    warmup_s: 3.0,
    directors: [Director(name: "lvs", address: "10.0.0.1", services: [
        Service(vip: "10.0.0.100", port: 80, scheduler: rr, real_servers: [RealServer(server: "web", forwarding: DR)]),
    ])],
    servers: [Server(name: "web", count: 2, address: "10.0.0.11", cpu: Cpu(cores: 2))],
    clients: [Clients(arrival: Poisson(rate: 500.0), demand_ms: Exponential(mean: 10.0))],
    plan: Plan(slo: [Expect(metric: "latency_ms.p99", at_most: 100.0)], servers: "web", min: 1, max: 10, schedulers: [rr, wlc]),
)"#;
    let f = write(&d, "plan.ron", body);
    let out = lvsim(&["plan", &f, "-o", d.join("o").to_str().unwrap()]);
    ok(&out);
    let p = json(&d.join("o/plan.json"));
    let a = &p["answer"];
    let n = a["sizes"][0].as_u64().unwrap();
    assert!((3..=10).contains(&n), "{a}");
    // The evidence: the answer meets the SLO, and one fewer with the same scheduler fails.
    let trials = p["trials"].as_array().unwrap();
    let find =
        |s: &Value, k: u64| trials.iter().find(|t| t["scheduler"] == *s && t["sizes"][0] == k).cloned();
    let best = find(&a["scheduler"], n).expect("the answer is a trial");
    assert_eq!(best["meets"], true);
    assert!(best["checks"][0]["estimate"]["mean"].as_f64().unwrap() <= 100.0);
    let fewer = find(&a["scheduler"], n - 1).expect("one fewer was tried");
    assert_eq!(fewer["meets"], false);
    // No scheduler meets it with fewer servers.
    assert!(trials.iter().all(|t| t["meets"] == false || t["sizes"][0].as_u64().unwrap() >= n));
    assert!(text(&out.stdout).contains("answer:"), "{}", text(&out.stdout));
    // The CLI can override the SLO: an impossible one has no answer.
    let out = lvsim(&[
        "plan",
        &f,
        "--slo",
        "latency_ms.p99<=1",
        "--max",
        "4",
        "--json",
        "-o",
        d.join("o2").to_str().unwrap(),
    ]);
    ok(&out);
    let p: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(p["answer"].is_null(), "{}", p["answer"]);
}

#[test]
fn export_writes_ipvsadm_keepalived_and_agent_configs() {
    let d = scratch("export");
    let f = write(&d, "small.ron", SMALL);
    let out = lvsim(&["export", &f, "-o", d.join("o").to_str().unwrap()]);
    ok(&out);
    let ipvsadm = std::fs::read_to_string(d.join("o/ipvsadm.sh")).unwrap();
    assert!(ipvsadm.contains("ipvsadm -A -t 172.17.60.201:80 -s rr"), "{ipvsadm}");
    assert!(ipvsadm.contains("ipvsadm -a -t 172.17.60.201:80 -r 192.168.6.4:80 -m -w 1"), "{ipvsadm}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |f: &str| std::fs::metadata(d.join("o").join(f)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode("ipvsadm.sh"), 0o755, "the script runs as it is");
        assert_eq!(mode("ipvsadm.rules") & 0o111, 0, "the rules file is data");
        assert_eq!(mode("keepalived.conf") & 0o111, 0);
    }
    let rules = std::fs::read_to_string(d.join("o/ipvsadm.rules")).unwrap();
    assert!(rules.contains("\n-A -t 172.17.60.201:80 -s rr\n"), "{rules}");
    let ka = std::fs::read_to_string(d.join("o/keepalived.conf")).unwrap();
    assert!(ka.contains("virtual_server 172.17.60.201 80"), "{ka}");
    assert!(ka.contains("lb_kind NAT") && ka.contains("real_server 192.168.6.5 80"), "{ka}");
    let agent = std::fs::read_to_string(d.join("o/feedbackd-agent/rs1.conf")).unwrap();
    assert!(
        agent.starts_with("# feedbackd-agent.conf written by lvsim for Debian 12")
            && agent.contains("\ndirector = 192.168.6.1\nservice"),
        "{agent}"
    );
    for l in ["protocol = TCP", "port = 80", "module = cpuload.so", "forwarding = NAT"] {
        assert!(agent.contains(l), "{l} in {agent}");
    }
    let out = lvsim(&["export", &f, "--stdout", "agent:rs2"]);
    ok(&out);
    assert!(text(&out.stdout).contains("director = 192.168.6.1"));
    let out = lvsim(&["export", &f, "--stdout", "agent:nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("servers are: rs1, rs2"));
}

#[test]
fn export_writes_the_ha_files_of_a_vrrp_and_a_heartbeat_pair() {
    let d = scratch("export-ha");
    let f = write(&d, "pair.ron", &SMALL.replace("tutorial-nat", "ha-pair"));
    let out = lvsim(&["export", &f, "-o", d.join("o").to_str().unwrap(), "--json"]);
    ok(&out);
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 9, "{listed}");
    assert!(!d.join("o/keepalived.conf").exists(), "one file per director instead");
    for (lb, state, priority) in [("lb1", "MASTER", 150), ("lb2", "BACKUP", 100)] {
        let conf = std::fs::read_to_string(d.join(format!("o/keepalived-{lb}.conf"))).unwrap();
        for want in [
            format!("    state {state}\n"),
            format!("    priority {priority}\n"),
            "lvs_sync_daemon eth1 VI_1".into(),
        ] {
            assert!(conf.contains(&want), "{want:?} in\n{conf}");
        }
        assert_eq!(conf.matches('{').count(), conf.matches('}').count());
    }
    let agent = std::fs::read_to_string(d.join("o/feedbackd-agent/web1.conf")).unwrap();
    assert!(agent.contains("\ndirector = 10.0.0.2\ndirector = 10.0.0.3\nservice"), "{agent}");
    let out = lvsim(&["export", &f, "--stdout", "keepalived:lb2"]);
    ok(&out);
    assert!(text(&out.stdout).contains("router_id lb2") && text(&out.stdout).contains("state BACKUP"));
    let out = lvsim(&["export", &f, "--stdout", "keepalived"]);
    assert!(text(&out.stdout).contains("router_id lb1"), "the primary's");
    for (arg, words) in [
        ("keepalived:lb9", "no director named \"lb9\" (directors are: lb1, lb2)"),
        ("ha.cf", "ha.cf is written for a fail-over group of heartbeat"),
        ("haproxy", "expected ipvsadm[:DIRECTOR], ipvsadm-rules[:DIRECTOR], keepalived[:DIRECTOR]"),
        ("ipvsadm:lb9", "no director named \"lb9\""),
    ] {
        let out = lvsim(&["export", &f, "--stdout", arg]);
        assert_eq!(out.status.code(), Some(2), "{arg}");
        assert!(text(&out.stderr).contains(words), "{arg}: {}", text(&out.stderr));
    }
    // A sweep axis over the sync mode changes what is exported.
    let out = lvsim(&["export", &f, "--set", "ha.sync.mode=peer_to_peer", "--stdout", "ipvsadm"]);
    ok(&out);
    assert_eq!(text(&out.stdout).matches("--start-daemon").count(), 2, "both roles on the primary");
    let out = lvsim(&["export", &f, "--set", "ha.sync.mode=peer_to_peer", "--stdout", "ipvsadm:lb2"]);
    ok(&out);
    assert_eq!(text(&out.stdout).matches("--start-daemon").count(), 2, "both roles on the backup");
    let out = lvsim(&["export", &f, "--stdout", "ipvsadm-rules:lb2"]);
    ok(&out);
    assert!(text(&out.stdout).contains("# Director lb2 (10.0.0.3)\n"), "{}", text(&out.stdout));
    assert!(!text(&out.stdout).contains("--start-daemon"), "ipvsadm -S has no sync daemons");

    let f = write(&d, "nat.ron", &SMALL.replace("tutorial-nat", "ha-nat-pair"));
    let out = lvsim(&["export", &f, "-o", d.join("n").to_str().unwrap()]);
    ok(&out);
    for file in [
        "ipvsadm-lb1.sh",
        "ipvsadm-lb2.rules",
        "ldirectord.cf",
        "ha.cf",
        "haresources",
        "feedbackd-agent/rs1.conf",
    ] {
        assert!(d.join("n").join(file).is_file(), "{file} missing");
    }
    assert!(!d.join("n/keepalived.conf").exists() && !d.join("n/feedbackd-agent/sorry.conf").exists());
    let out = lvsim(&["export", &f, "--stdout", "haresources"]);
    ok(&out);
    assert!(text(&out.stdout).contains(
        "lb1 IPaddr2::172.17.60.201/24/eth0 IPaddr2::192.168.6.1/24/eth1 ldirectord::ldirectord.cf"
    ));
    let out = lvsim(&["export", &f, "--stdout", "ha.cf"]);
    ok(&out);
    assert!(text(&out.stdout).contains("\nnode lb1\nnode lb2\n"), "{}", text(&out.stdout));
    let out = lvsim(&["export", &f, "--stdout", "ldirectord:lb2"]);
    ok(&out);
    assert!(text(&out.stdout).contains("\tfallback = 192.168.6.9:80 masq\n"), "{}", text(&out.stdout));
}

#[test]
fn validate_checks_fault_events_and_ha_fields() {
    let d = scratch("validate-ha");
    let body = SMALL.replace("tutorial-nat", "ha-pair").replace(
        "    ],\n)",
        "    ],\n    events: [\n        Event(at_s: 5.0, server: \"web1\", change: Crash),\n        Event(at_s: 6.0, director: \"lb1\", change: DirectorDown),\n    ],\n)",
    );
    let f = write(&d, "faults.ron", &body);
    ok(&lvsim(&["validate", &f]));
    ok(&lvsim(&["validate", &f, "--set", "ha.failover=Heartbeat()", "--set", "ha.sync=None"]));
    let out = lvsim(&["validate", &f, "--set", "events[1].server=\"web2\""]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("events[1].server: `DirectorDown` happens to a director"),
        "{}",
        text(&out.stderr)
    );
    let out = lvsim(&["validate", &f, "--set", "ha.failover.advert_int_s=0.5"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("ha.failover.advert_int_s: 0.5 s: VRRP version 2 takes whole seconds")
    );
    let out = lvsim(&["list", "topologies"]);
    ok(&out);
    assert!(text(&out.stdout).contains("ha-pair") && text(&out.stdout).contains("ha-nat-pair"));
}

#[test]
fn list_shows_the_library_topologies_and_schedulers() {
    let out = lvsim(&["list"]);
    ok(&out);
    let s = text(&out.stdout);
    for w in
        ["quickstart ", "validation/o1-mm1-ps ", "tutorial-nat", "tutorial-dr", "tutorial-tun", "wlc", "mh"]
    {
        assert!(s.contains(w), "{w} missing from:\n{s}");
    }
    assert!(!s.contains("(invalid"), "{s}");
    let out = lvsim(&["list", "schedulers", "--json"]);
    ok(&out);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 14);
    let out = lvsim(&["list", "nonsense"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn help_explains_every_subcommand() {
    let out = lvsim(&["--help"]);
    ok(&out);
    let s = text(&out.stdout);
    for c in ["run", "validate", "sweep", "plan", "export", "list", "ipvs", "Exit codes"] {
        assert!(s.contains(c), "{c} missing from --help:\n{s}");
    }
    for c in ["run", "sweep", "plan", "export"] {
        let out = lvsim(&[c, "--help"]);
        ok(&out);
        assert!(text(&out.stdout).contains("--set"), "{c} --help");
    }
}

#[test]
fn the_budget_is_checked_by_validate_run_sweep_and_plan_before_they_start() {
    let d = scratch("budget");
    let f = write(&d, "s.ron", SMALL);
    let out_dir = d.join("out");
    let out_s = out_dir.to_str().unwrap();
    // 100 conn/s for 20 s: a few hundred thousand events, a few tens of MiB.
    for cmd in [vec!["validate", &f], vec!["run", &f, "-q", "-o", out_s]] {
        let mut args = cmd.clone();
        args.extend(["--max-events", "1e4"]);
        let out = lvsim(&args);
        assert_eq!(out.status.code(), Some(2), "{cmd:?}: {}", text(&out.stderr));
        let err = text(&out.stderr);
        assert!(err.contains("s.ron:9:"), "{cmd:?}: the rate's line: {err}");
        assert!(err.contains("clients[0].arrival.rate") && err.contains("--max-events"), "{err}");
        let mut args = cmd.clone();
        args.extend(["--max-memory", "1M"]);
        let err = text(&lvsim(&args).stderr);
        assert!(err.contains("above the budget of 1.0 MiB") && err.contains("--max-memory"), "{err}");
    }
    assert!(!out_dir.exists(), "a refused run writes nothing");
    // Replications multiply the events: the refusal names them.
    let out = lvsim(&["validate", &f, "--set", "replications=50", "--max-events", "1e6"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("replications: the run needs about"), "{}", text(&out.stderr));
    // A sweep counts every point; a plan its trials at the largest count.
    let sweep = SMALL.replace(
        "clients: [",
        "sweep: [Axis(field: \"clients[0].arrival.rate\", values: [10.0, 100.0, 1000.0])],\n    clients: [",
    );
    let f = write(&d, "sweep.ron", &sweep);
    let out = lvsim(&["sweep", &f, "-q", "-o", out_s, "--max-events", "1e6"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("the sweep (at point 1000.0)"), "{}", text(&out.stderr));
    let out = lvsim(&["validate", &f, "--max-events", "1e6"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let farm = r#"Scenario(
    duration_s: 10.0,
    directors: [Director(name: "lvs", address: "10.0.0.1", services: [Service(vip: "172.17.0.1", port: 80,
        real_servers: [RealServer(server: "web", forwarding: DR)])])],
    servers: [Server(name: "web", address: "10.1.0.1", count: 2)],
    clients: [Clients(arrival: Poisson(rate: 10.0), demand_ms: Constant(5.0))],
)"#;
    let f = write(&d, "plan.ron", farm);
    let out = lvsim(&[
        "plan",
        &f,
        "-q",
        "-o",
        out_s,
        "--servers",
        "web",
        "--slo",
        "latency_ms.p99<=100",
        "--max",
        "100000",
        "--max-memory",
        "256M",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("the plan (at servers[0].count = 100000)"), "{}", text(&out.stderr));
    // Bad flag values are usage errors.
    let out = lvsim(&["validate", &f, "--max-memory", "lots"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("not a size"), "{}", text(&out.stderr));
    // Within the budget, all is well.
    ok(&lvsim(&["validate", &f, "--max-events", "1e7", "--max-memory", "1G"]));
}
