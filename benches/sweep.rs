//! The sweep benchmark: parallel efficiency of `lvsim sweep` on a sweep of equal points,
//! and the peak memory of a sweep of many points against few.
//!
//! ```text
//! cargo bench -p lvsim --bench sweep                    # 4 points a core, 100 s each
//! cargo bench -p lvsim --bench sweep -- 16 50           # 16 points of 50 simulated s
//! cargo bench -p lvsim --bench sweep -- --memory        # the memory part alone
//! cargo bench -p lvsim --bench sweep -- --speed         # the speed part alone
//! ```
//!
//! Speed: LVS-REF-1 `base` (8 PS servers, wlc, 1000 conn/s) swept over `seed`, so every
//! point costs the same; the same sweep with `--jobs 1` and with `--jobs N` (N = the
//! machine's cores), alternately, three times, in this process. Speed-up = wall(1) /
//! wall(N), efficiency = speed-up / N; min and median of the three. The phases of the
//! N-job sweep (load and check, runs, aggregate, write) show what is serial: `busy` is the
//! runs' own wall time summed over the runs divided by (runs phase × threads), 1.0 when no
//! thread ever waits. The 1-job and N-job `sweep.csv` must be byte-identical.
//!
//! Memory: a farm of 2000 real servers swept over `seed`, few points (2 a core) then many
//! (16 a core), each `lvsim sweep` in a child process; peak RSS from the child's rusage
//! (read by a middle process that has no other child). Bounded when many ≈ few.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use lvsim::commands::Common;
use lvsim::commands::sweep::{Phases, sweep_timed};

/// The library's LVS-REF-1 `base`, relative to this crate.
const REF1: &str = "scenarios/library/bench/lvs-ref1-base.ron";
/// The environment variable that makes this binary the middle process of a memory probe.
const MIDDLE: &str = "LVSIM_SWEEP_BENCH_MIDDLE";

fn main() {
    if std::env::var_os(MIDDLE).is_some() {
        return middle();
    }
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let only = |flag: &str| args.iter().any(|a| a == flag);
    let numbers: Vec<f64> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let tmp = TempDir::new();
    if !only("--memory") {
        let points = numbers.first().map_or(4 * cores, |&p| p as usize);
        let duration = numbers.get(1).copied().unwrap_or(100.0);
        speed(&tmp.0, cores, points, duration);
    }
    if !only("--speed") {
        memory(&tmp.0, cores);
    }
}

/// A scenario file: `base`'s text with its sweep replaced by `points` seeds.
fn seeds_scenario(dir: &Path, name: &str, base: &str, points: usize) -> PathBuf {
    let seeds: Vec<String> = (1..=points).map(|s| s.to_string()).collect();
    let sweep = format!("sweep: [Axis(field: \"seed\", values: [{}])],", seeds.join(", "));
    let text: String = base
        .lines()
        .map(|l| if l.trim_start().starts_with("sweep:") { sweep.as_str() } else { l })
        .collect::<Vec<_>>()
        .join("\n");
    assert!(text.contains("field: \"seed\""), "the base scenario has no `sweep:` line");
    let path = dir.join(format!("{name}.ron"));
    std::fs::write(&path, text).expect("writing the scenario");
    path
}

/// This process's CPU time so far (user + system) [s].
fn cpu_s() -> f64 {
    let u = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF).expect("getrusage");
    let s = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
    s(u.user_time()) + s(u.system_time())
}

/// One in-process sweep: its wall time, CPU time, phases and `sweep.csv`.
fn one_sweep(file: &Path, duration: f64, jobs: usize, out: PathBuf) -> (f64, f64, Phases, Vec<u8>) {
    let c = Common {
        file: file.to_path_buf(),
        sets: vec![format!("duration_s={duration:?}"), format!("warmup_s={:?}", duration / 10.0)],
        out: Some(out.clone()),
        quiet: true,
        jobs,
        ..Common::default()
    };
    let (t0, cpu0) = (Instant::now(), cpu_s());
    let phases = sweep_timed(&c).expect("the sweep runs");
    let (wall, cpu) = (t0.elapsed().as_secs_f64(), cpu_s() - cpu0);
    let csv = std::fs::read(out.join("sweep.csv")).expect("sweep.csv");
    std::fs::remove_dir_all(&out).expect("removing the sweep's output");
    (wall, cpu, phases, csv)
}

fn speed(tmp: &Path, cores: usize, points: usize, duration: f64) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let base = std::fs::read_to_string(root.join(REF1)).expect("the LVS-REF-1 scenario");
    let file = seeds_scenario(tmp, "equal-points", &base, points);
    println!(
        "sweep of {points} equal points (LVS-REF-1 base, {duration} simulated s each, ~{:.0} conns), 1 job vs {cores}",
        duration * 1000.0
    );
    println!(
        "{:>4} {:>10} {:>10} {:>9} {:>11} {:>13}",
        "rep", "1 job s", "N jobs s", "speed-up", "efficiency", "CPU N/1 jobs"
    );
    let mut ups = Vec::new();
    let mut inflation = Vec::new();
    let mut last = Phases::default();
    for rep in 0..3 {
        let (w1, c1, _, csv1) = one_sweep(&file, duration, 1, tmp.join(format!("one-{rep}")));
        let (wn, cn, phases, csvn) = one_sweep(&file, duration, cores, tmp.join(format!("many-{rep}")));
        assert!(csv1 == csvn, "sweep.csv differs between --jobs 1 and --jobs {cores}");
        let up = w1 / wn;
        println!(
            "{rep:>4} {w1:>10.3} {wn:>10.3} {up:>9.3} {:>10.1}% {:>13.3}",
            100.0 * up / cores as f64,
            cn / c1
        );
        ups.push(up);
        inflation.push(cn / c1);
        last = phases;
    }
    ups.sort_by(f64::total_cmp);
    let (min, med) = (ups[0], ups[ups.len() / 2]);
    println!(
        "speed-up min {min:.3} median {med:.3} on {cores} cores: efficiency min {:.1}% median {:.1}% (target >= 90%)",
        100.0 * min / cores as f64,
        100.0 * med / cores as f64
    );
    inflation.sort_by(f64::total_cmp);
    let inflation = inflation[inflation.len() / 2];
    println!(
        "CPU time of the {cores}-job sweep over the 1-job one: median {inflation:.3} (above 1: the runs slow each \
         other down through shared caches, memory or clock; the efficiency cannot exceed its inverse)",
    );
    let p = last;
    let busy = p.run_sum_s / (p.runs_s * p.threads as f64);
    let parallel = p.runs_s / (p.load_s + p.runs_s + p.write_s);
    println!(
        "estimate from the phases (share of the runs phase x busy / CPU ratio; less disturbed than wall times by \
         other processes on the cores): efficiency {:.1}%",
        100.0 * parallel * busy / inflation
    );
    let total = p.load_s + p.runs_s + p.write_s;
    println!(
        "phases of the last {}-job sweep ({} runs on {} threads): load+check {:.3} s ({:.1}%), runs {:.3} s \
         ({:.1}%; aggregate+sweep.json {:.4} s beside them), write {:.3} s ({:.1}%); busy {:.1}%",
        cores,
        p.runs,
        p.threads,
        p.load_s,
        100.0 * p.load_s / total,
        p.runs_s,
        100.0 * p.runs_s / total,
        p.aggregate_s,
        p.write_s,
        100.0 * p.write_s / total,
        100.0 * busy,
    );
}

/// A farm of `servers` real servers (wlc, DR) at 1000 conn/s for 2 s.
fn farm(servers: usize) -> String {
    format!(
        r#"Scenario(
    description: "sweep memory probe: a farm of {servers} real servers",
    seed: 1,
    duration_s: 2.0,
    directors: [Director(name: "lb", address: "10.0.0.1", services: [
        Service(vip: "10.0.0.1", port: 80, scheduler: wrr,
            real_servers: [RealServer(server: "rs", forwarding: DR)]),
    ])],
    servers: [Server(name: "rs", count: {servers}, address: "10.1.0.1", cpu: Cpu(speed: 1.0))],
    clients: [Clients(arrival: Poisson(rate: 1000.0), demand_ms: Exponential(mean: 7.0))],
    sweep: [Axis(field: "seed", values: [1])],
)
"#
    )
}

fn memory(tmp: &Path, cores: usize) {
    let base = farm(2000);
    let (few, many) = (2 * cores, 16 * cores);
    println!("peak RSS of `lvsim sweep -j {cores}`, a farm of 2000 real servers, 2 simulated s a point");
    let mut peaks = Vec::new();
    for points in [few, many] {
        let file = seeds_scenario(tmp, &format!("farm-{points}"), &base, points);
        let out = tmp.join(format!("farm-{points}-out"));
        let kib = peak_rss_kib(&[
            "sweep".as_ref(),
            file.as_os_str(),
            "--out".as_ref(),
            out.as_os_str(),
            "--quiet".as_ref(),
            "-j".as_ref(),
            cores.to_string().as_ref(),
        ]);
        println!("{points:>5} points: peak RSS {:>8.1} MiB", kib as f64 / 1024.0);
        peaks.push(kib);
    }
    println!(
        "many/few: {:.3} ({many} points / {few}: bounded when close to 1; unbounded would grow with the points)",
        peaks[1] as f64 / peaks[0] as f64
    );
}

/// Peak RSS [KiB] of `lvsim ARGS`, through a middle process (this binary again) whose only
/// child it is.
fn peak_rss_kib(args: &[&std::ffi::OsStr]) -> u64 {
    let out = Command::new(std::env::current_exe().expect("this binary"))
        .env(MIDDLE, "1")
        .args(args)
        .output()
        .expect("starting the middle process");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "the probe failed: {text}\n{}", String::from_utf8_lossy(&out.stderr));
    text.trim().parse().unwrap_or_else(|_| panic!("the probe printed {text:?}"))
}

/// The middle process: runs lvsim with its own arguments, prints the child's peak RSS.
fn middle() {
    let status = Command::new(env!("CARGO_BIN_EXE_lvsim"))
        .args(std::env::args_os().skip(1))
        .status()
        .expect("starting lvsim");
    assert!(status.success(), "lvsim failed: {status}");
    let usage =
        nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN).expect("getrusage");
    // Linux reports ru_maxrss in KiB.
    println!("{}", usage.max_rss());
}

/// A temporary directory, removed at the end.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let dir = std::env::temp_dir().join(format!("lvsim-sweep-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("creating a temporary directory");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
