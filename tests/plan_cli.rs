//! `lvsim plan` through the binary: replicated trials judged on their intervals, the
//! choice between indistinguishable schedulers, several groups sized together against a
//! brute-force grid, the single-group form, and bad plan sections located in the file.
//! Each test runs the binary in a fresh temporary directory with its report there.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use reports::Estimate;
use reports::significance::welch;
use serde_json::Value;

fn scratch(name: &str) -> PathBuf {
    common::cli::scratch(&format!("plan-{name}"))
}

/// `lvsim ARGS` with `dir` as the working directory.
fn lvsim_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lvsim")).args(args).current_dir(dir).output().expect("spawning lvsim")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\n{}\n{}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn plan_json(dir: &Path, out: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join(out).join("plan.json")).unwrap()).unwrap()
}

fn estimate(v: &Value) -> Estimate {
    serde_json::from_value(v.clone()).unwrap()
}

/// The first SLO check's estimate of a trial.
fn first(t: &Value) -> Estimate {
    estimate(&t["checks"][0]["estimate"])
}

/// Least connection against round robin on a lightly loaded farm: lc's p99 is a little
/// lower at the answer's size, but not significantly (seed 2 makes it so, bit for bit).
const TWO_SCHEDULERS: &str = r#"Scenario(
    seed: 2,
    duration_s: 10.0,
    warmup_s: 1.0,
    directors: [Director(name: "lvs", address: "10.0.0.1", services: [
        Service(vip: "10.0.0.100", port: 80, scheduler: rr, real_servers: [RealServer(server: "web", forwarding: DR)]),
    ])],
    servers: [Server(name: "web", count: 2, address: "10.0.0.11", cpu: Cpu(cores: 2))],
    clients: [Clients(arrival: Poisson(rate: 150.0), demand_ms: Exponential(mean: 10.0))],
    plan: Plan(
        slo: [Expect(metric: "latency_ms.p99", at_most: 100.0)],
        servers: "web",
        min: 2,
        max: 8,
        schedulers: [lc, rr],
    ),
)
"#;

#[test]
fn indistinguishable_schedulers_give_the_simpler_one_and_say_so() {
    let d = scratch("indistinguishable");
    std::fs::write(d.join("p.ron"), TWO_SCHEDULERS).unwrap();
    let stdout = ok(&lvsim_in(&d, &["plan", "p.ron", "-o", "out", "--no-progress"]));
    let p = plan_json(&d, "out");
    let a = &p["answer"];
    assert_eq!(a["scheduler"], "rr", "{a}");
    assert_eq!(a["choice"], "indistinguishable", "{a}");
    // Replications by default, each trial with its interval.
    let trials = p["trials"].as_array().unwrap();
    assert!(trials.iter().all(|t| first(t).n == 5 && first(t).ci95 > 0.0), "{trials:?}");
    // The evidence: at the answer's size lc has the lower mean, but Welch cannot tell
    // them apart, so the simpler rr is chosen, not the lower mean.
    let at = |s: &str| trials.iter().find(|t| t["scheduler"] == s && t["sizes"] == a["sizes"]).unwrap();
    let (rr, lc) = (first(at("rr")), first(at("lc")));
    assert!(lc.mean < rr.mean, "lc {lc:?} rr {rr:?}");
    let d_lc = welch(&rr, &lc);
    assert!(d_lc.testable && !d_lc.significant, "{d_lc:?}");
    assert_eq!(a["rivals"][0]["scheduler"], "lc");
    assert_eq!(estimate(&a["value"]), rr);
    let why = a["why"].as_str().unwrap();
    assert!(
        why.contains("statistically indistinguishable from lc") && why.contains("the simpler choice"),
        "{why}"
    );
    assert!(stdout.contains("indistinguishable") && stdout.contains("± "), "{stdout}");
    // Rows sorted: the simpler scheduler first (whatever the plan's order), then sizes.
    let keys: Vec<(String, u64)> = trials
        .iter()
        .map(|t| (t["scheduler"].as_str().unwrap().to_owned(), t["sizes"][0].as_u64().unwrap()))
        .collect();
    let mut sorted = keys.clone();
    sorted.sort_by_key(|(s, n)| (s != "rr", *n));
    assert_eq!(keys, sorted);
    // The terminal text is saved with the report, and the page leads with the answer.
    assert_eq!(std::fs::read_to_string(d.join("out/summary.txt")).unwrap(), stdout);
    let html = std::fs::read_to_string(d.join("out/report.html")).unwrap();
    let (answer, trials_at) =
        (html.find("Use 2 web servers with the rr scheduler").unwrap(), html.find("id=\"trials\"").unwrap());
    assert!(answer < trials_at);
    // One run each: nothing can be told apart, and the words say so.
    let out = lvsim_in(&d, &["plan", "p.ron", "-o", "one", "--replications", "1", "--json", "--no-progress"]);
    let p: Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(p["answer"]["scheduler"], "rr");
    assert!(p["answer"]["why"].as_str().unwrap().contains("With one run each"), "{}", p["answer"]);
}

const MULTI: &str = r#"Scenario(
    duration_s: 8.0,
    warmup_s: 1.0,
    topology: "three-tier",
    clients: [Clients(arrival: Poisson(rate: 400.0), demand_ms: Exponential(mean: 8.0), backend_demand_ms: Exponential(mean: 10.0))],
    plan: Plan(
        slo: [Expect(metric: "latency_ms.p99", at_most: 100.0)],
        sizes: [
            Servers(name: "app", min: APP_MIN, max: APP_MAX, cost: 1.0),
            BackendCores(name: "db", min: DB_MIN, max: DB_MAX, cost: 0.25),
        ],
        schedulers: [wlc],
        replications: 3,
    ),
)
"#;

fn multi(app: (u32, u32), db: (u32, u32)) -> String {
    MULTI
        .replace("APP_MIN", &app.0.to_string())
        .replace("APP_MAX", &app.1.to_string())
        .replace("DB_MIN", &db.0.to_string())
        .replace("DB_MAX", &db.1.to_string())
}

#[test]
fn a_multi_group_plan_picks_the_cheapest_meeting_combination_of_the_grid() {
    let d = scratch("multi");
    let (apps, dbs) = ((1, 3), (4, 8));
    std::fs::write(d.join("p.ron"), multi(apps, dbs)).unwrap();
    ok(&lvsim_in(&d, &["plan", "p.ron", "-o", "out", "-q"]));
    let p = plan_json(&d, "out");
    let a = &p["answer"];
    let trials = p["trials"].as_array().unwrap();
    assert_eq!(p["grid_points"], 15);
    assert!(trials.len() < 15, "the staircase ran {} trials of a 15-point grid", trials.len());
    // Brute force: every point of the grid as a one-point plan, the same trials (same
    // seeds, same verdicts), then the cheapest that meets.
    let mut best: Option<(f64, Vec<u32>)> = None;
    for x in apps.0..=apps.1 {
        for y in dbs.0..=dbs.1 {
            std::fs::write(d.join("one.ron"), multi((x, x), (y, y))).unwrap();
            ok(&lvsim_in(&d, &["plan", "one.ron", "-o", "one", "-q"]));
            let one = plan_json(&d, "one");
            let t = &one["trials"][0];
            let cost = t["cost"].as_f64().unwrap();
            assert_eq!(cost, f64::from(x) + 0.25 * f64::from(y));
            // A trial the staircase ran has the same verdict here.
            if let Some(s) = trials.iter().find(|s| s["sizes"] == t["sizes"]) {
                assert_eq!(s["meets"], t["meets"], "{x}/{y}");
            }
            if t["meets"] == true && best.as_ref().is_none_or(|b| cost < b.0) {
                best = Some((cost, vec![x, y]));
            }
        }
    }
    let (cost, sizes) = best.expect("some point of the grid meets the SLO");
    assert_eq!(a["cost"].as_f64().unwrap(), cost, "{a}");
    assert_eq!(a["sizes"], serde_json::json!(sizes), "{a}");
    assert!(sizes[0] > apps.0 && sizes[1] > dbs.0, "the answer is inside the grid: {sizes:?}");
    let why = a["why"].as_str().unwrap();
    assert!(why.contains("cheapest configuration shown to meet"), "{why}");
    assert!(why.contains(&format!("With {} db cores it fails", sizes[1] - 1)), "{why}");
}

#[test]
fn the_library_three_tier_plan_and_the_old_single_group_form() {
    let d = scratch("library");
    let lib = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/library");
    // The single-group form on the command line still works: a farm without a plan.
    let cap = lib.join("capacity-planning.ron");
    let out = lvsim_in(
        &d,
        &["plan", cap.to_str().unwrap(), "-o", "cap", "-q", "--min", "3", "--max", "5", "--schedulers", "rr"],
    );
    ok(&out);
    let p = plan_json(&d, "cap");
    assert_eq!(p["groups"][0]["label"], "web servers");
    assert_eq!(p["groups"][0]["path"], "servers[0].count");
    assert!(p["answer"]["sizes"][0].as_u64().is_some_and(|n| (3..=5).contains(&n)), "{}", p["answer"]);
    // --min/--max do not apply to `sizes`.
    let three = lib.join("plan-three-tier.ron");
    let out = lvsim_in(&d, &["plan", three.to_str().unwrap(), "-o", "x", "--max", "4"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--set plan.sizes[I].min=N"), "{}", text(&out.stderr));
}

#[test]
fn bad_plan_sections_give_file_line_column_errors() {
    let d = scratch("bad");
    let base = multi((1, 3), (4, 8));
    // (what is replaced, by what, the message, text on the line the error points at)
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "name: \"db\"",
            "name: \"dbx\"",
            "plan.sizes[1].name: no backend named \"dbx\" (they are: db)",
            "dbx",
        ),
        (
            "name: \"app\"",
            "name: \"ap\"",
            "plan.sizes[0].name: no server entry named \"ap\" (they are: app)",
            "\"ap\"",
        ),
        ("min: 4, max: 8", "min: 9, max: 8", "plan.sizes[1].max: the range 9..=8 is empty", "min: 9"),
        ("min: 1, max: 3", "min: 0, max: 3", "plan.sizes[0].min: must be at least 1", "min: 0"),
        ("cost: 0.25", "cost: -1.0", "plan.sizes[1].cost: -1 is not a cost", "cost: -1"),
        (
            "schedulers: [wlc]",
            "schedulers: [wlc, rr, wlc]",
            "plan.schedulers[2]: this scheduler is listed twice",
            "schedulers",
        ),
        (
            "schedulers: [wlc]",
            "schedulers: []",
            "plan.schedulers: the plan compares no scheduler",
            "schedulers",
        ),
        ("replications: 3", "replications: 0", "plan.replications: must be 1..=100", "replications"),
        ("min: 4, max: 8", "min: 4, max: 5000", "plan.sizes[1].max: at most 4096", "max: 5000"),
        ("min: 1, max: 3", "min: 1, max: 4000000", "plan.sizes[0].max: at most 1000000", "max: 4000000"),
        ("replications: 3", "replications: 3, servers: \"app\"", "give either `servers`", "sizes: ["),
        ("cost: 0.25", "cost: 0.25, step: 2", "Unexpected field named `step`", "step"),
    ];
    for (from, to, want, marker) in cases {
        assert!(base.contains(from), "{from}");
        let body = base.replacen(from, to, 1);
        std::fs::write(d.join("bad.ron"), &body).unwrap();
        let line = body.lines().position(|l| l.contains(marker)).unwrap() + 1;
        for cmd in ["validate", "plan"] {
            let args: &[&str] =
                if cmd == "plan" { &["plan", "bad.ron", "-o", "o", "-q"] } else { &["validate", "bad.ron"] };
            let out = lvsim_in(&d, args);
            let err = text(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{cmd} {to}: {err}");
            assert!(err.contains(want), "{cmd} {to}: want {want:?} in {err}");
            // file:line:column, on the line that holds the mistake.
            assert!(err.contains(&format!("bad.ron:{line}:")), "{cmd} {to}: want line {line} in {err}");
        }
    }
    assert!(!d.join("o").exists(), "a refused plan writes nothing");
    // An SLO on a path the summary does not have is refused, naming the path.
    std::fs::write(d.join("p.ron"), base.replace("latency_ms.p99", "latency_ms.p42")).unwrap();
    let out = lvsim_in(&d, &["plan", "p.ron", "-o", "o", "-q"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("latency_ms.p42"), "{}", text(&out.stderr));
}

#[test]
fn every_slo_check_on_any_summary_path_is_judged_on_its_interval() {
    let d = scratch("paths");
    std::fs::write(d.join("p.ron"), TWO_SCHEDULERS).unwrap();
    let out = lvsim_in(
        &d,
        &[
            "plan",
            "p.ron",
            "-o",
            "out",
            "-q",
            "--schedulers",
            "rr",
            "--replications",
            "3",
            "--slo",
            "latency_ms.p99<=100",
            "--slo",
            "real_servers[0].utilization<=0.5",
            "--slo",
            "throughput_cps>=140",
        ],
    );
    ok(&out);
    let p = plan_json(&d, "out");
    let bounds = [
        ("latency_ms.p99", 100.0, true),
        ("real_servers[0].utilization", 0.5, true),
        ("throughput_cps", 140.0, false),
    ];
    for t in p["trials"].as_array().unwrap() {
        let checks = t["checks"].as_array().unwrap();
        assert_eq!(checks.len(), 4, "three SLO checks and the loss bound: {t}");
        assert_eq!(checks[3]["metric"], "loss_fraction");
        for (c, (metric, bound, at_most)) in checks.iter().zip(bounds) {
            assert_eq!(c["metric"], metric);
            let e = estimate(&c["estimate"]);
            assert_eq!(e.n, 3);
            let (lo, hi) = (e.mean - e.ci95, e.mean + e.ci95);
            let want = match (at_most, hi <= bound, lo >= bound) {
                (true, true, _) | (false, _, true) => "meets",
                (true, _, true) if lo > bound => "fails",
                (false, true, _) if hi < bound => "fails",
                _ => "unclear",
            };
            assert_eq!(c["verdict"], want, "{metric} {e:?}");
        }
        let all = checks.iter().all(|c| c["verdict"] == "meets");
        assert_eq!(t["meets"], all, "{t}");
    }
    // Utilisation of the first server falls with more servers: the answer needs enough.
    let n = p["answer"]["sizes"][0].as_u64().unwrap();
    assert!(n >= 2, "{}", p["answer"]);
}

#[test]
fn slos_on_named_services_populations_and_backends_pass_through() {
    let d = scratch("named");
    std::fs::write(d.join("p.ron"), multi((1, 3), (4, 8))).unwrap();
    let run = |out: &str, slo: &[&str]| {
        let mut args = vec!["plan", "p.ron", "-o", out, "-q"];
        for s in slo {
            args.extend(["--slo", s]);
        }
        lvsim_in(&d, &args)
    };
    ok(&run("overall", &["latency_ms.p99<=100"]));
    // One service and one population: their p99 is the overall p99, so the plan is the same.
    ok(&run(
        "named",
        &["services[tcp-10.1.0.100-80].latency_ms.p99<=100", "populations[clients].latency_ms.p99<=100"],
    ));
    let (overall, named) = (plan_json(&d, "overall"), plan_json(&d, "named"));
    assert_eq!(overall["answer"]["sizes"], named["answer"]["sizes"]);
    let trials = |p: &Value| p["trials"].as_array().unwrap().iter().map(first).collect::<Vec<_>>();
    assert_eq!(trials(&overall), trials(&named));
    assert_eq!(named["trials"][0]["checks"][1]["metric"], "populations[clients].latency_ms.p99");
    // A backend's utilisation bound needs more cores than the latency alone.
    ok(&run("db", &["latency_ms.p99<=100", "backends[db].utilization<=0.6"]));
    let db = plan_json(&d, "db");
    let cores = |p: &Value| p["answer"]["sizes"][1].as_u64().unwrap();
    assert!(cores(&db) > cores(&overall), "{} vs {}", db["answer"], overall["answer"]);
    for t in db["trials"].as_array().unwrap().iter().filter(|t| t["meets"] == true) {
        let e = estimate(&t["checks"][1]["estimate"]);
        assert!(e.mean + e.ci95 <= 0.6, "{t}");
    }
    // A name the summary does not have: refused, with the names there are.
    let out = run("x", &["services[shop].latency_ms.p99<=100"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("tcp-10.1.0.100-80"), "{}", text(&out.stderr));
}
