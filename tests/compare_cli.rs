//! `lvsim compare`, `lvsim show` and report directories, through the binary, each test in
//! a fresh directory as the working directory (default report directories land there).
//!
//! - A clearly different pair of replicated runs is "significant"; the same scenario with
//!   other seeds is not (on its mean response time; at most one metric of five by chance).
//! - `show` prints byte for byte what `run`, `sweep` and `compare` printed.
//! - A `--set` run gets its own directory; rerunning says what it replaced and removes the
//!   earlier report's files; a non-empty directory that is not a report is refused.
//! - Hostile report files (garbage, huge, a link to outside) are refused with exit 2,
//!   naming the file, without reading past the bound.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::cli::text;
use serde_json::Value;

/// The quickstart cluster, shortened: two servers, a drain half-way, a check.
const SMALL: &str = r#"// quickstart, 20 s.
Scenario(
    description: "NAT tutorial cluster, 20 s; rs2 drained for 5 s",
    seed: 1,
    duration_s: 20.0,
    warmup_s: 2.0,
    topology: "tutorial-nat",
    clients: [
        Clients(
            name: "web",
            arrival: Poisson(rate: 120.0),
            demand_ms: Exponential(mean: 7.0),
        ),
    ],
    events: [
        Event(at_s: 10.0, server: "rs2", change: Weight(0)),
        Event(at_s: 15.0, server: "rs2", change: Weight(1)),
    ],
    expect: [Expect(metric: "connections.refused", at_most: 0.0)],
)
"#;

/// A fresh working directory with `small.ron` in it.
fn scratch(name: &str) -> PathBuf {
    let d = common::cli::scratch(&format!("compare-{name}"));
    std::fs::write(d.join("small.ron"), SMALL).unwrap();
    d
}

/// `lvsim ARGS...` with `cwd` as the working directory.
fn lvsim(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lvsim")).args(args).current_dir(cwd).output().expect("spawning lvsim")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Asserts exit 2 and that stderr says each of `words`; returns stderr.
fn refused(out: &Output, words: &[&str]) -> String {
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stdout:\n{}\nstderr:\n{err}", text(&out.stdout));
    for w in words {
        assert!(err.contains(w), "{w:?} not in {err}");
    }
    err
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The row of `metric` in compare.json.
fn row<'a>(c: &'a Value, metric: &str) -> &'a Value {
    c["rows"].as_array().unwrap().iter().find(|r| r["metric"] == metric).unwrap()
}

#[test]
fn a_clear_difference_is_significant_and_other_seeds_are_not() {
    let d = scratch("verdicts");
    let a = ok(&lvsim(&d, &["run", "small.ron", "--replications", "5"]));
    // B: each request needs 57% more CPU: the servers run at about 66% instead of 42%,
    // and rs1 alone (rs2 drained) gets more work than it can do.
    let set = "clients[0].demand_ms=Exponential(mean: 11.0)";
    ok(&lvsim(&d, &["run", "small.ron", "--replications", "5", "--set", set]));
    let (dir_a, dir_b) = ("lvsim-out/small", "lvsim-out/small@demand_ms=Exponential_mean_11.0");
    assert!(d.join(dir_b).join("summary.json").is_file(), "the --set run has its own directory");
    assert_eq!(std::fs::read_to_string(d.join(dir_a).join("summary.txt")).unwrap(), a, "A is untouched");
    assert_eq!(json(&d.join(dir_b).join("summary.json"))["overrides"][0], set);

    let out = ok(&lvsim(&d, &["compare", dir_a, dir_b]));
    let cdir = d.join("lvsim-out/compare-small-vs-small@demand_ms=Exponential_mean_11.0");
    let c = json(&cdir.join("compare.json"));
    assert_eq!(c["kind"], "run");
    assert_eq!(c["a"]["seeds"], serde_json::json!([1, 2, 3, 4, 5]));
    for m in ["latency_ms.mean", "latency_ms.p99"] {
        assert_eq!(row(&c, m)["verdict"], "significant", "{m}: {out}");
        assert!(row(&c, m)["difference"]["diff"].as_f64().unwrap() > 0.0);
    }
    let line = out.lines().find(|l| l.starts_with("latency_ms.mean [ms]")).expect("a row per metric");
    assert!(line.ends_with("significant") && line.contains('['), "{line}");
    assert_eq!(std::fs::read_to_string(cdir.join("summary.txt")).unwrap(), out);
    let csv = std::fs::read_to_string(cdir.join("compare.csv")).unwrap();
    assert!(csv.starts_with("metric,unit,a_mean,a_ci95,a_n,b_mean,"), "{csv}");
    assert!(
        csv.lines()
            .any(|l| l.starts_with("latency_ms.mean,ms,")
                && l.ends_with(",true,true,replications,significant"))
    );
    let page = std::fs::read_to_string(cdir.join("report.html")).unwrap();
    assert!(!page.contains("<script") && !page.contains("src=\"http"), "self-contained");
    assert!(page.matches("<svg").count() >= 5, "a dot plot per metric");
    // show prints the comparison again, byte for byte.
    assert_eq!(ok(&lvsim(&d, &["show", cdir.to_str().unwrap()])), out);

    // The same scenario with seeds 101..=105: noise, not a difference.
    ok(&lvsim(&d, &["run", "small.ron", "--replications", "5", "--seed", "101", "-o", "other-seeds"]));
    let out = ok(&lvsim(&d, &["compare", dir_a, "other-seeds", "-o", "same", "--json"]));
    let c: Value = serde_json::from_str(&out).expect("--json prints compare.json");
    assert_eq!(c, json(&d.join("same/compare.json")));
    assert_eq!(row(&c, "latency_ms.mean")["verdict"], "not significant", "{out}");
    let significant = c["rows"].as_array().unwrap().iter().filter(|r| r["verdict"] == "significant").count();
    assert!(significant <= 1, "{significant} of 5 metrics differ between seeds: {out}");
}

#[test]
fn one_run_each_uses_batch_means_for_the_mean_and_cannot_tell_the_rest() {
    let d = scratch("single");
    ok(&lvsim(&d, &["run", "small.ron", "-o", "a"]));
    ok(&lvsim(&d, &["run", "small.ron", "-o", "b", "--set", "clients[0].demand_ms=Exponential(mean: 11.0)"]));
    let out = ok(&lvsim(&d, &["compare", "a", "b", "-q"]));
    assert!(out.is_empty(), "-q prints nothing: {out}");
    let c = json(&d.join("lvsim-out/compare-a-vs-b/compare.json"));
    let mean = row(&c, "latency_ms.mean");
    assert_eq!(
        (mean["basis"].as_str(), mean["verdict"].as_str()),
        (Some("batch means"), Some("significant"))
    );
    assert_eq!(row(&c, "latency_ms.p99")["verdict"], "cannot tell (one run each: use --replications)");
}

#[test]
fn show_prints_what_run_and_sweep_printed() {
    let d = scratch("show");
    let printed = ok(&lvsim(&d, &["run", "small.ron", "-o", "r"]));
    assert!(printed.contains("report: r/report.html"), "{printed}");
    assert_eq!(ok(&lvsim(&d, &["show", "r"])), printed);
    let summary = std::fs::read_to_string(d.join("r/summary.json")).unwrap();
    assert_eq!(ok(&lvsim(&d, &["show", "r", "--json"])), summary);
    // --json runs still keep the text for show.
    let j = ok(&lvsim(&d, &["run", "small.ron", "-o", "j", "--json"]));
    assert!(j.starts_with('{'));
    assert!(ok(&lvsim(&d, &["show", "j"])).contains("report: j/report.html"));

    // Sweeps: two sweeps over the rate, overlapping at 100.
    let sweep = |rates: &str, out: &str| {
        let set = format!("sweep=[Axis(field: \"clients[0].arrival.rate\", values: [{rates}])]");
        ok(&lvsim(&d, &["sweep", "small.ron", "--set", &set, "--set", "duration_s=8.0", "-o", out]))
    };
    let s1 = sweep("100.0, 150.0", "s1");
    sweep("100, 200.0", "s2");
    assert_eq!(ok(&lvsim(&d, &["show", "s1"])), s1);
    let out = ok(&lvsim(&d, &["compare", "s1", "s2", "-o", "cs"]));
    let c = json(&d.join("cs/compare.json"));
    assert_eq!(c["kind"], "sweep");
    let points: Vec<&Value> = c["rows"].as_array().unwrap().iter().map(|r| &r["point"]).collect();
    assert!(points.iter().all(|p| *p == &serde_json::json!(["100.0"])), "100.0 matches 100: {points:?}");
    assert_eq!(c["only_in_a"], serde_json::json!([["150.0"]]));
    assert_eq!(c["only_in_b"], serde_json::json!([["200.0"]]));
    assert!(out.contains("points only in A:\n  clients[0].arrival.rate=150.0"), "{out}");
}

#[test]
fn rerunning_says_what_it_replaced_and_foreign_directories_are_refused() {
    let d = scratch("rerun");
    let first = lvsim(&d, &["run", "small.ron", "--replications", "2"]);
    ok(&first);
    assert!(!text(&first.stderr).contains("replacing"));
    assert!(d.join("lvsim-out/small/replications.json").is_file());
    let second = lvsim(&d, &["run", "small.ron", "--seed", "9"]);
    ok(&second);
    let err = text(&second.stderr);
    assert!(
        err.contains("replacing the report in lvsim-out/small (it held a run of small, seed 1, overrides replications=2)"),
        "{err}"
    );
    // The earlier report's files are gone: no stale replications for compare to read.
    assert!(!d.join("lvsim-out/small/replications.json").exists());
    assert_eq!(json(&d.join("lvsim-out/small/summary.json"))["seed"], 9);

    // A directory with someone's files is not mixed with a report.
    let mine = d.join("mine");
    std::fs::create_dir(&mine).unwrap();
    std::fs::write(mine.join("notes.txt"), "keep me").unwrap();
    for cmd in [
        &["run", "small.ron", "-o", "mine"][..],
        &["compare", "lvsim-out/small", "lvsim-out/small", "-o", "mine"],
    ] {
        refused(&lvsim(&d, cmd), &["mine: not empty and not an lvsim report"]);
    }
    assert_eq!(std::fs::read_to_string(mine.join("notes.txt")).unwrap(), "keep me");
    assert!(!mine.join("summary.json").exists());
    // A file where the directory should be, and comparing into a compared directory.
    std::fs::write(d.join("afile"), "x").unwrap();
    refused(&lvsim(&d, &["run", "small.ron", "-o", "afile"]), &["afile: exists and is not a directory"]);
    refused(
        &lvsim(&d, &["compare", "lvsim-out/small", "lvsim-out/small", "-o", "lvsim-out/small"]),
        &["a report being compared"],
    );
}

#[test]
fn hostile_or_wrong_report_directories_are_refused() {
    let d = scratch("hostile");
    ok(&lvsim(&d, &["run", "small.ron", "-o", "good"]));
    let bad = d.join("bad");
    std::fs::create_dir(&bad).unwrap();
    let compare_bad = || lvsim(&d, &["compare", "good", "bad"]);

    // Garbage: the file, line and column.
    std::fs::write(bad.join("summary.json"), "{\"scenario\": \"x\", \"seed\": [}").unwrap();
    refused(&compare_bad(), &["bad/summary.json:1:", "not a run's summary.json"]);
    std::fs::write(bad.join("summary.json"), [0xff, 0xfe, 0x00]).unwrap();
    refused(&compare_bad(), &["bad/summary.json: not UTF-8"]);
    // Huge (sparse: nothing is written to disk, and nothing is read).
    let f = std::fs::File::create(bad.join("summary.json")).unwrap();
    f.set_len(4 << 30).unwrap();
    refused(&compare_bad(), &["bad/summary.json: 4294967296 bytes, more than the"]);
    refused(&lvsim(&d, &["show", "bad", "--json"]), &["bad/summary.json: 4294967296 bytes"]);
    // A link to a file outside: not followed (and not a report).
    std::fs::remove_file(bad.join("summary.json")).unwrap();
    std::fs::write(d.join("outside.json"), std::fs::read(d.join("good/summary.json")).unwrap()).unwrap();
    std::os::unix::fs::symlink(d.join("outside.json"), bad.join("summary.json")).unwrap();
    refused(&compare_bad(), &["bad: not an lvsim report directory: it has none of summary.json"]);
    // A link as replications.json beside a real summary.json is refused, by name.
    std::fs::remove_file(bad.join("summary.json")).unwrap();
    std::fs::copy(d.join("good/summary.json"), bad.join("summary.json")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", bad.join("replications.json")).unwrap();
    refused(&compare_bad(), &["bad/replications.json: a symbolic link; refusing to follow it"]);

    // Not a report at all, not a directory, and a run against a sweep.
    let empty = d.join("empty");
    std::fs::create_dir(&empty).unwrap();
    refused(&lvsim(&d, &["compare", "good", "empty"]), &["empty: not an lvsim report directory"]);
    refused(&lvsim(&d, &["compare", "nowhere", "good"]), &["nowhere: not a directory"]);
    refused(&lvsim(&d, &["show", "empty"]), &["empty: not an lvsim report directory"]);
    let sweep = d.join("sw");
    std::fs::create_dir(&sweep).unwrap();
    std::fs::write(sweep.join("sweep.json"), "{\"scenario\": \"s\", \"axes\": [], \"points\": []}").unwrap();
    refused(&lvsim(&d, &["compare", "good", "sw"]), &["good is a run report and sw a sweep report"]);
    // A sweep point with fewer values than axes.
    let sw2 = d.join("sw2");
    std::fs::create_dir(&sw2).unwrap();
    let lopsided = r#"{"scenario": "s", "axes": ["a", "b"], "points": [{"values": ["1"], "result": {"runs": [],
        "latency_mean_ms": {"mean": 1, "ci95": 0, "n": 1}, "latency_p99_ms": {"mean": 1, "ci95": 0, "n": 1},
        "throughput_cps": {"mean": 1, "ci95": 0, "n": 1}, "loss_fraction": {"mean": 0, "ci95": 0, "n": 1}}}]}"#;
    std::fs::write(sw2.join("sweep.json"), lopsided).unwrap();
    refused(&lvsim(&d, &["compare", "sw", "sw2"]), &["sw2/sweep.json: points[0] has 1 values for 2 axes"]);
    // Absurd values in a well-formed file: compared, in cells of bounded width.
    let huge = d.join("huge");
    std::fs::create_dir(&huge).unwrap();
    let mut s = json(&d.join("good/summary.json"));
    s["latency_ms"]["mean"] = serde_json::json!(1e308);
    std::fs::write(huge.join("summary.json"), s.to_string()).unwrap();
    let out = ok(&lvsim(&d, &["compare", "good", "huge", "-o", "hc"]));
    assert!(out.lines().all(|l| l.chars().count() < 250), "{out}");
    assert!(out.contains("1.000e308"), "{out}");
    // show reads summary.txt as compare reads the JSON: a link is not followed.
    std::os::unix::fs::symlink("/etc/passwd", huge.join("summary.txt")).unwrap();
    refused(&lvsim(&d, &["show", "huge"]), &["huge/summary.txt: a symbolic link; refusing to follow it"]);
    // A report without summary.txt: show says what it expected.
    refused(&lvsim(&d, &["show", "sw"]), &["sw/summary.txt: missing"]);
    assert_eq!(
        ok(&lvsim(&d, &["show", "sw", "--json"])),
        std::fs::read_to_string(sweep.join("sweep.json")).unwrap()
    );
}

#[test]
fn help_documents_compare_show_and_report_directories() {
    let d = scratch("help");
    let compare = ok(&lvsim(&d, &["compare", "--help"]));
    for w in ["significant", "cannot tell (one run each: use --replications)", "compare.json", "Exit 2"] {
        assert!(compare.contains(w), "{w:?} not in compare --help");
    }
    assert!(ok(&lvsim(&d, &["show", "--help"])).contains("summary.txt"));
    assert!(ok(&lvsim(&d, &["run", "--help"])).contains("quickstart@scheduler=wlc"));
}
