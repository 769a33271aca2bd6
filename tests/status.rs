//! `lvsim status DIR`: counts from shard files written by `lvsim sweep --shard`, and
//! Slurm's states from the real single-node cluster (`tests/slurm/lvsim-slurm start`):
//! a held array shows as pending, a cancelled one as failed.
//!
//! The Slurm test FAILS (it does not skip) when `sbatch`/`squeue` are missing or the
//! cluster does not answer.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::cli::{lvsim_in, text};

use lvsim::commands::shard::{
    self, Identity, Invocation, Kind, ShardFile, ShardSpec, UnitFailure, UnitResult,
};
use lvsim::commands::slurm::{Jobs, Submission};
use serde_json::Value;

/// A fresh directory under cargo's temporary directory.
fn scratch(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("status-{name}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("creating a scratch directory");
    d
}

/// `lvsim status DIR --json`, parsed; it must succeed.
fn status_json(cwd: &Path, dir: &Path) -> Value {
    let out = lvsim_in(cwd, &["status", dir.to_str().expect("UTF-8"), "--json"]);
    assert!(out.status.success(), "lvsim status failed: {}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("status --json is JSON")
}

fn counts(v: &Value) -> [u64; 5] {
    ["done", "failed", "running", "pending", "missing"].map(|k| v[k].as_u64().expect("a count"))
}

fn states(v: &Value) -> Vec<String> {
    v["per_shard"]
        .as_array()
        .expect("per_shard")
        .iter()
        .map(|p| p["state"].as_str().expect("state").to_owned())
        .collect()
}

#[test]
fn shards_run_by_lvsim_sweep_are_counted() {
    let d = scratch("sweep");
    let shards = d.join("out.shards");
    let dir = shards.to_str().expect("UTF-8");
    for k in [1, 3] {
        let spec = format!("{k}/4");
        let out =
            lvsim_in(&d, &["sweep", "heterogeneous", "--shard", &spec, "--shards-dir", dir, "-q", "-j", "1"]);
        assert!(out.status.success(), "sweep --shard {spec}: {}", text(&out.stderr));
    }
    // By the shards directory, and by the report directory beside it.
    for asked in [shards.clone(), d.join("out")] {
        let v = status_json(&d, &asked);
        assert_eq!(counts(&v), [2, 0, 0, 0, 2], "{v}");
        assert_eq!(states(&v), ["done", "missing", "done", "missing"]);
        // 6 schedulers x 3 replications.
        assert_eq!(v["identity"]["units"], 18);
        assert_eq!(v["report_written"], false);
    }
    // A truncated shard is not counted, and says why.
    let second = shards.join("shard-3-of-4.json");
    let bytes = std::fs::read(&second).expect("reading a shard");
    std::fs::write(&second, &bytes[..bytes.len() / 2]).expect("truncating it");
    let out = lvsim_in(&d, &["status", dir]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let t = text(&out.stdout);
    assert!(t.contains("1 done, 0 failed, 0 running, 0 pending, 3 missing of 4"), "{t}");
    // Shard 1 of 4 holds units 0, 4, 8, 12, 16.
    assert!(t.contains("runs: 5 of 18 done, 0 failed"), "{t}");
    assert!(t.contains("missing: 2-4"), "{t}");
    assert!(t.contains("shard-3-of-4.json") && t.contains("not a shard file"), "{t}");
    // Nothing to tell: an input error naming the directory.
    let empty = scratch("empty");
    let out = lvsim_in(&d, &["status", empty.to_str().expect("UTF-8")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains(empty.to_str().expect("UTF-8")), "{}", text(&out.stderr));
}

#[test]
fn failed_units_are_listed_with_their_point_and_error() {
    let d = scratch("failed");
    let id = identity(2);
    shard::write(&d, &shard_file(1, &id, false)).expect("writing shard 1");
    shard::write(&d, &shard_file(2, &id, true)).expect("writing shard 2");
    let out = lvsim_in(&d, &["status", "."]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let t = text(&out.stdout);
    assert!(t.contains("1 done, 1 failed, 0 running, 0 pending, 0 missing of 2"), "{t}");
    assert!(t.contains("failed: shard 2, unit 1 (rate=1): trace t.csv: No such file"), "{t}");
    let v = status_json(&d, Path::new("."));
    assert_eq!(v["failures"][0]["label"], "rate=1");
    assert_eq!(v["units_done"], 3, "units 0, 2 and 3 ran; 1 failed");
}

fn identity(n: u32) -> Identity {
    Identity {
        format: shard::FORMAT,
        lvsim: shard::version(),
        kind: Kind::Sweep,
        scenario: "held".into(),
        fingerprint: "0".repeat(64),
        units: 4,
        shards: n,
    }
}

fn shard_file(k: u32, id: &Identity, failed: bool) -> ShardFile {
    let units = ShardSpec { k, n: id.shards }.units(id.units);
    let (mut results, mut failures) = (Vec::new(), Vec::new());
    for unit in units {
        let label = format!("rate={unit}");
        if failed && failures.is_empty() {
            failures.push(UnitFailure { unit, label, error: "trace t.csv: No such file".into() });
        } else {
            results.push(UnitResult { unit, label, summary: Default::default(), input: None });
        }
    }
    ShardFile {
        identity: id.clone(),
        shard: k,
        invocation: Invocation::default(),
        host: "test".into(),
        wall_s: 0.0,
        results,
        failures,
        first_text: None,
    }
}

/// The cluster answers, else the test fails with what to do.
fn require_slurm() {
    for tool in ["sbatch", "squeue", "scancel", "scontrol", "sinfo"] {
        let found = Command::new(tool).arg("--version").output().is_ok_and(|o| o.status.success());
        assert!(
            found,
            "{tool} not found: install Debian's slurm-wlm and munge, then run `tests/slurm/lvsim-slurm start`"
        );
    }
    let out = Command::new("sinfo").args(["-h", "-o", "%t"]).output().expect("sinfo");
    let state = text(&out.stdout);
    assert!(
        out.status.success() && state.lines().any(|l| ["idle", "mix", "alloc", "comp"].contains(&l.trim())),
        "the Slurm cluster does not answer (sinfo: {state:?} {}): run `tests/slurm/lvsim-slurm start`",
        text(&out.stderr).trim()
    );
}

/// Jobs cancelled when the test ends, even by a panic.
struct Cancel(Vec<String>);

impl Drop for Cancel {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            let _ = Command::new("scancel").args(&self.0).output();
        }
    }
}

fn sbatch(args: &[&str]) -> u64 {
    let out = Command::new("sbatch").args(args).output().expect("spawning sbatch");
    assert!(out.status.success(), "sbatch {args:?}: {}", text(&out.stderr));
    let id = text(&out.stdout);
    id.trim().split(';').next().and_then(|i| i.parse().ok()).unwrap_or_else(|| panic!("sbatch said {id:?}"))
}

/// Polls (bounded) until `squeue` no longer lists `ids`.
fn wait_gone(ids: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = Command::new("squeue").args(["-h", "-j", ids]).output().expect("squeue");
        if text(&out.stdout).trim().is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "jobs {ids} still queued after 60 s: {}", text(&out.stdout));
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn held_array_is_pending_then_cancelled_is_failed() {
    require_slurm();
    let d = scratch("held");
    let shards = d.join("held.shards");
    let id = identity(3);
    shard::write(&shards, &shard_file(1, &id, false)).expect("writing shard 1");
    let log = format!("--output={}/%A_%a.out", d.display());
    let array =
        sbatch(&["--parsable", "--hold", "--array=2-3", "-J", "lvsim-status-test", &log, "--wrap", "true"]);
    let mut cancel = Cancel(vec![array.to_string()]);
    let dep = format!("--dependency=afterany:{array}");
    let merge = sbatch(&[
        "--parsable",
        "--hold",
        &dep,
        "-J",
        "lvsim-status-merge",
        "-o",
        "/dev/null",
        "--wrap",
        "true",
    ]);
    cancel.0.push(merge.to_string());
    let jobs = Jobs {
        shards: 3,
        report_dir: d.join("held").display().to_string(),
        submissions: vec![Submission { array_job: array, merge_job: merge, tasks: vec![2, 3], at: 0 }],
    };
    std::fs::create_dir_all(shards.join("slurm")).expect("mkdir slurm");
    std::fs::write(shards.join("slurm/jobs.json"), serde_json::to_string(&jobs).expect("json"))
        .expect("jobs.json");

    let v = status_json(&d, &shards);
    assert_eq!(counts(&v), [1, 0, 0, 2, 0], "{v}");
    assert_eq!(v["per_shard"][1]["task"], format!("{array}_2"));
    assert!(v["per_shard"][1]["detail"].as_str().expect("detail").contains("JobHeldUser"), "{v}");
    assert_eq!(v["merge"]["state"], "PENDING");
    let t = text(&lvsim_in(&d, &["status", shards.to_str().expect("UTF-8")]).stdout);
    assert!(t.contains("pending: 2-3"), "{t}");
    assert!(t.contains(&format!("merge job {merge}: PENDING")), "{t}");

    let ids = format!("{array},{merge}");
    let out =
        Command::new("scancel").args([&array.to_string(), &merge.to_string()]).output().expect("scancel");
    assert!(out.status.success(), "scancel: {}", text(&out.stderr));
    cancel.0.clear();
    wait_gone(&ids);
    // Cancelled without a shard file: failed, with Slurm's word (scontrol keeps ended jobs
    // for MinJobAge, 300 s).
    let v = status_json(&d, &shards);
    assert_eq!(counts(&v), [1, 2, 0, 0, 0], "{v}");
    assert!(v["per_shard"][2]["detail"].as_str().expect("detail").contains("CANCELLED"), "{v}");
    assert_eq!(v["merge"]["state"], "CANCELLED");
}

#[test]
fn a_split_written_by_slurm_but_not_submitted_is_all_missing() {
    let d = scratch("written");
    let out = lvsim_in(&d, &["sweep", "heterogeneous", "--slurm", "--shards", "4", "--out", "rep", "-q"]);
    assert!(out.status.success(), "sweep --slurm: {}", text(&out.stderr));
    let v = status_json(&d, &d.join("rep"));
    assert_eq!(counts(&v), [0, 0, 0, 0, 4], "{v}");
    assert_eq!(v["identity"]["units"], 18, "the identity comes from slurm/identity.json: {v}");
    assert_eq!(v["merge"], Value::Null);
    assert!(v["shards_dir"].as_str().expect("shards_dir").ends_with("rep.shards"), "{v}");
}

/// The `xargs` line of docs/cluster.md ("Without Slurm"), run as written with this lvsim
/// first on the PATH: its merged sweep is the local sweep, and status counts 8 done.
#[test]
fn the_docs_xargs_line_runs_a_split_that_merges_into_the_local_sweep() {
    let docs =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/cluster.md")).expect("docs");
    let line =
        docs.lines().find(|l| l.starts_with("seq 8 | xargs")).expect("docs/cluster.md has the xargs line");
    assert!(line.contains("--shard {}/8") && line.contains("lvsim merge shards"), "{line}");
    let d = scratch("xargs");
    let bin = Path::new(env!("CARGO_BIN_EXE_lvsim")).parent().expect("the binary's directory");
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let out = Command::new("sh").args(["-c", line]).env("PATH", path).current_dir(&d).output().expect("sh");
    assert!(out.status.success(), "{line}: {}", text(&out.stderr));
    let out = lvsim_in(&d, &["sweep", "nat-vs-dr", "--out", "local", "-q"]);
    assert!(out.status.success(), "local sweep: {}", text(&out.stderr));
    let csv = |dir: &str| std::fs::read(d.join(dir).join("sweep.csv")).expect("sweep.csv");
    assert!(csv("local") == csv("nat-vs-dr-sweep"), "merged sweep.csv differs from the local one");
    let v = status_json(&d, &d.join("shards"));
    assert_eq!(counts(&v), [8, 0, 0, 0, 0], "{v}");
}

/// Hostile or careless state files: refused with the file named, never allocated whole.
#[test]
fn hostile_state_files_are_refused_or_not_counted() {
    let d = scratch("hostile");
    let slurm = d.join("slurm");
    std::fs::create_dir_all(&slurm).expect("mkdir");
    let jobs = slurm.join("jobs.json");
    for (bad, says) in [
        (r#"{"shards": 4294967295, "report_dir": "", "submissions": []}"#.to_owned(), "4294967295 shards"),
        (r#"{"shards": 0, "report_dir": "", "submissions": []}"#.to_owned(), "0 shards"),
        ("[".repeat(100_000), "not a jobs.json"),
    ] {
        std::fs::write(&jobs, bad).expect("writing jobs.json");
        let out = lvsim_in(&d, &["status", "."]);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
        let err = text(&out.stderr);
        assert!(err.contains("jobs.json") && err.contains(says), "{err}");
    }
    std::fs::remove_file(&jobs).expect("rm jobs.json");
    // A link to a good shard file is not followed; a directory named like one neither.
    let id = identity(2);
    let real = shard::write(&d.join("elsewhere"), &shard_file(1, &id, false)).expect("writing");
    std::os::unix::fs::symlink(&real, d.join("shard-1-of-2.json")).expect("symlink");
    shard::write(&d, &shard_file(2, &id, false)).expect("writing");
    std::fs::create_dir(d.join("shard-3-of-3.json")).expect("mkdir");
    let v = status_json(&d, Path::new("."));
    assert_eq!(counts(&v), [1, 0, 0, 0, 1], "{v}");
    let refused = v["refused"].to_string();
    assert!(refused.contains("not a plain file"), "{refused}");
}

#[test]
fn a_task_that_fails_without_a_file_is_failed_with_its_log() {
    require_slurm();
    let d = scratch("task-failed");
    let shards = d.join("f.shards");
    let logs = shards.join("slurm/logs");
    std::fs::create_dir_all(&logs).expect("mkdir logs");
    shard::write(&shards, &shard_file(1, &identity(2), false)).expect("writing shard 1");
    let log = format!("--output={}/%A_%a.out", logs.display());
    let array = sbatch(&[
        "--parsable",
        "--array=2",
        "-J",
        "lvsim-status-fail",
        &log,
        "--wrap",
        "echo boom >&2; exit 3",
    ]);
    let cancel = Cancel(vec![array.to_string()]);
    let jobs = Jobs {
        shards: 2,
        report_dir: d.join("f").display().to_string(),
        submissions: vec![Submission { array_job: array, merge_job: 0, tasks: vec![2], at: 0 }],
    };
    std::fs::write(shards.join("slurm/jobs.json"), serde_json::to_string(&jobs).expect("json"))
        .expect("jobs.json");
    wait_gone(&array.to_string());
    drop(cancel);
    let v = status_json(&d, &shards);
    assert_eq!(counts(&v), [1, 1, 0, 0, 0], "{v}");
    let detail = v["per_shard"][1]["detail"].as_str().expect("detail");
    assert!(detail.contains("FAILED") && detail.contains("exit 3:0"), "{v}");
    assert_eq!(v["merge"], Value::Null, "no merge job was submitted");
    let log = v["per_shard"][1]["log"].as_str().expect("the task's log");
    assert!(std::fs::read_to_string(log).expect("the log").contains("boom"), "{log}");
    let t = text(&lvsim_in(&d, &["status", shards.to_str().expect("UTF-8")]).stdout);
    assert!(
        t.contains(&format!("shard 2 (task {array}_2): its task ended FAILED")) && t.contains("; log "),
        "{t}"
    );
}

/// A split `run --replications` counts the same way (units are replications).
#[test]
fn replications_split_by_run_shard_are_counted() {
    let d = scratch("run");
    let out = lvsim_in(
        &d,
        &["run", "quickstart", "--replications", "3", "--shard", "2/3", "--shards-dir", "s", "-q"],
    );
    assert!(out.status.success(), "run --shard 2/3: {}", text(&out.stderr));
    let v = status_json(&d, &d.join("s"));
    assert_eq!(counts(&v), [1, 0, 0, 0, 2], "{v}");
    assert_eq!(v["identity"]["kind"], "run");
    assert_eq!(states(&v), ["missing", "done", "missing"]);
    let t = text(&lvsim_in(&d, &["status", "s"]).stdout);
    assert!(t.starts_with("run of quickstart: 3 units in 3 shards"), "{t}");
}

/// A real campaign: `--slurm --submit`, then status until the merge has written the
/// report: every shard done, the merge job COMPLETED (scontrol), the report written.
#[test]
fn a_submitted_sweep_ends_all_done_with_its_report_written() {
    require_slurm();
    let d = scratch("campaign");
    let args = ["sweep", "heterogeneous", "--slurm", "--submit", "--shards", "3", "--out", "rep", "-q"];
    let out = lvsim_in(&d, &args);
    assert!(out.status.success(), "sweep --slurm --submit: {}", text(&out.stderr));
    let jobs: Jobs =
        serde_json::from_slice(&std::fs::read(d.join("rep.shards/slurm/jobs.json")).expect("jobs.json"))
            .expect("jobs.json parses");
    let s = jobs.submissions.last().expect("a submission").clone();
    let _cancel = Cancel(vec![s.array_job.to_string(), s.merge_job.to_string()]);
    let v = status_json(&d, &d.join("rep"));
    let [done, failed, running, pending, missing] = counts(&v);
    assert_eq!((done + running + pending, failed, missing), (3, 0, 0), "just submitted: {v}");
    wait_gone(&format!("{},{}", s.array_job, s.merge_job));
    let v = status_json(&d, &d.join("rep"));
    assert_eq!(counts(&v), [3, 0, 0, 0, 0], "{v}");
    assert_eq!(v["merge"]["state"], "COMPLETED", "{v}");
    assert_eq!(v["report_written"], true, "{v}");
    let t = text(&lvsim_in(&d, &["status", "rep"]).stdout);
    assert!(t.contains(&format!("merge job {}: COMPLETED", s.merge_job)) && t.contains("(written)"), "{t}");
}

/// Without Slurm's commands, the files still count and a note names the package.
#[test]
fn without_squeue_the_files_count_and_a_note_names_the_package() {
    let d = scratch("no-squeue");
    shard::write(&d, &shard_file(1, &identity(2), false)).expect("writing shard 1");
    let jobs = Jobs {
        shards: 2,
        report_dir: String::new(),
        submissions: vec![Submission { array_job: 999_999, merge_job: 1_000_000, tasks: vec![1, 2], at: 0 }],
    };
    std::fs::create_dir_all(d.join("slurm")).expect("mkdir slurm");
    std::fs::write(d.join("slurm/jobs.json"), serde_json::to_string(&jobs).expect("json"))
        .expect("jobs.json");
    let out = Command::new(env!("CARGO_BIN_EXE_lvsim"))
        .args(["status", ".", "--json"])
        .current_dir(&d)
        .env("PATH", d.join("nothing-here"))
        .output()
        .expect("spawning lvsim");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(counts(&v), [1, 0, 0, 0, 1], "{v}");
    assert_eq!(v["per_shard"][1]["detail"], "its task's state is unknown (see the note)");
    let note = v["slurm_note"].as_str().expect("a note");
    assert!(note.contains("squeue not found (Debian package slurm-client)"), "{note}");
}
