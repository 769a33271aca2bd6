//! `lvsim sweep` and `lvsim run --replications` in parallel: what they write does not
//! depend on `--jobs`, and a sweep's memory is bounded by the runs at once, not by its
//! number of points.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::reports::masked;

use common::cli::{scratch, text};

/// `lvsim ARGS...` with `dir` as its working directory.
fn lvsim_in(dir: &Path, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_lvsim"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("spawning lvsim");
    assert!(
        out.status.success(),
        "lvsim {args:?}: exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    );
    out
}

/// Points of unequal cost (rates 400, 20 and 150 conn/s) and unequal replications (an
/// axis sets them): with more than one thread they finish out of order.
const UNEVEN: &str = r#"Scenario(
    duration_s: 4.0,
    warmup_s: 0.5,
    topology: "tutorial-nat",
    replications: 2,
    clients: [Clients(arrival: Poisson(rate: 100.0), demand_ms: Exponential(mean: 5.0))],
    sweep: [
        Axis(field: "clients[0].arrival.rate", values: [400.0, 20.0, 150.0]),
        Axis(field: "replications", values: [1, 3, 2]),
    ],
)
"#;

/// The files a command wrote into `dir/out` (wall times masked), then the directory
/// removed so that the next run writes the same path.
fn outputs(dir: &Path, names: &[&str]) -> Vec<(String, String)> {
    let out = dir.join("out");
    let files = names
        .iter()
        .map(|n| {
            let t = std::fs::read_to_string(out.join(n)).unwrap_or_else(|e| panic!("{n}: {e}"));
            (n.to_string(), masked(&t))
        })
        .collect();
    std::fs::remove_dir_all(&out).unwrap();
    files
}

#[test]
fn a_sweeps_files_do_not_depend_on_jobs() {
    let d = scratch("sweep-jobs");
    std::fs::write(d.join("uneven.ron"), UNEVEN).unwrap();
    let names = ["sweep.json", "sweep.csv", "report.html", "summary.txt"];
    let mut first: Option<Vec<(String, String)>> = None;
    for jobs in ["1", "2", "3", "7"] {
        let out = lvsim_in(&d, &["sweep", "uneven.ron", "--out", "out", "--json", "-j", jobs]);
        let printed = masked(&text(&out.stdout));
        let files = outputs(&d, &names);
        // --json prints sweep.json as written.
        assert_eq!(printed, files[0].1, "--json output with -j {jobs}");
        let json: serde_json::Value = serde_json::from_str(&text(&out.stdout)).unwrap();
        let points = json["points"].as_array().unwrap();
        assert_eq!(points.len(), 9);
        for p in points {
            let runs = p["result"]["runs"].as_array().unwrap();
            let reps: usize = p["values"][1].as_str().unwrap().parse().unwrap();
            assert_eq!(runs.len(), reps, "{p}");
            // sweep.json keeps every run's whole summary, per-server parts included.
            assert_eq!(runs[0]["real_servers"].as_array().unwrap().len(), 2, "{p}");
        }
        match &first {
            None => first = Some(files),
            Some(f) => {
                for ((name, a), (_, b)) in f.iter().zip(&files) {
                    assert!(a == b, "{name} differs between -j 1 and -j {jobs}");
                }
            }
        }
    }
}

#[test]
fn a_runs_replications_do_not_depend_on_jobs() {
    let d = scratch("sweep-run-jobs");
    std::fs::write(d.join("uneven.ron"), UNEVEN.replace("replications: 2", "replications: 5")).unwrap();
    let names = ["summary.json", "replications.json", "replications.csv", "servers.csv"];
    let first = {
        lvsim_in(&d, &["run", "uneven.ron", "--out", "out", "-j", "1"]);
        outputs(&d, &names)
    };
    for jobs in ["2", "4"] {
        lvsim_in(&d, &["run", "uneven.ron", "--out", "out", "-j", jobs]);
        for ((name, a), (_, b)) in first.iter().zip(&outputs(&d, &names)) {
            assert!(a == b, "{name} differs between -j 1 and -j {jobs}");
        }
    }
}

/// A farm of 1500 real servers swept over `points` seeds, each point a short run.
fn farm(points: usize) -> String {
    let seeds: Vec<String> = (1..=points).map(|s| s.to_string()).collect();
    format!(
        r#"Scenario(
    duration_s: 0.5,
    directors: [Director(name: "lb", address: "10.0.0.1", services: [
        Service(vip: "10.0.0.1", port: 80, scheduler: wrr,
            real_servers: [RealServer(server: "rs", forwarding: DR)]),
    ])],
    servers: [Server(name: "rs", count: 1500, address: "10.1.0.1", cpu: Cpu(speed: 1.0))],
    clients: [Clients(arrival: Poisson(rate: 100.0), demand_ms: Exponential(mean: 7.0))],
    sweep: [Axis(field: "seed", values: [{}])],
)
"#,
        seeds.join(", ")
    )
}

/// 64 points of a large farm peak at about the memory of 4: a sweep holds the runs at
/// once (2 here), not every point's scenario and every run's whole summary (which grew the
/// peak by about 1.5x at 32 points and 2.5x at 128 before points were built lazily and
/// written as they finished). The peak is this process's children's (`RUSAGE_CHILDREN`,
/// the largest finished child): the few-point sweep runs first, so the second reading is
/// the larger of the two. The other tests' children (tiny scenarios) are far smaller.
#[test]
fn a_sweeps_memory_is_bounded_by_the_runs_at_once() {
    use nix::sys::resource::{UsageWho, getrusage};
    let d = scratch("sweep-memory");
    let mut peaks = Vec::new();
    for points in [4, 64] {
        let file = format!("farm-{points}.ron");
        std::fs::write(d.join(&file), farm(points)).unwrap();
        let out = format!("out-{points}");
        lvsim_in(&d, &["sweep", &file, "--out", &out, "--quiet", "-j", "2"]);
        let sweep: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(d.join(&out).join("sweep.json")).unwrap()).unwrap();
        assert_eq!(sweep["points"].as_array().unwrap().len(), points);
        peaks.push(getrusage(UsageWho::RUSAGE_CHILDREN).unwrap().max_rss());
    }
    let (few, many) = (peaks[0] as f64, peaks[1] as f64);
    assert!(
        many <= 1.15 * few,
        "64 points peaked at {many} KiB, 4 points at {few} KiB: the sweep holds more than its runs at once"
    );
}

/// The budget counts what a sweep holds now: the runs at once, up to 4 whole summaries a
/// run at once waiting, and a small summary per run done. 200 points of a 1500-server
/// farm fit in that plus 32 MiB; counting every run's whole summary kept (512 bytes a
/// server: another 150 MiB) or every point's scenario held at once (440 MiB), as before,
/// refused it. Without room for what waits and is kept it is still refused, naming the point. (The runs at
/// once are the machine's cores, at most 200: `validate` has no `--jobs`.)
#[test]
fn a_sweeps_budget_counts_what_it_holds() {
    let d = scratch("sweep-budget");
    std::fs::write(d.join("farm.ron"), farm(200)).unwrap();
    let out = lvsim_in(&d, &["validate", "--json", "farm.ron"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let run = v[0]["estimate"]["memory_bytes"].as_f64().unwrap();
    let at_once = std::thread::available_parallelism().map_or(1, std::num::NonZero::get).min(200) as f64;
    let (waiting, kept) = (4.0 * at_once * 1500.0 * 512.0, 200.0 * 4096.0);
    let enough = at_once * run + waiting + kept + 32.0 * 1024.0 * 1024.0;
    assert!(enough < at_once * run + 200.0 * 1500.0 * 512.0, "the test no longer tells the two apart");
    let out = lvsim_in(&d, &["validate", "farm.ron", "--max-memory", &format!("{enough:.0}")]);
    assert!(text(&out.stdout).contains("sweep of 200 points"), "{}", text(&out.stdout));
    // Room for the runs at once (so a run alone passes), not for what waits and is kept.
    let short = format!("{:.0}", at_once * run + (waiting + kept) / 2.0);
    let out = Command::new(env!("CARGO_BIN_EXE_lvsim"))
        .args(["validate", "farm.ron", "--max-memory", &short])
        .current_dir(&d)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("the sweep (at point 1)") && err.contains("run(s) at once"), "{err}");
}

/// Of several invalid points, the first in the sweep's order is the one reported, whatever
/// `--jobs` (the points are checked in parallel), and nothing is written.
#[test]
fn the_first_invalid_point_is_reported_whatever_jobs() {
    let d = scratch("sweep-invalid");
    let text_of = UNEVEN.replace(
        "values: [1, 3, 2]",
        "values: [1, 3, 2]),\n        Axis(field: \"directors[0].services[0].scheduler\", values: [rr, wlcx, sh, shx]",
    );
    std::fs::write(d.join("bad.ron"), text_of).unwrap();
    let mut seen = Vec::new();
    for jobs in ["1", "2", "5"] {
        let out = Command::new(env!("CARGO_BIN_EXE_lvsim"))
            .args(["sweep", "bad.ron", "--out", "out", "-j", jobs])
            .current_dir(&d)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "-j {jobs}: {}", text(&out.stderr));
        let err = text(&out.stderr);
        assert!(err.contains("sweep point") && err.contains("wlcx") && !err.contains("shx"), "{err}");
        assert!(!d.join("out").exists(), "-j {jobs}: a refused sweep wrote its directory");
        seen.push(err);
    }
    assert!(seen.windows(2).all(|w| w[0] == w[1]), "{seen:?}");
}
