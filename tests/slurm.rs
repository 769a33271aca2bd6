//! `--slurm` against a real Slurm (the single-node cluster of `tests/slurm/lvsim-slurm
//! start`): a library sweep submitted as a job array and merged by a dependent job equals
//! the local sweep; a task that fails is reported with its point by the merge job and by
//! `lvsim merge`; a second `--submit` runs only the shards not done.
//!
//! These tests FAIL (they do not skip) when Slurm's client tools are missing or the
//! cluster does not answer: CI installs slurm-wlm and munge and starts the cluster.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::cli::lvsim_in;

use common::reports::{SMALL_PLAN, assert_same_report};

/// How long a test waits for its jobs (a bound, not an expectation).
const JOBS_TIMEOUT: Duration = Duration::from_secs(600);

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Fails, naming what to do, unless sbatch and squeue run and the node is up.
fn require_slurm() {
    let how = "start the test cluster with `tests/slurm/lvsim-slurm start` (Debian packages slurm-wlm and munge; see tests/slurm/README.md)";
    for tool in ["sbatch", "squeue", "sinfo", "scancel"] {
        let o = Command::new(tool).arg("--version").output();
        assert!(o.is_ok_and(|o| o.status.success()), "{tool} does not run: {how}");
    }
    let o = Command::new("sinfo").args(["-h", "-o", "%T"]).output().expect("sinfo runs");
    let states = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        o.status.success() && states.lines().any(|s| ["idle", "mixed", "allocated"].contains(&s.trim())),
        "the Slurm cluster does not answer or has no node up (sinfo: {states:?} {}): {how}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A fresh temporary directory whose name holds a space, quotes and a `$`.
fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lvsim slurm-{tag} it's \"q\" $HOME-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn jobs(shards: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(shards.join("slurm/jobs.json")).expect("jobs.json written");
    serde_json::from_str(&text).unwrap()
}

/// The job ids still in Slurm's queue.
fn queued() -> Vec<u64> {
    let o = Command::new("squeue").args(["-h", "-o", "%F"]).output().expect("squeue runs");
    assert!(o.status.success(), "squeue: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).lines().filter_map(|l| l.trim().parse().ok()).collect()
}

/// Waits (bounded, polling) until none of `ids` is queued or running; cancels them and
/// fails after [`JOBS_TIMEOUT`].
fn wait_for(ids: &[u64], logs: &Path) {
    let t0 = Instant::now();
    while queued().iter().any(|id| ids.contains(id)) {
        if t0.elapsed() > JOBS_TIMEOUT {
            for id in ids {
                let _ = Command::new("scancel").arg(id.to_string()).status();
            }
            panic!("jobs {ids:?} still queued after {JOBS_TIMEOUT:?}; logs: {}", all_logs(logs));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn all_logs(dir: &Path) -> String {
    let mut s = String::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        s += &format!(
            "\n== {}\n{}",
            e.path().display(),
            std::fs::read_to_string(e.path()).unwrap_or_default()
        );
    }
    s
}

/// The last submission's `(array job, merge job, tasks)`.
fn last_submission(shards: &Path) -> (u64, u64, Vec<u64>) {
    let j = jobs(shards);
    let s = j["submissions"].as_array().unwrap().last().unwrap().clone();
    let tasks = s["tasks"].as_array().unwrap().iter().map(|t| t.as_u64().unwrap()).collect();
    (s["array_job"].as_u64().unwrap(), s["merge_job"].as_u64().unwrap(), tasks)
}

/// Runs `args` locally, as typed in `dir` with `--out report` as the Slurm command was
/// (summary.txt names the report directory as typed), and moves that report to
/// `dir/local-report`.
fn local_report(dir: &Path, report: &str, args: &[&str]) -> PathBuf {
    let (merged, aside, local) = (dir.join(report), dir.join("aside"), dir.join(format!("local-{report}")));
    std::fs::rename(&merged, &aside).unwrap();
    let mut all = args.to_vec();
    all.extend(["--out", report, "-j", "2", "-q"]);
    // A failed `expect` check (exit 3) is the local command's verdict, not an error here.
    let o = lvsim_in(dir, &all);
    assert!(matches!(o.status.code(), Some(0 | 3)), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::rename(&merged, &local).unwrap();
    std::fs::rename(&aside, &merged).unwrap();
    local
}

#[test]
fn a_library_sweep_through_slurm_equals_the_local_sweep() {
    require_slurm();
    let dir = temp_dir("library");
    let shards = dir.join("the shards");
    let shards_arg = shards.to_str().unwrap();
    let out = ok(&lvsim_in(
        &dir,
        &["sweep", "nat-vs-dr", "--out", "merged", "--slurm", "--submit", "--shards-dir", shards_arg],
    ));
    assert!(out.contains("submitted array job") && out.contains("lvsim status"), "{out}");
    let (array, merge, tasks) = last_submission(&shards);
    // One shard per run: nat-vs-dr has 2 x 5 points of one replication.
    assert_eq!(tasks, (1..=10).collect::<Vec<_>>());
    let script = std::fs::read_to_string(shards.join("slurm/array.sh")).unwrap();
    assert!(script.contains("\n#SBATCH --array=1-10\n"), "{script}");
    wait_for(&[array, merge], &shards.join("slurm/logs"));
    let logs = all_logs(&shards.join("slurm/logs"));
    assert!(dir.join("merged/sweep.json").is_file(), "no merged report; logs: {logs}");
    assert_eq!(std::fs::read_dir(shards.join("slurm/logs")).unwrap().count(), 11, "{logs}");

    let local = local_report(&dir, "merged", &["sweep", "nat-vs-dr"]);
    assert_same_report(&local, &dir.join("merged"), "merged report");

    // Everything done: a second --submit runs no array, only a merge job.
    std::fs::remove_dir_all(dir.join("merged")).unwrap();
    let args = ["sweep", "nat-vs-dr", "--out", "merged", "--slurm", "--submit", "--shards-dir", shards_arg];
    let again = ok(&lvsim_in(&dir, &args));
    assert!(again.contains("every shard is done"), "{again}");
    let (array, merge, tasks) = last_submission(&shards);
    assert_eq!((array, tasks.len()), (0, 0));
    wait_for(&[merge], &shards.join("slurm/logs"));
    assert_same_report(&local, &dir.join("merged"), "merged report");

    // The same directory for another split is refused, naming what differs.
    let other = lvsim_in(
        &dir,
        &["sweep", "nat-vs-dr", "--set", "duration_s=20", "--slurm", "--shards-dir", shards_arg],
    );
    let err = String::from_utf8_lossy(&other.stderr);
    assert_eq!(other.status.code(), Some(2), "{err}");
    assert!(err.contains("fingerprint") && err.contains("--shards-dir"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A scenario whose sweep axis names three trace files.
fn trace_sweep(dir: &Path) -> PathBuf {
    for (name, n) in [("a.csv", 200), ("b.csv", 300), ("c.csv", 400)] {
        let times: Vec<String> =
            (0..n).map(|i| format!("{:.4}", f64::from(i) * 5.0 / f64::from(n))).collect();
        std::fs::write(dir.join(name), times.join("\n") + "\n").unwrap();
    }
    let file = dir.join("traces $weep.ron");
    std::fs::write(
        &file,
        r#"Scenario(
    duration_s: 5.0,
    topology: "tutorial-nat",
    clients: [Clients(arrival: Trace(file: "a.csv"), demand_ms: Exponential(mean: 5.0))],
    sweep: [
        Axis(field: "clients[0].arrival", values: [Trace(file: "a.csv"), Trace(file: "b.csv"), Trace(file: "c.csv")]),
    ],
)
"#,
    )
    .unwrap();
    file
}

/// Submits the scripts `--slurm` wrote by hand, as it prints: the array, then the merge
/// after it.
fn submit_by_hand(shards: &Path) -> (u64, u64) {
    let sbatch = |args: &[&str]| {
        let o = Command::new("sbatch").args(args).output().expect("sbatch runs");
        assert!(o.status.success(), "sbatch: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).trim().split(';').next().unwrap().parse::<u64>().unwrap()
    };
    let array = sbatch(&["--parsable", shards.join("slurm/array.sh").to_str().unwrap()]);
    let dep = format!("--dependency=afterany:{array}");
    let merge = sbatch(&["--parsable", &dep, shards.join("slurm/merge.sh").to_str().unwrap()]);
    (array, merge)
}

#[test]
fn a_failed_task_is_reported_and_only_it_runs_again() {
    require_slurm();
    let dir = temp_dir("failed");
    let file = trace_sweep(&dir);
    // Typed relative to `dir`, as a user would: tasks and the merge run from there, so the
    // reports name it as the local run does.
    let file = file.strip_prefix(&dir).unwrap().to_str().unwrap().to_owned();
    let shards = dir.join("shards");
    let args = ["sweep", &file, "--out", "merged", "--slurm", "--shards-dir", shards.to_str().unwrap()];
    let wrote = ok(&lvsim_in(&dir, &args));
    assert!(wrote.contains("sbatch --dependency=afterany:"), "{wrote}");
    assert!(!shards.join("slurm/jobs.json").exists(), "nothing submitted yet");

    // b.csv (point 2, shard 2 of 3) disappears between writing and running.
    let b = std::fs::read(dir.join("b.csv")).unwrap();
    std::fs::remove_file(dir.join("b.csv")).unwrap();
    let (array, merge) = submit_by_hand(&shards);
    wait_for(&[array, merge], &shards.join("slurm/logs"));
    let merge_log = std::fs::read_to_string(shards.join(format!("slurm/logs/merge_{merge}.out")))
        .unwrap_or_else(|e| panic!("merge log: {e}: {}", all_logs(&shards.join("slurm/logs"))));
    assert!(merge_log.contains("b.csv") && merge_log.contains("shard-2-of-3"), "{merge_log}");
    assert!(!dir.join("merged/sweep.json").exists());
    let merged = lvsim_in(&dir, &["merge", shards.to_str().unwrap(), "--out", "merged"]);
    let err = String::from_utf8_lossy(&merged.stderr);
    assert_eq!(merged.status.code(), Some(2), "{err}");
    assert!(err.contains("b.csv") && err.contains("shard-2-of-3"), "{err}");

    // Restored, resubmitted: only shard 2 runs again.
    std::fs::write(dir.join("b.csv"), b).unwrap();
    let mut again = args.to_vec();
    again.push("--submit");
    let out = ok(&lvsim_in(&dir, &again));
    assert!(out.contains("to run again: 2") && out.contains("b.csv"), "{out}");
    let (array, merge, tasks) = last_submission(&shards);
    assert_eq!(tasks, [2]);
    let script = std::fs::read_to_string(shards.join("slurm/array.sh")).unwrap();
    assert!(script.contains("\n#SBATCH --array=2\n"), "{script}");
    wait_for(&[array, merge], &shards.join("slurm/logs"));
    assert!(
        dir.join("merged/sweep.json").is_file(),
        "no merged report: {}",
        all_logs(&shards.join("slurm/logs"))
    );
    let local = local_report(&dir, "merged", &["sweep", &file]);
    assert_same_report(&local, &dir.join("merged"), "merged report");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn without_sbatch_the_error_names_the_package() {
    let dir = temp_dir("no-sbatch");
    let empty = dir.join("empty bin");
    std::fs::create_dir_all(&empty).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_lvsim"))
        .args(["sweep", "nat-vs-dr", "--out", "r", "--slurm", "--submit", "--shards", "2"])
        .current_dir(&dir)
        .env("PATH", &empty)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("sbatch not found") && err.contains("slurm-client"), "{err}");
    // The scripts are written all the same, for another machine to submit.
    let script = std::fs::read_to_string(dir.join("r.shards/slurm/array.sh")).unwrap();
    assert!(
        script.contains("\n#SBATCH --array=1-2\n") && script.contains("--shard \"$SLURM_ARRAY_TASK_ID\"/2"),
        "{script}"
    );
    assert!(!dir.join("r.shards/slurm/jobs.json").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A run's replications, made small (and `SMALL_PLAN`, a plan's grid).
const RUN: &[&str] = &["run", "quickstart", "--replications", "4", "--set", "duration_s=20"];

#[test]
fn a_run_and_a_plan_through_slurm_equal_the_local_ones() {
    require_slurm();
    let dir = temp_dir("run-plan");
    let mut ids = Vec::new();
    for (args, report, n) in [(RUN, "run", "3"), (SMALL_PLAN, "plan", "4")] {
        let shards = dir.join(format!("{report}.shards"));
        let mut all = args.to_vec();
        all.extend(["--out", report, "--slurm", "--submit", "--shards", n]);
        let out = ok(&lvsim_in(&dir, &all));
        assert!(out.contains(&format!("shards 1-{n} of {n}")), "{out}");
        let (array, merge, tasks) = last_submission(&shards);
        assert_eq!(tasks.len().to_string(), n);
        let script = std::fs::read_to_string(shards.join("slurm/array.sh")).unwrap();
        assert!(script.contains(&format!("exec {} {}", env!("CARGO_BIN_EXE_lvsim"), args[0])), "{script}");
        ids.extend([array, merge]);
    }
    wait_for(&ids, &dir);
    for (args, report) in [(RUN, "run"), (SMALL_PLAN, "plan")] {
        let logs = all_logs(&dir.join(format!("{report}.shards/slurm/logs")));
        assert!(dir.join(report).join("summary.txt").is_file(), "no merged {report}: {logs}");
        let local = local_report(&dir, report, args);
        assert_same_report(&local, &dir.join(report), "merged report");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn hostile_resources_are_refused_before_anything_is_written() {
    let dir = temp_dir("hostile");
    let bad: &[&[&str]] = &[
        &["--mem", "4G\n#SBATCH --wrap=id"],
        &["--time", "10; rm -rf /"],
        &["--partition", "lvsim --uid=0"],
        &["--account", "a\nb"],
        &["--sbatch-arg", "--qos=x\necho"],
        &["--sbatch-arg", "qos"],
        &["--cpus-per-task", "0"],
        &["--shards", "0"],
        &["--shards-dir", "back\\slash"],
    ];
    for extra in bad {
        let mut args = vec!["sweep", "nat-vs-dr", "--out", "r", "--slurm"];
        args.extend_from_slice(extra);
        let o = lvsim_in(&dir, &args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {err}");
        let listed: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert!(listed.is_empty(), "{extra:?} wrote {listed:?}");
    }
    // A report directory the merge job would refuse is refused now.
    std::fs::create_dir_all(dir.join("notes")).unwrap();
    std::fs::write(dir.join("notes/mine.txt"), "mine").unwrap();
    let o = lvsim_in(&dir, &["sweep", "nat-vs-dr", "--out", "notes", "--slurm"]);
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!dir.join("notes.shards").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A directory of fake `sbatch` (logs its arguments to `sbatch.log`, prints job ids 101,
/// 102, ..., or fails as a real one does when `FAKE_SBATCH_FAIL` is set) and `squeue`
/// (prints the ids in `queued`).
fn fake_slurm(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let bin = dir.join("fake bin");
    std::fs::create_dir_all(&bin).unwrap();
    let sbatch = r#"#!/bin/sh
d=$(dirname "$0")
if [ -n "${FAKE_SBATCH_FAIL:-}" ]; then echo "sbatch: error: Batch job submission failed: Invalid account" >&2; exit 1; fi
echo "$*" >> "$d/sbatch.log"
n=$(($(cat "$d/next" 2>/dev/null || echo 100) + 1)); echo $n > "$d/next"; echo "$n;lvsim"
"#;
    let squeue = "#!/bin/sh\ncat \"$(dirname \"$0\")/queued\" 2>/dev/null\n";
    for (name, text) in [("sbatch", sbatch), ("squeue", squeue)] {
        std::fs::write(bin.join(name), text).unwrap();
        std::fs::set_permissions(bin.join(name), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    bin
}

#[test]
fn submissions_keep_their_split_wait_for_earlier_jobs_and_show_sbatchs_errors() {
    let dir = temp_dir("fake");
    let bin = fake_slurm(&dir);
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let run = |args: &[&str], fail: bool| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_lvsim"));
        c.args(["sweep", "nat-vs-dr", "--out", "r", "--slurm", "--submit"]).args(args);
        c.current_dir(&dir).env("PATH", &path).env_remove("FAKE_SBATCH_FAIL");
        if fail {
            c.env("FAKE_SBATCH_FAIL", "1");
        }
        c.output().unwrap()
    };
    let shards = dir.join("r.shards");
    ok(&run(&["--shards", "4"], false));
    assert_eq!(last_submission(&shards), (101, 102, vec![1, 2, 3, 4]));
    let log = std::fs::read_to_string(bin.join("sbatch.log")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert!(lines[0].ends_with("slurm/array.sh") && lines[0].starts_with("--parsable"), "{log}");
    assert!(
        lines[1].starts_with("--parsable --dependency=afterany:101 ") && lines[1].ends_with("merge.sh"),
        "{log}"
    );

    // The array is still queued: no second submission.
    std::fs::write(bin.join("queued"), "55\n101\n").unwrap();
    let o = run(&[], false);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("job 101") && err.contains("scancel 101"), "{err}");
    assert_eq!(jobs(&shards)["submissions"].as_array().unwrap().len(), 1);

    // It ended: without --shards the split keeps its N (4), no shard is done, all run.
    std::fs::write(bin.join("queued"), "").unwrap();
    ok(&run(&[], false));
    assert_eq!(last_submission(&shards), (103, 104, vec![1, 2, 3, 4]));
    let script = std::fs::read_to_string(shards.join("slurm/array.sh")).unwrap();
    assert!(script.contains("--array=1-4\n") && script.contains("\"$SLURM_ARRAY_TASK_ID\"/4 "), "{script}");

    // sbatch's own error is the error.
    let o = run(&[], true);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("Invalid account"), "{err}");
    assert_eq!(jobs(&shards)["submissions"].as_array().unwrap().len(), 2);
    std::fs::remove_dir_all(&dir).unwrap();
}
