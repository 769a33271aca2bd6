//! A run's replications and a plan's grid split into shards (`--shard K/N`) and merged
//! (`lvsim merge`), through the binary: the merged report directory is the local one, file
//! for file and byte for byte but for wall times, however the work was split (1, 2, 3, 7
//! ways, more shards than runs, shards in several directories, other `--jobs`); the exit
//! codes of `run` (3 on a failed check) survive the merge; failed runs, shards of other
//! plans, tampered pages and grids too large are refused, naming what is wrong.
//!
//! Each test runs the binary in fresh temporary directories: the local command in one, the
//! shards and the merge in another, with the same relative `-o out`, so that even the
//! paths the texts print are the same.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::cli::{lvsim_in, text};

use common::reports::{SMALL_PLAN, assert_same_report, masked};

fn scratch(name: &str) -> PathBuf {
    common::cli::scratch(&format!("shard-run-plan-{name}"))
}

fn show(out: &Output) -> String {
    format!("exit {:?}\nstdout:\n{}\nstderr:\n{}", out.status.code(), text(&out.stdout), text(&out.stderr))
}

fn ok(out: &Output) -> String {
    assert!(out.status.success(), "{}", show(out));
    text(&out.stdout)
}

fn args<'a>(base: &[&'a str], more: &[&'a str]) -> Vec<&'a str> {
    [base, more].concat()
}

/// Runs `base --shard K/N` for every K (odd K into `a/`, even K into `b/`; odd K with one
/// thread, even K with two) in `dir`, each exiting 0, then `lvsim merge a [b] -o out`.
fn split_and_merge(dir: &Path, base: &[&str], n: u32, merge_args: &[&str]) -> Output {
    for k in 1..=n {
        let spec = format!("{k}/{n}");
        let (shards, jobs) = if k % 2 == 1 { ("a", "1") } else { ("b", "2") };
        let out = lvsim_in(dir, &args(base, &["--shard", &spec, "--shards-dir", shards, "-j", jobs]));
        let line = ok(&out);
        assert!(line.starts_with(&format!("shard {spec} of ")) && line.contains("0 failed"), "{line}");
    }
    let dirs: &[&str] = if n > 1 { &["a", "b"] } else { &["a"] };
    lvsim_in(dir, &args(&args(&["merge"], dirs), &args(&["-o", "out"], merge_args)))
}

const RUN: &[&str] = &["run", "quickstart", "--replications", "5", "--no-progress"];

#[test]
fn a_runs_replications_split_any_way_merge_into_the_local_report() {
    let local = scratch("run-local");
    let want = ok(&lvsim_in(&local, &args(RUN, &["-o", "out"])));
    assert!(local.join("out/replications.json").is_file() && local.join("out/report.html").is_file());
    for n in [1, 2, 3, 7] {
        let d = scratch(&format!("run-{n}"));
        let out = split_and_merge(&d, RUN, n, &[]);
        assert_eq!(masked(&ok(&out)), masked(&want), "{n} shards: the terminal text");
        assert_same_report(&local.join("out"), &d.join("out"), &format!("run split {n} ways"));
        // Replication 0's pages were written by the shard that ran unit 0 (shard 1), only.
        assert!(d.join(format!("a/shard-1-of-{n}.report/summary.json")).is_file());
        if n > 1 {
            assert!(!d.join(format!("b/shard-2-of-{n}.report")).exists());
        }
    }
    // One replication split two ways: shard 2 is empty, and there are no replications files.
    let one = &["run", "quickstart", "--no-progress"];
    let local_one = scratch("run-one-local");
    let want = ok(&lvsim_in(&local_one, &args(one, &["-o", "out"])));
    assert!(!local_one.join("out/replications.json").exists());
    let d = scratch("run-one");
    assert_eq!(masked(&ok(&split_and_merge(&d, one, 2, &[]))), masked(&want));
    assert_same_report(&local_one.join("out"), &d.join("out"), "one replication split 2 ways");
    // --json prints the first seed's summary, as `run --json` does.
    let d = scratch("run-json");
    let merged = split_and_merge(&d, RUN, 2, &["--json"]);
    let local_json = ok(&lvsim_in(&local, &args(RUN, &["-o", "json", "--json"])));
    assert_eq!(masked(&ok(&merged)), masked(&local_json));
}

#[test]
fn a_failed_check_exits_3_after_the_merge_as_after_the_run() {
    // quickstart drops no connection: "at most -1 dropped" fails on every seed.
    let base =
        &["run", "quickstart", "--replications", "3", "--set", "expect[0].at_most=-1.0", "--no-progress"];
    let local = scratch("check-local");
    let run = lvsim_in(&local, &args(base, &["-o", "out"]));
    assert_eq!(run.status.code(), Some(3), "{}", show(&run));
    let d = scratch("check-split");
    // The shards do not judge: each exits 0; the merge judges the first seed, as `run` does.
    let merged = split_and_merge(&d, base, 2, &[]);
    assert_eq!(merged.status.code(), Some(3), "{}", show(&merged));
    assert_eq!(masked(&text(&merged.stdout)), masked(&text(&run.stdout)));
    assert_eq!(text(&merged.stderr), text(&run.stderr));
    assert!(
        text(&merged.stderr).contains("1 check(s) of library:quickstart.ron failed"),
        "{}",
        show(&merged)
    );
    assert_same_report(&local.join("out"), &d.join("out"), "a failed check");
}

#[test]
fn tampered_or_missing_pages_of_replication_0_are_refused() {
    let d = scratch("pages");
    let base = &["run", "quickstart", "--replications", "2", "--no-progress", "-q"];
    for k in ["1/2", "2/2"] {
        ok(&lvsim_in(&d, &args(base, &["--shard", k, "--shards-dir", "s"])));
    }
    let pages = d.join("s/shard-1-of-2.report");
    // Pages of another run (another seed) in their place: refused, named.
    let other = &["run", "quickstart", "--seed", "7", "-o", "other", "-q"];
    ok(&lvsim_in(&d, other));
    let summary = std::fs::read(pages.join("summary.json")).unwrap();
    std::fs::copy(d.join("other/summary.json"), pages.join("summary.json")).unwrap();
    let out = lvsim_in(&d, &["merge", "s", "-o", "out"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(text(&out.stderr).contains("summary.json: not the summary of replication 0"), "{}", show(&out));
    std::fs::write(pages.join("summary.json"), summary).unwrap();
    // The report into the pages themselves: refused before anything is removed.
    let out = lvsim_in(&d, &["merge", "s", "-o", "s/shard-1-of-2.report"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(text(&out.stderr).contains("would replace the pages"), "{}", show(&out));
    assert!(pages.join("report.html").is_file());
    // A link among the pages: not followed, named.
    std::fs::remove_file(pages.join("series.csv")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", pages.join("series.csv")).unwrap();
    let out = lvsim_in(&d, &["merge", "s", "-o", "out"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(text(&out.stderr).contains("series.csv: not a report page"), "{}", show(&out));
    // The pages gone: named too.
    std::fs::remove_dir_all(&pages).unwrap();
    let out = lvsim_in(&d, &["merge", "s", "-o", "out"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(text(&out.stderr).contains("shard-1-of-2.report"), "{}", show(&out));
    assert!(!d.join("out/summary.json").exists(), "nothing merged");
}

#[test]
fn a_plans_grid_split_any_way_merges_into_the_local_plan() {
    let local = scratch("plan-local");
    let want = ok(&lvsim_in(&local, &args(SMALL_PLAN, &["-o", "out"])));
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(local.join("out/plan.json")).unwrap()).unwrap();
    let trials = plan["trials"].as_array().unwrap().len();
    // Bisection ran fewer trials than the grid holds: the merge must replay it, not list the grid.
    assert!(trials > 2 && trials < 8, "{trials} trials");
    assert!(plan["answer"]["scheduler"].is_string(), "{plan}");
    for n in [1, 3, 7, 20] {
        let d = scratch(&format!("plan-{n}"));
        let out = split_and_merge(&d, SMALL_PLAN, n, &[]);
        assert_eq!(masked(&ok(&out)), masked(&want), "{n} shards: the terminal text");
        assert_same_report(&local.join("out"), &d.join("out"), &format!("plan split {n} ways"));
    }
}

#[test]
fn a_two_group_plan_merges_into_the_local_plan() {
    // plan-three-tier's staircase walk over app servers x database cores, made small:
    // 2 x 5 sizes x 2 schedulers x 2 runs = 40 runs of 6 s.
    let base = &[
        "plan",
        "plan-three-tier",
        "--set",
        "plan.sizes[0].min=2",
        "--set",
        "plan.sizes[0].max=3",
        "--set",
        "plan.sizes[1].min=4",
        "--set",
        "plan.sizes[1].max=8",
        "--replications",
        "2",
        "--set",
        "duration_s=6",
        "--set",
        "warmup_s=1",
        "--no-progress",
    ];
    let local = scratch("three-tier-local");
    let want = ok(&lvsim_in(&local, &args(base, &["-o", "out"])));
    let d = scratch("three-tier-3");
    let out = split_and_merge(&d, base, 3, &[]);
    assert_eq!(masked(&ok(&out)), masked(&want));
    assert_same_report(&local.join("out"), &d.join("out"), "plan-three-tier split 3 ways");
}

#[test]
fn shards_of_plans_with_other_options_do_not_merge() {
    let d = scratch("other-slo");
    ok(&lvsim_in(&d, &args(SMALL_PLAN, &["--shard", "1/2", "--shards-dir", "s", "-q"])));
    // The same grid, judged against another objective: the same runs, another plan.
    let other =
        args(SMALL_PLAN, &["--slo", "latency_ms.p99<=80", "--shard", "2/2", "--shards-dir", "s", "-q"]);
    ok(&lvsim_in(&d, &other));
    let out = lvsim_in(&d, &["merge", "s", "-o", "out"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let err = text(&out.stderr);
    assert!(err.contains("shard-2-of-2.json") && err.contains("fingerprint"), "{err}");
    // Another number of replications: another grid.
    std::fs::remove_file(d.join("s/shard-2-of-2.json")).unwrap();
    let mut three = SMALL_PLAN.to_vec();
    three[9] = "3";
    ok(&lvsim_in(&d, &args(&three, &["--shard", "2/2", "--shards-dir", "s", "-q"])));
    let out = lvsim_in(&d, &["merge", "s", "-o", "out"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(!d.join("out/plan.json").exists());
}

/// A plan whose trials below 3 servers cannot be built (an event names `web3`).
const NEEDS_THREE: &str = r#"Scenario(
    seed: 2,
    duration_s: 4.0,
    warmup_s: 1.0,
    directors: [Director(name: "lvs", address: "10.0.0.1", services: [
        Service(vip: "10.0.0.100", port: 80, scheduler: rr, real_servers: [RealServer(server: "web", forwarding: DR)]),
    ])],
    servers: [Server(name: "web", count: 3, address: "10.0.0.11", cpu: Cpu(cores: 2))],
    clients: [Clients(arrival: Poisson(rate: 150.0), demand_ms: Exponential(mean: 10.0))],
    events: [Event(at_s: 2.0, server: "web3", change: Weight(0))],
    plan: Plan(
        slo: [Expect(metric: "latency_ms.p99", at_most: 100.0)],
        servers: "web",
        min: 2,
        max: 4,
        schedulers: [rr],
        replications: 2,
    ),
)
"#;

#[test]
fn failed_trial_runs_exit_1_and_the_merge_names_each_with_its_error() {
    let d = scratch("failed");
    std::fs::write(d.join("p.ron"), NEEDS_THREE).unwrap();
    // Units 0 and 1 (2 servers, replications 0 and 1) fail; shard 1/2 holds 0, 2/2 holds 1.
    for k in ["1/2", "2/2"] {
        let out = lvsim_in(&d, &["plan", "p.ron", "--shard", k, "--shards-dir", "s", "-j", "1"]);
        assert_eq!(out.status.code(), Some(1), "{}", show(&out));
        assert!(text(&out.stdout).contains("2 run(s) done, 1 failed"), "{}", show(&out));
        let err = text(&out.stderr);
        assert!(
            err.contains("rr, web servers=2, replication") && err.contains("no real server named \"web3\""),
            "{err}"
        );
    }
    // With --json, the shard's line is JSON.
    let out = lvsim_in(&d, &["plan", "p.ron", "--shard", "2/2", "--shards-dir", "s", "-j", "1", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let line: serde_json::Value = serde_json::from_str(&text(&out.stdout)).unwrap();
    let got = (line["shard"].as_str(), line["done"].as_u64(), line["failed"].as_u64());
    assert_eq!(got, (Some("2/2"), Some(2), Some(1)), "{line}");
    let out = lvsim_in(&d, &["merge", "s", "-o", "out"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let err = text(&out.stderr);
    for rep in 0..2 {
        assert!(err.contains(&format!("rr, web servers=2, replication {rep}")), "{err}");
    }
    assert!(err.contains("no real server named \"web3\""), "{err}");
    assert!(!d.join("out").exists());
}

#[test]
fn a_grid_too_large_to_split_is_refused_before_running() {
    let d = scratch("too-large");
    // 5000 sizes x 3 schedulers x 100 runs: more runs than a split plan may have.
    for how in [&["--shard", "1/4"][..], &["--slurm"][..]] {
        let out = lvsim_in(
            &d,
            &args(
                &["plan", "capacity-planning", "--min", "1", "--max", "5000", "--replications", "100"],
                how,
            ),
        );
        assert_eq!(out.status.code(), Some(2), "{}", show(&out));
        let err = text(&out.stderr);
        assert!(err.contains("1500000 runs") && err.contains("--min/--max"), "{err}");
    }
    // Within that count but over the event budget: the budget's refusal, and the same hint.
    let out = lvsim_in(
        &d,
        &[
            "plan",
            "capacity-planning",
            "--min",
            "1",
            "--max",
            "500",
            "--replications",
            "20",
            "--shard",
            "1/4",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let err = text(&out.stderr);
    assert!(err.contains("events") && err.contains("--max-events") && err.contains("--min/--max"), "{err}");
    assert!(std::fs::read_dir(&d).unwrap().next().is_none(), "nothing written");
}
