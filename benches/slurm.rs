//! The Slurm benchmark: a library sweep run locally (`lvsim sweep -j CPUS`) and through
//! the single-node Slurm of this machine (`lvsim sweep --slurm --submit`, waiting for the
//! merge job), paired, three rounds, in this process.
//!
//! ```text
//! tests/slurm/lvsim-slurm start                          # once, as root
//! cargo bench -p lvsim --bench slurm                     # heterogeneous, one task a unit
//! cargo bench -p lvsim --bench slurm -- nat-vs-dr 4      # another sweep, 4 shards
//! cargo bench -p lvsim --bench slurm -- heterogeneous 4 --set=duration_s=600   # longer runs
//! ```
//!
//! Per round: the local wall time and CPU time (the child's rusage); the Slurm wall time
//! from the submitting command's start until the merge job has left the queue with the
//! report written; the sum of the shards' own wall times (`wall_s` of each shard file).
//! Printed: the wall ratio Slurm / local (min, median), and the overhead per task,
//! (Slurm wall x the node's CPUs - local CPU time) / tasks: the CPU-seconds each task
//! costs beyond its simulations (scheduling, start of the job step, lvsim's start and the
//! scenario's load, the shard file), the merge job's counted in. The merged `sweep.csv`
//! must equal the local one, byte for byte. Wall times here are noisy on a shared
//! machine: read ratios, not seconds.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const LVSIM: &str = env!("CARGO_BIN_EXE_lvsim");

/// The longest wait for one Slurm campaign.
const TIMEOUT: Duration = Duration::from_secs(1800);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    // `--set=PATH=VALUE`: passed to both sweeps as `--set PATH=VALUE`.
    let (sets, args): (Vec<String>, Vec<String>) = args.into_iter().partition(|a| a.starts_with("--set="));
    let sets: Vec<String> =
        sets.iter().flat_map(|s| ["--set".to_owned(), s["--set=".len()..].to_owned()]).collect();
    let sets: Vec<&str> = sets.iter().map(String::as_str).collect();
    let scenario = args.iter().find(|a| a.parse::<u32>().is_err()).cloned().unwrap_or("heterogeneous".into());
    let shards: Option<u32> = args.iter().find_map(|a| a.parse().ok());
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let tmp = TempDir::new();
    check_cluster();
    println!(
        "lvsim sweep {scenario}: locally with -j {cpus} vs --slurm --submit on this machine ({cpus} CPUs)"
    );
    println!(
        "{:>4} {:>9} {:>9} {:>9} {:>6} {:>7} {:>11} {:>13}",
        "rep", "local s", "CPU s", "Slurm s", "tasks", "ratio", "shards' s", "overhead/task"
    );
    let (mut ratios, mut overheads) = (Vec::new(), Vec::new());
    for rep in 0..3 {
        let local = tmp.0.join(format!("local-{rep}"));
        let jobs = cpus.to_string();
        let local_args =
            [&["sweep", &scenario, "--out", path(&local), "-q", "-j", &jobs][..], &sets].concat();
        let (wall_l, cpu_l) = timed(|| run(&local_args));
        let out = tmp.0.join(format!("slurm-{rep}"));
        let (wall_s, _) = timed(|| slurm_campaign(&scenario, &sets, &out, shards));
        let csv = |d: &Path| std::fs::read(d.join("sweep.csv")).expect("sweep.csv");
        assert!(csv(&local) == csv(&out), "the merged sweep.csv differs from the local one");
        let (tasks, inside) = shards_wall(&shard_dir(&out));
        let ratio = wall_s / wall_l;
        let overhead = (wall_s * cpus as f64 - cpu_l) / tasks as f64;
        println!(
            "{rep:>4} {wall_l:>9.2} {cpu_l:>9.2} {wall_s:>9.2} {tasks:>6} {ratio:>7.2} {inside:>11.2} {overhead:>12.2}s"
        );
        ratios.push(ratio);
        overheads.push(overhead);
    }
    let mm = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        (v[0], v[v.len() / 2])
    };
    let ((rmin, rmed), (omin, omed)) = (mm(&mut ratios), mm(&mut overheads));
    println!("wall Slurm / local: min {rmin:.2} median {rmed:.2}");
    println!(
        "overhead per task (Slurm wall x {cpus} CPUs - local CPU) / tasks: min {omin:.2} s median {omed:.2} s"
    );
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temporary path")
}

/// Runs lvsim; it must succeed.
fn run(args: &[&str]) {
    let out = Command::new(LVSIM).args(args).output().expect("spawning lvsim");
    assert!(out.status.success(), "lvsim {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Wall time of `f` and the CPU time of the children it waited for [s].
fn timed(f: impl FnOnce()) -> (f64, f64) {
    let cpu = || {
        let u =
            nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN).expect("getrusage");
        let s = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
        s(u.user_time()) + s(u.system_time())
    };
    let (t0, c0) = (Instant::now(), cpu());
    f();
    (t0.elapsed().as_secs_f64(), cpu() - c0)
}

fn shard_dir(out: &Path) -> PathBuf {
    lvsim::commands::shard::shards_dir(None, out)
}

/// Submits the sweep and waits until its merge job has left the queue and the report is
/// written.
fn slurm_campaign(scenario: &str, sets: &[&str], out: &Path, shards: Option<u32>) {
    let mut args = vec!["sweep", scenario, "--slurm", "--submit", "--out", path(out), "-q"];
    args.extend(sets);
    let n = shards.map(|n| n.to_string());
    if let Some(n) = &n {
        args.extend(["--shards", n]);
    }
    run(&args);
    let jobs_path = shard_dir(out).join("slurm/jobs.json");
    let jobs: lvsim::commands::slurm::Jobs =
        serde_json::from_slice(&std::fs::read(&jobs_path).expect("jobs.json")).expect("jobs.json parses");
    let s = jobs.submissions.last().expect("a submission");
    let ids = format!("{},{}", s.array_job, s.merge_job);
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let q = Command::new("squeue").args(["-h", "-j", &ids]).output().expect("squeue");
        if String::from_utf8_lossy(&q.stdout).trim().is_empty() && out.join("summary.txt").is_file() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "jobs {ids} not done after {TIMEOUT:?}; see {}",
            jobs_path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The shard files in `dir`: how many, and the sum of their wall times [s].
fn shards_wall(dir: &Path) -> (usize, f64) {
    let found = lvsim::commands::shard::scan(dir).expect("scanning the shards");
    let walls: Vec<f64> = found.iter().map(|f| f.shard.as_ref().expect("a shard file").wall_s).collect();
    (walls.len(), walls.iter().sum())
}

/// The cluster answers, else stop with what to do.
fn check_cluster() {
    let out = Command::new("sinfo").args(["-h", "-o", "%t"]).output();
    let ok = out.as_ref().is_ok_and(|o| {
        let s = String::from_utf8_lossy(&o.stdout);
        o.status.success() && s.lines().any(|l| ["idle", "mix", "alloc", "comp"].contains(&l.trim()))
    });
    assert!(
        ok,
        "no Slurm cluster answers here: install slurm-wlm and munge, run `tests/slurm/lvsim-slurm start`"
    );
    let queued = Command::new("squeue").args(["-h"]).output().map(|o| o.stdout.len()).unwrap_or(0);
    if queued > 0 {
        println!("note: other jobs are in the queue; they share the node with these");
    }
}

/// A temporary directory removed at the end.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        // Under the target directory: the Slurm jobs (run as the submitter on this machine)
        // see it, and it is not a shared /tmp.
        let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("target").join("tmp");
        let p = base.join(format!("slurm-bench-{}", std::process::id()));
        std::fs::create_dir_all(&p).expect("creating the temporary directory");
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
