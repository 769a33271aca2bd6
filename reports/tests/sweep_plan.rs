//! Replications, sweeps and capacity plans written from real (small) runs.

mod common;

use std::path::PathBuf;

use lvs_sched::SchedulerKind;

fn out_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("reports-sweep-plan").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The file is `value` as pretty JSON with a final newline, and parses back.
fn assert_json<T: serde::Serialize + serde::de::DeserializeOwned>(path: &std::path::Path, value: &T) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(
        text == serde_json::to_string_pretty(value).unwrap() + "\n",
        "{} is not the value's JSON",
        path.display()
    );
    let _: T =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} does not parse: {e}", path.display()));
}

fn names(w: &reports::Written) -> Vec<String> {
    w.files.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect()
}

#[test]
fn replications_of_real_runs_have_t_intervals_and_files() {
    let runs: Vec<_> =
        [5, 3, 4].map(|seed| common::summary_with(seed, SchedulerKind::Wlc, 3, 300.0)).to_vec();
    let means: Vec<f64> = {
        let mut r = runs.clone();
        r.sort_by_key(|s| s.seed);
        r.iter().map(|s| s.latency_ms.mean).collect()
    };
    let reps = reports::replications(runs);
    assert_eq!(reps.runs.iter().map(|s| s.seed).collect::<Vec<_>>(), [3, 4, 5]);
    let mean = means.iter().sum::<f64>() / 3.0;
    let sd = (means.iter().map(|m| (m - mean).powi(2)).sum::<f64>() / 2.0).sqrt();
    assert!((reps.latency_mean_ms.mean - mean).abs() < 1e-9);
    assert!((reps.latency_mean_ms.ci95 - 4.302_652_730 * sd / 3f64.sqrt()).abs() < 1e-9);
    assert_eq!(reps.latency_mean_ms.n, 3);
    let dir = out_dir("replications");
    let w = reports::write_replications(&dir, &reps).expect("writes");
    assert_eq!(names(&w), ["replications.json", "replications.csv"]);
    assert_json(&dir.join("replications.json"), &reps);
    let csv = std::fs::read_to_string(dir.join("replications.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 3 + 2);
    assert!(csv.lines().nth(1).unwrap().starts_with("3,"));
}

#[test]
fn a_sweep_writes_json_csv_and_a_page_with_five_charts() {
    let sweep = common::sweep();
    let dir = out_dir("sweep");
    let w = reports::write_sweep(&dir, &sweep).expect("writes");
    assert_eq!(names(&w), ["sweep.json", "sweep.csv", "report.html"]);
    assert_json(&dir.join("sweep.json"), &sweep);
    let csv = std::fs::read_to_string(dir.join("sweep.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 1 + 6);
    assert!(lines[0].starts_with("services[0].scheduler,workload.rate,n,latency_mean_ms,"), "{}", lines[0]);
    assert!(lines[1].starts_with("\"\"\"rr\"\"\",200.0,2,"), "{}", lines[1]);
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    // p99, mean, throughput, loss, utilisation spread (no feedback: no feedback charts).
    assert_eq!(html.matches("<svg").count(), 5);
    assert!(html.contains("lvsim sweep: sweep &lt;&amp;&gt;"));
    assert!(
        html.contains(">scheduler=wlc<"),
        "legend names the other axes' values (by their fields after the last index)"
    );
    assert!(html.contains("99th percentile response time against workload.rate"));
    assert!(!html.contains("<script") && !html.contains("src="));
    // Same input, same bytes.
    let again = out_dir("sweep-again");
    reports::write_sweep(&again, &sweep).expect("writes");
    for f in ["sweep.json", "sweep.csv", "report.html"] {
        assert_eq!(std::fs::read(dir.join(f)).unwrap(), std::fs::read(again.join(f)).unwrap(), "{f}");
    }
}

#[test]
fn a_plan_puts_the_answer_first_then_the_chart_and_trials() {
    let plan = common::plan(55.0);
    let answer = plan.answer.clone().expect("some trial meets p99 <= 55 ms");
    let dir = out_dir("plan");
    let w = reports::write_plan(&dir, &plan).expect("writes");
    assert_eq!(names(&w), ["plan.json", "plan.csv", "report.html"]);
    assert_json(&dir.join("plan.json"), &plan);
    let csv = std::fs::read_to_string(dir.join("plan.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 8);
    assert!(
        csv.starts_with("scheduler,real_servers,cost,meets,latency_ms.p99,latency_ms.p99_ci95,"),
        "{csv}"
    );
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    let headline = format!("Use {} real servers with the {} scheduler", answer.sizes[0], answer.scheduler);
    let (at_answer, at_chart, at_trials) = (
        html.find(&headline).expect("the answer"),
        html.find("<svg").expect("a chart"),
        html.find("id=\"trials\"").unwrap(),
    );
    assert!(at_answer < at_chart && at_chart < at_trials, "answer, then evidence, then trials");
    assert!(html.contains("SLO &lt;= 55"), "the threshold line's legend");
    assert!(html.contains("&lt;b&gt;wins&lt;/b&gt;") && !html.contains("<b>wins"), "why is escaped");
    assert!(html.contains("meets (chosen)"));
}

#[test]
fn a_plan_without_an_answer_says_so() {
    let plan = common::plan(1.0);
    assert!(plan.answer.is_none());
    let dir = out_dir("plan-none");
    reports::write_plan(&dir, &plan).expect("writes");
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains("No configuration met the SLO within the ranges searched."));
    assert!(!html.contains("meets (chosen)"));
    assert_eq!(html.matches("<svg").count(), 1, "the evidence is still shown");
}

#[test]
fn empty_sweeps_and_plans_still_write_pages() {
    let dir = out_dir("empty");
    let sweep = reports::SweepReport { scenario: "none".into(), ..Default::default() };
    reports::write_sweep(&dir.join("sweep"), &sweep).expect("writes");
    let html = std::fs::read_to_string(dir.join("sweep/report.html")).unwrap();
    assert!(html.contains("no points to chart"));
    let plan = reports::PlanReport {
        scenario: "none".into(),
        slo: "latency_ms.p99 <= 5".into(),
        ..Default::default()
    };
    reports::write_plan(&dir.join("plan"), &plan).expect("writes");
    let html = std::fs::read_to_string(dir.join("plan/report.html")).unwrap();
    assert!(html.contains("No configuration met the SLO") && html.contains("no trial ran"));
}
