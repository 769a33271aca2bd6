//! Breakdowns per service, per client population and for the backend tier through the
//! `lvsim` binary (issue 19, item 3): `lvsim run` in a fresh directory writes
//! `services.csv`, `populations.csv`, `backends.csv`, summary.json's `services`,
//! `populations` and `backends`, the page's section and the terminal tables; `expect`
//! names them (`services[web]...`), passing with exit 0, failing with exit 3, and a
//! missing name is an input error (exit 2) that lists the names there are. Same seed,
//! same summary.json.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn lvsim(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lvsim")).current_dir(cwd).args(args).output().expect("spawning lvsim")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn code(o: &Output) -> Option<i32> {
    o.status.code()
}

/// A fresh directory for one test.
fn dir(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("breakdown-cli-{name}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Two services on one VIP (`web` on :80, an unnamed one on :443) over three DR servers
/// that query a 2-core database; `desktop` (100 conn/s) and `api` (20 conn/s, 5 ms at
/// the database) connect to :80, `mobile` (40 conn/s, 40 ms away) to :443. `expect`
/// lines are put in as given.
fn scenario(d: &Path, expect: &str) -> String {
    let text = format!(
        r#"// breakdown test
Scenario(
    seed: 3,
    duration_s: 65.0,
    warmup_s: 5.0,
    directors: [(
        name: "lvs",
        address: "10.0.0.1",
        services: [
            (name: "web", vip: "10.0.0.100", port: 80, scheduler: wlc, real_servers: [(server: "app", forwarding: DR)]),
            (vip: "10.0.0.100", port: 443, scheduler: wlc, real_servers: [(server: "app", forwarding: DR)]),
        ],
    )],
    servers: [(name: "app", address: "10.2.0.1", count: 3, backend: Some("db"))],
    backends: [(name: "db", latency_ms: 0.2, cpu: (cores: 2))],
    clients: [
        Clients(name: "desktop", port: 80, arrival: Poisson(rate: 100.0), demand_ms: Constant(1.0)),
        Clients(name: "api", port: 80, arrival: Poisson(rate: 20.0), demand_ms: Constant(1.0),
                backend_demand_ms: Exponential(mean: 5.0)),
        Clients(name: "mobile", port: 443, arrival: Poisson(rate: 40.0), access_latency_ms: 40.0,
                demand_ms: Constant(1.0)),
    ],
    expect: [{expect}],
)
"#
    );
    let path = d.join("breakdown.ron");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn run(d: &Path, file: &str, out: &str) -> Output {
    lvsim(d, &["run", file, "--out", out])
}

fn csv_rows(path: &Path) -> Vec<Vec<String>> {
    let t = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    t.lines().map(|l| l.split(',').map(String::from).collect()).collect()
}

#[test]
fn run_writes_the_breakdowns_everywhere() {
    let d = dir("files");
    let file = scenario(&d, "");
    let o = run(&d, &file, "out");
    assert_eq!(code(&o), Some(0), "{}\n{}", text(&o.stdout), text(&o.stderr));
    let out = d.join("out");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let names = |k: &str| -> Vec<String> {
        v[k].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(names("services"), ["web", "tcp-10.0.0.100-443"]);
    assert_eq!(names("populations"), ["desktop", "api", "mobile"]);
    assert_eq!(names("backends"), ["db"]);
    let web = &v["services"][0];
    assert_eq!(
        (web["protocol"].as_str(), web["vip"].as_str(), web["port"].as_u64()),
        (Some("TCP"), Some("10.0.0.100"), Some(80))
    );
    for k in ["mean", "p50", "p90", "p99", "p999", "max"] {
        assert!(web["latency_ms"][k].as_f64().unwrap() > 0.0, "services[web].latency_ms.{k}");
    }
    // Counts add up; throughputs are the arrival rates (60 s window, Poisson: ±8%).
    let pops = v["populations"].as_array().unwrap();
    let offered: u64 = pops.iter().map(|p| p["connections"]["offered"].as_u64().unwrap()).sum();
    assert_eq!(offered, v["connections"]["offered"].as_u64().unwrap());
    for (p, rate) in pops.iter().zip([100.0, 20.0, 40.0]) {
        let t = p["throughput_cps"].as_f64().unwrap();
        assert!((t - rate).abs() < 0.08 * rate, "{}: {t} conn/s for {rate}", p["name"]);
        assert_eq!(p["loss_fraction"].as_f64(), Some(0.0));
    }
    assert_eq!(pops[2]["service"].as_str(), Some("tcp-10.0.0.100-443"));
    // The database: 20 queries/s × 5 ms over 2 cores = 5% busy.
    let db = &v["backends"][0];
    let u = db["utilization"].as_f64().unwrap();
    assert!((u - 0.05).abs() < 0.01, "db utilisation {u}");
    assert_eq!(db["queries"].as_u64(), pops[1]["connections"]["completed"].as_u64());
    assert!(db["queue_max"].as_u64().unwrap() >= 1 && db["queue_mean"].as_f64().unwrap() > 0.0);
    // The CSV files: a header and a row per element, the same names.
    let services = csv_rows(&out.join("services.csv"));
    assert_eq!(services[0][..5], ["name", "protocol", "vip", "port", "fwmark"]);
    assert_eq!((services.len(), services[1][0].as_str()), (3, "web"));
    let populations = csv_rows(&out.join("populations.csv"));
    assert_eq!(
        populations.iter().skip(1).map(|r| r[0].as_str()).collect::<Vec<_>>(),
        ["desktop", "api", "mobile"]
    );
    let backends = csv_rows(&out.join("backends.csv"));
    assert_eq!((backends.len(), backends[1][0].as_str()), (2, "db"));
    assert_eq!(backends[0][1], "utilization");
    let page = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(page.contains("id=\"breakdown\"") && page.contains("Backend tier"), "no Breakdowns section");
    for name in ["tcp-10.0.0.100-443", "mobile", "db"] {
        assert!(page.contains(&format!("<td class=\"l\">{name}</td>")), "{name} not in the page's tables");
    }
    // The terminal: the services, populations and backend tables.
    let stdout = text(&o.stdout);
    for (first, then) in [("service ", "listens on"), ("population ", "loss %"), ("backend ", "queue mean")] {
        let found = stdout.lines().any(|l| l.starts_with(first) && l.contains(then) && l.contains("p99 ms"));
        assert!(found, "no table headed {first:?} in\n{stdout}");
    }
    assert!(stdout.lines().any(|l| l.starts_with("mobile ") && l.contains("tcp-10.0.0.100-443")), "{stdout}");
}

#[test]
fn expect_names_services_populations_and_backends() {
    let d = dir("expect");
    let pass = "Expect(metric: \"services[web].loss_fraction\", at_most: 0.0), \
                Expect(metric: \"populations[mobile].latency_ms.p50\", at_least: 160.0), \
                Expect(metric: \"backends[db].utilization\", approx: 0.05, abs_tolerance: 0.01), \
                Expect(metric: \"services[tcp-10.0.0.100-443].throughput_cps\", approx: 40.0, tolerance: 0.08)";
    let o = run(&d, &scenario(&d, pass), "pass");
    assert_eq!(code(&o), Some(0), "{}\n{}", text(&o.stdout), text(&o.stderr));
    assert_eq!(text(&o.stdout).matches("  ok   ").count(), 4, "{}", text(&o.stdout));

    // The mobile clients are 40 ms away: two round trips put their median above 160 ms.
    let fail = "Expect(metric: \"populations[mobile].latency_ms.p50\", at_most: 100.0)";
    let o = run(&d, &scenario(&d, fail), "fail");
    assert_eq!(code(&o), Some(3), "{}\n{}", text(&o.stdout), text(&o.stderr));
    assert!(text(&o.stdout).contains("FAIL populations[mobile].latency_ms.p50 = "), "{}", text(&o.stdout));

    let missing = "Expect(metric: \"services[shop].latency_ms.p99\", at_most: 100.0)";
    let o = run(&d, &scenario(&d, missing), "missing");
    assert_eq!(code(&o), Some(2), "{}\n{}", text(&o.stdout), text(&o.stderr));
    let err = text(&o.stderr);
    assert!(err.contains("no element named \"shop\"; names: web, tcp-10.0.0.100-443"), "{err}");
}

#[test]
fn same_seed_same_summary_and_bad_service_names_are_refused() {
    let d = dir("determinism");
    let file = scenario(&d, "");
    let json = |out: &str| {
        let o = run(&d, &file, out);
        assert_eq!(code(&o), Some(0), "{}", text(&o.stderr));
        let mut v: Value =
            serde_json::from_str(&std::fs::read_to_string(d.join(out).join("summary.json")).unwrap())
                .unwrap();
        v["wall_s"] = Value::Null;
        v
    };
    let (a, b) = (json("a"), json("b"));
    assert!(!a["populations"].as_array().unwrap().is_empty());
    assert_eq!(a, b);
    for csv in ["services.csv", "populations.csv", "backends.csv"] {
        assert_eq!(
            std::fs::read(d.join("a").join(csv)).unwrap(),
            std::fs::read(d.join("b").join(csv)).unwrap()
        );
    }

    // A name that cannot stand in a path, and one name for two services.
    let t = std::fs::read_to_string(&file).unwrap();
    for (bad, msg) in [
        (t.replace("name: \"web\"", "name: \"web shop]\""), "is not a service name"),
        (
            t.replace("(vip: \"10.0.0.100\", port: 443", "(name: \"web\", vip: \"10.0.0.100\", port: 443"),
            "already the name of TCP  10.0.0.100:80",
        ),
    ] {
        std::fs::write(&file, bad).unwrap();
        let o = lvsim(&d, &["validate", &file]);
        assert_eq!(code(&o), Some(2), "{}", text(&o.stdout));
        let err = text(&o.stderr);
        assert!(err.contains(msg) && err.contains("directors[0].services["), "{err}");
    }
}

#[test]
fn set_selects_a_population_by_name() {
    let d = dir("set");
    let file =
        scenario(&d, "Expect(metric: \"populations[mobile].throughput_cps\", approx: 80.0, tolerance: 0.08)");
    let o = lvsim(&d, &["run", &file, "--out", "out", "--set", "clients[mobile].arrival.rate=80.0"]);
    assert_eq!(code(&o), Some(0), "{}\n{}", text(&o.stdout), text(&o.stderr));
    let o = lvsim(&d, &["run", &file, "--out", "out2", "--set", "clients[tablet].arrival.rate=80.0"]);
    assert_eq!(code(&o), Some(2), "{}", text(&o.stdout));
    let err = text(&o.stderr);
    assert!(err.contains("clients has no element named \"tablet\" (names: desktop, api, mobile)"), "{err}");
}
