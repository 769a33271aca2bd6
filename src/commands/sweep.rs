//! `lvsim sweep`: every point of the scenario's sweep, each replicated, in parallel.
//!
//! Memory is bounded by the runs at once, not by the sweep's size: a point is built (its
//! scenario and configuration) when a worker starts one of its runs, kept for the
//! worker's next run if it is the same point's next replication, then dropped (one point
//! a worker); each point's summaries go to `sweep.json` as soon as the point and every
//! earlier one are done ([`super::ordered`]); what the sweep keeps to the end is each
//! run's summary without its per-server parts (for `sweep.csv`, `report.html` and the
//! terminal). What it writes does not depend on `--jobs`, but for the `wall_s` of each
//! run in `sweep.json`.
//!
//! `--shard K/N` runs only the shard's runs (`shard.rs`) into its shard file; `lvsim
//! merge` hands the shards' summaries to the code that writes the local sweep's files
//! ([`merged`]: `run_points` takes its runs from a source, the simulation or the stored
//! summaries), so the files are the same by construction. `--slurm` hands the checked
//! work to `slurm.rs`.

use std::io::Write as _;
use std::time::Instant;

use anyhow::Context as _;
use reports::{Summary, SweepJson, SweepPoint, SweepReport};
use scenarios::{Loaded, Sweep};

use super::shard::{self, Gathered, Identity, Kind, ShardFile, ShardSpec, UnitFailure, UnitResult, Work};
use super::{Common, InputError, Split, count_bar, ordered, summarize};

/// Wall-clock seconds of a sweep's phases (what [`sweep_timed`] returns; the sweep bench
/// prints them to show what is serial).
#[derive(Clone, Copy, Debug, Default)]
pub struct Phases {
    /// Loading the scenario and checking every point (built in parallel, then dropped).
    pub load_s: f64,
    /// The runs, from the first start to the last end (including the writing of
    /// `sweep.json`, a point at a time, beside them).
    pub runs_s: f64,
    /// The runs' own wall times, summed: `runs_s × threads` when the threads never wait.
    pub run_sum_s: f64,
    /// Aggregating replications and writing each point to `sweep.json` (on the calling
    /// thread, while the workers run; part of `runs_s`).
    pub aggregate_s: f64,
    /// `sweep.csv`, `report.html`, `summary.txt`, after the last run.
    pub write_s: f64,
    /// Worker threads.
    pub threads: usize,
    /// Runs (points × replications).
    pub runs: usize,
}

/// Runs the sweep and writes its report directory.
pub fn sweep(c: &Common) -> anyhow::Result<()> {
    sweep_timed(c).map(|_| ())
}

/// [`sweep`], returning how long each phase took (nothing for a shard or `--slurm`).
pub fn sweep_timed(c: &Common) -> anyhow::Result<Phases> {
    let t0 = Instant::now();
    let l = c.load(&[])?;
    let sweep = axes(&l)?;
    match &c.split {
        Split::Local => {}
        Split::Shard { spec, dir } => {
            return one_shard(c, &l, &sweep, *spec, dir.as_deref()).map(|()| Phases::default());
        }
        Split::Slurm { opts, dir } => {
            let work = work(c, &l, &sweep, dir.as_deref())?;
            return super::slurm::campaign(c, opts, &work).map(|()| Phases::default());
        }
    }
    let reps = check_points(c, &l, &sweep)?.0;
    let out_dir = c.report_dir(&l.name, "-sweep")?;
    let mut phases = Phases { load_s: t0.elapsed().as_secs_f64(), ..Phases::default() };

    out_dir.clear()?;
    let dir = &out_dir.path;
    let t1 = Instant::now();
    let jobs = runs_of(&reps);
    let source = |last: &mut Built, j: usize| {
        let (k, r) = jobs[j];
        run_one(&l, &sweep, last, k, r)
    };
    let (report, run_sum_s, aggregate_s) = run_points(c, &l, &reps, &source, dir)?;
    phases.runs_s = t1.elapsed().as_secs_f64();
    phases.run_sum_s = run_sum_s;
    phases.aggregate_s = aggregate_s;
    phases.runs = jobs.len();
    phases.threads = ordered::threads(c.jobs, phases.runs);
    phases.write_s = finish(c, &l, dir, &report)?;
    Ok(phases)
}

/// The scenario's sweep; refuses a scenario without axes.
fn axes(l: &Loaded) -> anyhow::Result<Sweep> {
    if l.sweep_axes().is_empty() {
        return Err(InputError(format!(
            "{}: the scenario has no `sweep` axes; add e.g. `sweep: [Axis(field: \"clients[0].arrival.rate\", values: [100.0, 200.0])]`",
            l.file
        ))
        .into());
    }
    l.sweep().map_err(|e| InputError(e.to_string()).into())
}

/// Writes the pages and `summary.txt` of a sweep whose `sweep.json` is written, and prints
/// what the command prints; returns how long the writing took [s].
fn finish(c: &Common, l: &Loaded, dir: &std::path::Path, report: &SweepReport) -> anyhow::Result<f64> {
    let t2 = Instant::now();
    reports::write_sweep_pages(dir, report)
        .with_context(|| format!("writing the sweep report to {}", dir.display()))?;
    let text = terminal_text(report, l.scenario.replications.max(1), dir);
    super::write_terminal(dir, &text).with_context(|| format!("writing to {}", dir.display()))?;
    let write_s = t2.elapsed().as_secs_f64();

    // A reader that leaves early does not change the verdict (exit 3 on a failed check).
    let mut out = super::pipe::UnlessClosed::new(std::io::stdout().lock());
    if c.json {
        // sweep.json is the whole report (the kept points have lost their per-server parts).
        let path = dir.join("sweep.json");
        let mut file = std::fs::File::open(&path).with_context(|| format!("reading {}", path.display()))?;
        std::io::copy(&mut file, &mut out)?;
    } else if !c.quiet {
        out.write_all(text.as_bytes())?;
    }
    out.flush()?;
    Ok(write_s)
}

/// The sweep's runs in order (its units): run `j` is point `.0`'s replication `.1`.
fn runs_of(reps: &[u32]) -> Vec<(usize, u32)> {
    reps.iter().enumerate().flat_map(|(k, &n)| (0..n).map(move |r| (k, r))).collect()
}

/// Each point's replications without building any point: the scenario's, or the value of
/// the `replications` axis at the point (a value that is not a count is refused, naming
/// the point).
fn replications_of(l: &Loaded, sweep: &Sweep) -> anyhow::Result<Vec<u32>> {
    let axes = l.sweep_axes();
    let Some(at) = axes.iter().position(|a| a.trim() == "replications") else {
        return Ok(vec![l.scenario.replications.max(1); sweep.len()]);
    };
    (0..sweep.len())
        .map(|k| {
            let values = sweep.values(l, k);
            let v = values[at].trim();
            v.parse::<u32>().map(|r| r.max(1)).map_err(|_| {
                InputError(format!(
                    "{}: sweep point {}: replications {v}: not a count",
                    l.file,
                    label(&axes, &values)
                ))
                .into()
            })
        })
        .collect()
}

/// A point in words: `axis=value, ...`.
fn label(axes: &[String], values: &[String]) -> String {
    axes.iter().zip(values).map(|(a, v)| format!("{a}={v}")).collect::<Vec<_>>().join(", ")
}

/// A shard's identity in a split of `units` runs into `n` shards.
fn identity(l: &Loaded, units: usize, n: u32) -> Identity {
    Identity {
        format: shard::FORMAT,
        lvsim: shard::version(),
        kind: Kind::Sweep,
        scenario: l.name.clone(),
        fingerprint: shard::fingerprint(Kind::Sweep, l, &shard::extra(None)),
        units,
        shards: n,
    }
}

/// `--shard K/N`: runs this shard's units (building only their points, each checked
/// against the budget of the shard's runs), keeps going past a unit that fails, writes the
/// shard file and prints where; an error (exit 1) if a unit failed.
fn one_shard(
    c: &Common,
    l: &Loaded,
    sweep: &Sweep,
    spec: ShardSpec,
    dir: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let reps = replications_of(l, sweep)?;
    let jobs = runs_of(&reps);
    let mine: Vec<usize> = spec.units(jobs.len()).collect();
    let axes = l.sweep_axes();
    let threads = ordered::threads(c.jobs, mine.len());
    let bar = count_bar(c.bars(), mine.len() as u64, &format!("{} sweep shard {spec}", l.name));
    let (mut results, mut failures) = (Vec::new(), Vec::new());
    ordered::in_order_with(
        threads,
        mine.len(),
        ordered::window(threads),
        || (None, String::new()),
        |state: &mut (Built, String), i| {
            let (k, r) = jobs[mine[i]];
            checked_run(c, l, sweep, state, (k, r), mine.len() as u64)
        },
        |i, result| -> anyhow::Result<()> {
            bar.inc(1);
            let (unit, (k, r)) = (mine[i], jobs[mine[i]]);
            let label = format!("{}, replication {r}", label(&axes, &sweep.values(l, k)));
            match result {
                Ok((summary, input)) => results.push(UnitResult { unit, label, summary, input: Some(input) }),
                Err(e) => failures.push(UnitFailure { unit, label, error: format!("{e:#}") }),
            }
            Ok(())
        },
    )?;
    bar.finish_and_clear();
    let dir = shard::shards_dir(dir, &c.out_dir(&l.name, "-sweep"));
    let file = ShardFile {
        identity: identity(l, jobs.len(), spec.n),
        shard: spec.k,
        invocation: shard::invocation(c, None),
        host: shard::host(),
        wall_s: t0.elapsed().as_secs_f64(),
        first_text: None,
        results,
        failures,
    };
    shard::save(c, &dir, &file)
}

/// One unit of a shard: its point built (unless the worker's last, whose fingerprint the
/// state keeps beside it), checked against the budget of the shard's `runs`, and run; its
/// summary and its point's fingerprint.
fn checked_run(
    c: &Common,
    l: &Loaded,
    sweep: &Sweep,
    (last, input): &mut (Built, String),
    (k, r): (usize, u32),
    runs: u64,
) -> anyhow::Result<(Summary, String)> {
    if last.as_ref().is_none_or(|(at, _, _)| *at != k) {
        *last = None;
        let (values, p) = sweep.point(l, k).map_err(|e| InputError(e.to_string()))?;
        let what = format!("the shard's sweep (at point {})", values.join(", "));
        // A shard keeps each of its runs' whole summary until it writes its file.
        c.check_budget(&p, runs, &what, scenarios::budget::Keeps::Summaries)?;
        *input = shard::fingerprint(Kind::Sweep, &p, "");
        *last = Some((k, values, p));
    }
    run_one(l, sweep, last, k, r).map(|(_, s)| (s, input.clone()))
}

/// `--slurm`: every point checked as the local sweep checks them, then the work handed
/// to [`super::slurm::campaign`].
fn work(c: &Common, l: &Loaded, sweep: &Sweep, dir: Option<&std::path::Path>) -> anyhow::Result<Work> {
    let (reps, per_run) = check_points(c, l, sweep)?;
    let axes = l.sweep_axes();
    let jobs = runs_of(&reps);
    let labels = jobs
        .iter()
        .map(|&(k, r)| format!("{}, replication {r}", label(&axes, &sweep.values(l, k))))
        .collect();
    let report_dir = c.out_dir(&l.name, "-sweep");
    let shards_dir = shard::shards_dir(dir, &report_dir);
    Ok(Work {
        identity: identity(l, jobs.len(), 0),
        invocation: shard::invocation(c, None),
        per_run,
        labels,
        report_dir,
        shards_dir,
    })
}

/// Builds every point (on the workers, one at a time per worker, each dropped once
/// checked) and checks it against the budget as a run of a sweep of all the points' runs;
/// returns each point's number of replications (built twice when an axis sets them) and
/// the largest run's estimate (each figure the largest of any point's: what `--slurm`
/// sizes a task for). The first invalid point (in the sweep's order) is the error,
/// whatever `--jobs`.
pub fn check_points(
    c: &Common,
    l: &Loaded,
    sweep: &Sweep,
) -> anyhow::Result<(Vec<u32>, scenarios::budget::Estimate)> {
    let threads = ordered::threads(c.jobs, sweep.len());
    let point = |k: usize| sweep.point(l, k).map_err(|e| anyhow::Error::from(InputError(e.to_string())));
    // Each point's replications: the scenario's, unless an axis sets them.
    let mut reps = Vec::with_capacity(sweep.len());
    if l.sweep_axes().iter().any(|a| a.trim() == "replications") {
        ordered::in_order(
            threads,
            sweep.len(),
            ordered::window(threads),
            |k| point(k).map(|(_, p)| p.scenario.replications.max(1)),
            |_, r| r.map(|r| reps.push(r)),
        )?;
    } else {
        reps.resize(sweep.len(), l.scenario.replications.max(1));
    }
    let runs: u64 = reps.iter().map(|&r| u64::from(r)).sum();
    let mut largest: Option<scenarios::budget::Estimate> = None;
    ordered::in_order(
        threads,
        sweep.len(),
        ordered::window(threads),
        |k| {
            let (values, p) = point(k)?;
            let what = format!("the sweep (at point {})", values.join(", "));
            c.check_budget(&p, runs, &what, scenarios::budget::Keeps::Points)
        },
        |_, r| {
            let e = r?;
            largest = Some(match largest.take() {
                None => e,
                Some(l) => {
                    // The costlier point's estimate, with every figure the largest.
                    let (mut big, small) = if e.memory > l.memory { (e, l) } else { (l, e) };
                    big.events = big.events.max(small.events);
                    big.connections = big.connections.max(small.connections);
                    big.report = big.report.max(small.report);
                    big
                }
            });
            Ok::<(), anyhow::Error>(())
        },
    )?;
    Ok((reps, largest.expect("a sweep has a point")))
}

/// The last point a worker built: `(k, values, scenario)`.
type Built = Option<(usize, Vec<String>, Loaded)>;

/// One run of the sweep: point `k`, replication `r`; the point is built unless it is the
/// worker's last (its replications are consecutive runs).
fn run_one(
    l: &Loaded,
    sweep: &Sweep,
    last: &mut Built,
    k: usize,
    r: u32,
) -> anyhow::Result<(Vec<String>, Summary)> {
    if last.as_ref().is_none_or(|(at, _, _)| *at != k) {
        // The previous point goes first: a worker holds one point at a time.
        *last = None;
        let (values, p) = sweep.point(l, k).map_err(|e| InputError(e.to_string()))?;
        *last = Some((k, values, p));
    }
    let (_, values, p) = last.as_ref().expect("built above");
    Ok((values.clone(), summarize(p, p.replication(r))?))
}

/// Where a sweep's runs come from: run `j` (of [`runs_of`]) and the worker's last built
/// point; each returns the point's values and the run's summary.
type Source<'a> = dyn Fn(&mut Built, usize) -> anyhow::Result<(Vec<String>, Summary)> + Sync + 'a;

/// Takes every point's replications from `source` on the workers (running them, or the
/// shards' stored summaries for `merge`); writes `sweep.json` a point at a time; returns
/// the report as kept (summaries without per-server parts), the runs' summed wall time
/// and the time spent aggregating and writing. No `sweep.json` is left half-written.
fn run_points(
    c: &Common,
    l: &Loaded,
    reps: &[u32],
    source: &Source<'_>,
    dir: &std::path::Path,
) -> anyhow::Result<(SweepReport, f64, f64)> {
    let path = dir.join("sweep.json");
    let result = write_points(c, l, reps, source, &path);
    if result.is_err() {
        let _ = std::fs::remove_file(&path);
    }
    result
}

/// [`run_points`], into `path`.
fn write_points(
    c: &Common,
    l: &Loaded,
    reps: &[u32],
    source: &Source<'_>,
    path: &std::path::Path,
) -> anyhow::Result<(SweepReport, f64, f64)> {
    let jobs = runs_of(reps);
    let threads = ordered::threads(c.jobs, jobs.len());
    let bar = count_bar(c.bars(), jobs.len() as u64, &format!("{} sweep", l.name));
    let file = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let axes = l.sweep_axes();
    let mut json = SweepJson::new(std::io::BufWriter::new(file), &l.name, &axes)
        .with_context(|| format!("writing {}", path.display()))?;
    let mut report = SweepReport { scenario: l.name.clone(), axes, points: Vec::new() };
    let mut runs: Vec<Summary> = Vec::new();
    let (mut run_sum, mut aggregate) = (0.0, 0.0);
    ordered::in_order_with(
        threads,
        jobs.len(),
        ordered::window(threads),
        || None,
        source,
        |j, result| -> anyhow::Result<()> {
            let (values, summary) = result?;
            bar.inc(1);
            run_sum += summary.wall_s;
            runs.push(summary);
            let (k, r) = jobs[j];
            if r + 1 < reps[k] {
                return Ok(());
            }
            let t = Instant::now();
            let mut point = SweepPoint { values, result: reports::replications(std::mem::take(&mut runs)) };
            json.point(&point).with_context(|| format!("writing {}", path.display()))?;
            point.result.runs.iter_mut().for_each(slim);
            report.points.push(point);
            aggregate += t.elapsed().as_secs_f64();
            Ok(())
        },
    )?;
    json.finish().with_context(|| format!("writing {}", path.display()))?;
    bar.finish_and_clear();
    Ok((report, run_sum, aggregate))
}

/// A run's summary as a sweep keeps it once written: without its per-server parts (which
/// grow with the cluster), which the sweep's pages do not show.
fn slim(s: &mut Summary) {
    s.real_servers = Vec::new();
    if let Some(f) = &mut s.feedback {
        f.servers = Vec::new();
    }
}

/// What `lvsim sweep` prints (and keeps in `summary.txt`): a table of the points.
fn terminal_text(report: &SweepReport, reps: u32, dir: &std::path::Path) -> String {
    let mut out =
        format!("sweep of {}: {} points x {} replication(s)\n", report.scenario, report.points.len(), reps);
    let mut header: Vec<String> = report.axes.clone();
    header.extend(["mean ms", "p99 ms", "conn/s", "loss %"].map(String::from));
    let rows: Vec<Vec<String>> = report
        .points
        .iter()
        .map(|p| {
            let r = &p.result;
            let mut row = p.values.clone();
            row.push(est(r.latency_mean_ms));
            row.push(est(r.latency_p99_ms));
            row.push(est(r.throughput_cps));
            row.push(format!("{:.3}", r.loss_fraction.mean * 100.0));
            row
        })
        .collect();
    out.push_str(&super::table::table(&header, &rows));
    out.push_str(&format!("\nreport: {}\n", dir.join("report.html").display()));
    out
}

fn est(e: reports::Estimate) -> String {
    if e.n > 1 { format!("{:.2} ± {:.2}", e.mean, e.ci95) } else { format!("{:.2}", e.mean) }
}

/// `lvsim merge` of a sweep: the report `sweep` writes, from the shards' summaries,
/// through the code that writes the local sweep's.
pub fn merged(c: &Common, g: Gathered) -> anyhow::Result<()> {
    let l = c.load(&[])?;
    let sweep = axes(&l)?;
    let reps = replications_of(&l, &sweep)?;
    let units: usize = reps.iter().map(|&r| r as usize).sum();
    if units != g.identity.units || g.summaries.len() != units {
        return Err(InputError(format!(
            "{}: the sweep has {units} runs, its shards {} ({} stored)",
            l.file,
            g.identity.units,
            g.summaries.len()
        ))
        .into());
    }
    let jobs = runs_of(&reps);
    same_points(&l, &sweep, &jobs, &g)?;
    let out_dir = c.report_dir(&l.name, "-sweep")?;
    out_dir.clear()?;
    let dir = &out_dir.path;
    let stored: Vec<std::sync::Mutex<Option<Summary>>> =
        g.summaries.into_iter().map(|s| std::sync::Mutex::new(Some(s))).collect();
    let source = |_: &mut Built, j: usize| {
        let summary = stored[j].lock().map_err(|_| anyhow::anyhow!("a worker panicked"))?.take();
        Ok((sweep.values(&l, jobs[j].0), summary.expect("each run is taken once")))
    };
    let (report, _, _) = run_points(c, &l, &reps, &source, dir)?;
    finish(c, &l, dir, &report)?;
    Ok(())
}

/// Refuses to merge when a point, built again now, is not the one its shards ran (the
/// point's values are in the scenario's text, which the split's fingerprint covers, but a
/// file that only the point reads, such as a trace its axis names, is read when it runs).
/// Each point is built once.
fn same_points(l: &Loaded, sweep: &Sweep, jobs: &[(usize, u32)], g: &Gathered) -> anyhow::Result<()> {
    let mut checked: Option<(usize, String)> = None;
    for (j, input) in g.inputs.iter().enumerate() {
        let (Some(ran), k) = (input, jobs[j].0) else { continue };
        if checked.as_ref().is_none_or(|(at, _)| *at != k) {
            let (_, p) = sweep.point(l, k).map_err(|e| InputError(e.to_string()))?;
            checked = Some((k, shard::fingerprint(Kind::Sweep, &p, "")));
        }
        if checked.as_ref().is_some_and(|(_, now)| now != ran) {
            let file =
                g.files.get(j % g.files.len().max(1)).map_or(String::new(), |f| f.display().to_string());
            return Err(InputError(format!(
                "{}: sweep point {}: not the one the shards ran ({file}): the point, or a file it reads, \
                 changed since; run its shards again, or restore it",
                l.file,
                label(&l.sweep_axes(), &sweep.values(l, k))
            ))
            .into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sweep whose points' costs differ: more connections (memory) at one point, more
    /// requests a connection (events) at the other.
    const COSTS: &str = r#"Scenario(
    duration_s: 5.0,
    topology: "tutorial-nat",
    clients: [Clients(arrival: Poisson(rate: 100.0), demand_ms: Exponential(mean: 5.0))],
    sweep: [Axis(field: "clients", values: [
        [Clients(arrival: Poisson(rate: 2000.0), demand_ms: Exponential(mean: 1.0))],
        [Clients(
            arrival: Poisson(rate: 100.0),
            demand_ms: Exponential(mean: 1.0),
            transport: TCP(requests: Constant(200.0)),
        )],
    ])],
)
"#;

    #[test]
    fn the_work_of_slurm_is_sized_for_the_largest_figures_of_any_point() {
        let dir = std::env::temp_dir().join(format!("lvsim-sweep-costs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("costs.ron");
        std::fs::write(&file, COSTS).unwrap();
        let c = Common { file, jobs: 1, ..Common::default() };
        let l = c.load(&[]).unwrap();
        let sweep = l.sweep().unwrap();
        let (reps, per_run) = check_points(&c, &l, &sweep).unwrap();
        assert_eq!(reps, [1, 1]);
        let each: Vec<_> =
            (0..2).map(|k| scenarios::budget::estimate(&sweep.point(&l, k).unwrap().1)).collect();
        let max = |f: fn(&scenarios::budget::Estimate) -> f64| each.iter().map(f).fold(0.0, f64::max);
        assert_eq!(per_run.events, max(|e| e.events));
        assert_eq!(per_run.memory, max(|e| e.memory));
        assert_eq!(per_run.connections, max(|e| e.connections));
        // Neither point has both largest figures.
        assert!(each[0].memory > each[1].memory && each[0].events < each[1].events, "{each:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
