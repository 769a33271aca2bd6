//! `lvsim run` and `lvsim validate`, and a run's replications as shards (`--shard K/N`,
//! `--slurm`, `lvsim merge`): unit `j` is replication `j` (seed `seed + j`); the shard
//! holding unit 0 also keeps replication 0's pages and terminal text, which the merge
//! copies, so that the merged report is the local one.

use std::io::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context as _;
use scenarios::expect;
use sim_core::model::RunReport;

use super::shard::{self, Kind, ShardSpec};
use super::{Common, ExpectationFailed, InputError, Split, meta, simulate};

/// Runs a scenario (all its replications, or a shard of them, or a Slurm campaign of
/// them) and writes its report directory.
pub fn run(c: &Common) -> anyhow::Result<()> {
    let l = c.load(&[])?;
    match &c.split {
        Split::Local => {}
        Split::Shard { spec, dir } => return run_shard(c, &l, *spec, dir.as_deref()),
        Split::Slurm { opts, dir } => return super::slurm::campaign(c, opts, &work(c, &l, dir.as_deref())?),
    }
    c.check_budget(
        &l,
        u64::from(l.scenario.replications.max(1)),
        "the run",
        scenarios::budget::Keeps::Reports,
    )?;
    let out_dir = c.report_dir(&l.name, "")?;
    let dir = out_dir.path.clone();
    let n = l.scenario.replications.max(1) as usize;
    let units: Vec<usize> = (0..n).collect();
    let mut first: Option<(RunReport, f64)> = None;
    let mut runs: Vec<reports::Summary> = Vec::with_capacity(n);
    replicate(c, &l, &units, |_, result| {
        let (summary, report) = result?;
        runs.push(summary);
        first = first.take().or(report);
        Ok(())
    })?;
    let (first, wall0) = first.expect("replication 0 ran");
    let m = meta(&l, wall0);
    out_dir.clear()?;
    reports::write_run(&dir, &m, &first)
        .with_context(|| format!("writing the report to {}", dir.display()))?;
    finish(c, &l, reports::text_summary(&m, &first), runs, &dir)
}

/// What `run` and the merge of its shards do once the first seed's pages are in `dir`:
/// the replications' files, the checks (on the first seed's summary), `summary.txt`, the
/// terminal; exit 3 on a failed check.
fn finish(
    c: &Common,
    l: &scenarios::Loaded,
    first_text: String,
    runs: Vec<reports::Summary>,
    dir: &Path,
) -> anyhow::Result<()> {
    let summary = runs[0].clone();
    let reps = (runs.len() > 1).then(|| reports::replications(runs));
    if let Some(reps) = &reps {
        reports::write_replications(dir, reps).with_context(|| format!("writing to {}", dir.display()))?;
    }

    let value = serde_json::to_value(&summary)?;
    let mut outcomes = Vec::new();
    for e in &l.scenario.expect {
        outcomes.push(expect::check(e, &value).map_err(|m| InputError(format!("{}: expect: {m}", l.file)))?);
    }

    let text = terminal_text(l, first_text, reps.as_ref(), &outcomes, dir);
    super::write_terminal(dir, &text).with_context(|| format!("writing to {}", dir.display()))?;
    // A reader that leaves early does not change the verdict (exit 3 on a failed check).
    let mut out = super::pipe::UnlessClosed::new(std::io::stdout().lock());
    if c.json {
        serde_json::to_writer_pretty(&mut out, &summary)?;
        writeln!(out)?;
    } else if !c.quiet {
        out.write_all(text.as_bytes())?;
    }
    out.flush()?;
    let failed: Vec<_> = outcomes.iter().filter(|o| !o.ok).map(|o| o.text.clone()).collect();
    if !failed.is_empty() {
        return Err(ExpectationFailed(format!(
            "{} check(s) of {} failed: {}",
            failed.len(),
            l.file,
            failed.join("; ")
        ))
        .into());
    }
    Ok(())
}

/// One replication's outcome: its summary, and for replication 0 the whole report (the
/// run's pages) and its wall time [s].
type Replication = anyhow::Result<(reports::Summary, Option<(RunReport, f64)>)>;

/// Runs the replications `units` (numbers, seed `seed + j`) in parallel and hands each
/// outcome to `take` in the order of `units`. Only replication 0 keeps its whole report;
/// the others are dropped as their runs end, so a run of many replications holds one
/// report, the summaries and the runs at once; each configuration is built when its run
/// starts. `take`'s first error stops the loop.
fn replicate(
    c: &Common,
    l: &scenarios::Loaded,
    units: &[usize],
    take: impl FnMut(usize, Replication) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let n = units.len();
    let horizon = l.cluster.duration.as_nanos().max(1);
    let bar = progress(c, &l.name, n, horizon);
    // Progress: the slowest replication's virtual time (they run side by side).
    let clocks: Vec<AtomicU64> = (0..n).map(|_| AtomicU64::new(0)).collect();
    let threads = super::ordered::threads(c.jobs, n);
    super::ordered::in_order(
        threads,
        n,
        super::ordered::window(threads),
        |i| -> Replication {
            let j = units[i];
            let (report, wall) = simulate(l.replication(j as u32), |t| {
                clocks[i].store(t.as_nanos().min(horizon), Ordering::Relaxed);
                let slowest = clocks.iter().map(|c| c.load(Ordering::Relaxed)).min().unwrap_or(0);
                bar.set_position(slowest / 1_000_000);
                bar.set_message(format!("{:.1} s", slowest as f64 / 1e9));
            })?;
            let summary = reports::summary(&meta(l, wall), &report);
            Ok((summary, (j == 0).then_some((report, wall))))
        },
        take,
    )?;
    bar.finish_and_clear();
    Ok(())
}

/// The run's progress bar: the slowest replication's virtual time, or a hidden bar.
fn progress(c: &Common, name: &str, n: usize, horizon: u64) -> indicatif::ProgressBar {
    if !c.bars() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(horizon / 1_000_000);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{prefix} [{bar:40}] {msg} simulated, {elapsed} elapsed, ETA {eta}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_prefix(format!("{name} ({n} run{})", if n == 1 { "" } else { "s" }));
    bar
}

/// What `lvsim run` prints (and keeps in `summary.txt`): the first seed's summary
/// (`first_text`, [`reports::text_summary`]), the replications' intervals, the checks,
/// where the report is.
fn terminal_text(
    l: &scenarios::Loaded,
    first_text: String,
    reps: Option<&reports::Replications>,
    outcomes: &[expect::Outcome],
    dir: &Path,
) -> String {
    use std::fmt::Write as _;
    let mut out = first_text;
    if let Some(r) = reps {
        let n = r.runs.len();
        let _ = writeln!(
            out,
            "\n{} replications (seeds {}..={}), 95% confidence intervals:",
            n,
            l.cluster.seed,
            l.cluster.seed + n as u64 - 1
        );
        let _ = writeln!(
            out,
            "  mean response  {:.3} ± {:.3} ms",
            r.latency_mean_ms.mean, r.latency_mean_ms.ci95
        );
        let _ =
            writeln!(out, "  p99 response   {:.3} ± {:.3} ms", r.latency_p99_ms.mean, r.latency_p99_ms.ci95);
        let _ = writeln!(
            out,
            "  throughput     {:.2} ± {:.2} conn/s",
            r.throughput_cps.mean, r.throughput_cps.ci95
        );
        let (loss, ci) = (r.loss_fraction.mean * 100.0, r.loss_fraction.ci95 * 100.0);
        let _ = writeln!(out, "  loss           {loss:.3} ± {ci:.3} %");
    }
    if !outcomes.is_empty() {
        let _ = writeln!(out, "\nchecks (seed {}):", l.cluster.seed);
        for o in outcomes {
            let _ = writeln!(out, "  {} {}", if o.ok { "ok  " } else { "FAIL" }, o.text);
        }
    }
    let _ = writeln!(out, "\nreport: {}", dir.join("report.html").display());
    if !l.scenario.sweep.is_empty() {
        let _ = writeln!(out, "(this ran the scenario as written; `lvsim sweep {}` runs its sweep)", l.file);
    }
    if l.scenario.plan.is_some() {
        let _ = writeln!(out, "(`lvsim plan {}` runs its capacity plan)", l.file);
    }
    out
}

/// Checks scenario files without running them; prints one line per file.
pub fn validate(c: &Common, files: &[std::path::PathBuf]) -> anyhow::Result<()> {
    let mut bad = Vec::new();
    let stdout = std::io::stdout();
    // Every file is checked and the exit status is the verdict, reader or not.
    let mut out = super::pipe::UnlessClosed::new(stdout.lock());
    let mut json = Vec::new();
    for f in files {
        let one = Common { file: f.clone(), ..c.clone() };
        match one.load(&[]).and_then(|l| {
            let reps = u64::from(l.scenario.replications.max(1));
            let est = one.check_budget(&l, reps, "the run", scenarios::budget::Keeps::Reports)?;
            if l.scenario.sweep.is_empty() {
                return Ok((l, 1, est));
            }
            // Every point built and checked as `lvsim sweep` does, none held.
            let sweep = l.sweep().map_err(|e| InputError(e.to_string()))?;
            super::sweep::check_points(&one, &l, &sweep)?;
            Ok((l, sweep.len(), est))
        }) {
            Ok((l, points, est)) => {
                let k = &l.cluster;
                let services: usize = k.directors.iter().map(|d| d.services.len()).sum();
                let line = format!(
                    "{}: ok: {:?}, {} director(s){}, {} service(s), {} real server(s), {} client population(s), {} event(s); {} s{}{}; a run: about {:.1e} events, {}",
                    f.display(),
                    l.name,
                    k.directors.len(),
                    k.ha.as_ref()
                        .map_or(String::new(), |h| format!(" ({} in a fail-over group)", h.members.len())),
                    services,
                    k.servers.len(),
                    k.populations.len(),
                    l.scenario.events.len(),
                    k.duration.as_nanos() as f64 / 1e9,
                    if points > 1 { format!(", sweep of {points} points") } else { String::new() },
                    if l.scenario.replications > 1 {
                        format!(", {} replications", l.scenario.replications)
                    } else {
                        String::new()
                    },
                    est.events,
                    scenarios::budget::show_bytes(est.memory),
                );
                json.push(serde_json::json!({
                    "file": f.display().to_string(),
                    "ok": true,
                    "name": l.name,
                    "estimate": {"connections": est.connections, "events": est.events, "memory_bytes": est.memory},
                    "warnings": l.warnings,
                }));
                if !c.quiet && !c.json {
                    writeln!(out, "{line}")?;
                    for w in &l.warnings {
                        writeln!(out, "  warning: {w}")?;
                    }
                }
            }
            Err(e) => {
                json.push(serde_json::json!({"file": f.display().to_string(), "ok": false, "error": format!("{e:#}")}));
                if !c.json {
                    // Not eprintln!: it panics if standard error is a closed pipe.
                    let _ = writeln!(std::io::stderr(), "{e:#}");
                }
                bad.push(f.display().to_string());
            }
        }
    }
    if c.json {
        serde_json::to_writer_pretty(&mut out, &json)?;
        writeln!(out)?;
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(InputError(format!("{} of {} scenario(s) invalid: {}", bad.len(), files.len(), bad.join(", ")))
            .into())
    }
}

/// A replication in words, for shard files and messages.
fn label(l: &scenarios::Loaded, j: usize) -> String {
    format!("replication {j} (seed {})", l.cluster.seed.wrapping_add(j as u64))
}

/// The identity of a run's split into `shards`.
fn identity(l: &scenarios::Loaded, shards: u32) -> shard::Identity {
    shard::Identity {
        format: shard::FORMAT,
        lvsim: shard::version(),
        kind: Kind::Run,
        scenario: l.name.clone(),
        fingerprint: shard::fingerprint(Kind::Run, l, ""),
        units: l.scenario.replications.max(1) as usize,
        shards,
    }
}

/// `run --slurm`: the run's replications as a [`shard::Work`] (one run must fit the
/// budget here; each shard checks its own share where it runs).
fn work(c: &Common, l: &scenarios::Loaded, dir: Option<&Path>) -> anyhow::Result<shard::Work> {
    let per_run = c.check_budget(l, 1, "a replication of the run", scenarios::budget::Keeps::Reports)?;
    let report_dir = c.out_dir(&l.name, "");
    let n = l.scenario.replications.max(1) as usize;
    Ok(shard::Work {
        identity: identity(l, 0),
        invocation: shard::invocation(c, None),
        per_run,
        labels: (0..n).map(|j| label(l, j)).collect(),
        shards_dir: shard::shards_dir(dir, &report_dir),
        report_dir,
    })
}

/// `run --shard K/N`: this shard's replications (failures recorded, the others run on),
/// replication 0's pages and terminal text if it is this shard's, the shard file.
fn run_shard(c: &Common, l: &scenarios::Loaded, spec: ShardSpec, dir: Option<&Path>) -> anyhow::Result<()> {
    let n = l.scenario.replications.max(1) as usize;
    let units: Vec<usize> = spec.units(n).collect();
    let keeps =
        if spec.owns(0) { scenarios::budget::Keeps::Reports } else { scenarios::budget::Keeps::Summaries };
    c.check_budget(l, units.len().max(1) as u64, &format!("shard {spec} of the run"), keeps)?;
    let sdir = shard::shards_dir(dir, &c.out_dir(&l.name, ""));
    let t0 = std::time::Instant::now();
    let (mut results, mut failures, mut first_text) = (Vec::new(), Vec::new(), None);
    replicate(c, l, &units, |i, outcome| {
        let unit = units[i];
        match outcome {
            Ok((summary, first)) => {
                if let Some((report, wall)) = first {
                    let pages = shard::pages_dir(&sdir, spec);
                    let m = meta(l, wall);
                    super::dirs::OutDir::check(pages.clone())?.clear()?;
                    reports::write_run(&pages, &m, &report)
                        .with_context(|| format!("writing replication 0's pages to {}", pages.display()))?;
                    first_text = Some(reports::text_summary(&m, &report));
                }
                results.push(shard::UnitResult { unit, label: label(l, unit), summary, input: None });
            }
            Err(e) => {
                failures.push(shard::UnitFailure { unit, label: label(l, unit), error: format!("{e:#}") })
            }
        }
        Ok(())
    })?;
    let file = shard::ShardFile {
        identity: identity(l, spec.n),
        shard: spec.k,
        invocation: shard::invocation(c, None),
        host: shard::host(),
        wall_s: t0.elapsed().as_secs_f64(),
        results,
        failures,
        first_text,
    };
    shard::save(c, &sdir, &file)
}

/// `lvsim merge` of a run's replications: the report `run` writes, from the shards:
/// replication 0's pages copied from its shard, then what `run` writes after them.
pub fn merged(c: &Common, g: shard::Gathered) -> anyhow::Result<()> {
    let l = c.load(&[])?;
    let n = l.scenario.replications.max(1) as usize;
    if g.summaries.len() != n {
        return Err(InputError(format!(
            "the shards hold {} replication(s) of {}, which has {n}",
            g.summaries.len(),
            l.name
        ))
        .into());
    }
    let Some((pages, first_text)) = g.first else {
        return Err(InputError(format!(
            "no shard of {} holds replication 0's pages (shard-K-of-N.report/ beside the shard of unit 0)",
            l.name
        ))
        .into());
    };
    // The pages are replication 0's of these shards, not a stale or foreign report's.
    let page = pages.join("summary.json");
    if super::dirs::read_bounded(&page)? != reports::summary_json(&g.summaries[0]) {
        return Err(InputError(format!(
            "{}: not the summary of replication 0 in {}: the pages are another run's",
            page.display(),
            g.files.first().map_or_else(String::new, |f| f.display().to_string())
        ))
        .into());
    }
    let out_dir = c.report_dir(&l.name, "")?;
    let dir = out_dir.path.clone();
    let same = |a: &Path, b: &Path| {
        std::fs::canonicalize(a).ok().is_some_and(|a| Some(a) == std::fs::canonicalize(b).ok())
    };
    if same(&dir, &pages) {
        return Err(InputError(format!(
            "{}: the report would replace the pages it is merged from; choose another --out",
            dir.display()
        ))
        .into());
    }
    out_dir.clear()?;
    copy_pages(&pages, &dir)?;
    finish(c, &l, first_text, g.summaries, &dir)
}

/// The most files a run's pages may have (a run writes about a dozen).
const MAX_PAGES: usize = 256;

/// Copies replication 0's pages into the report directory `to`: plain files of a report's
/// kinds (`.json`, `.csv`, `.html`, `.txt`), each at most [`super::dirs::MAX_REPORT_FILE`]
/// bytes, `summary.json` among them; anything else is refused, naming it.
fn copy_pages(from: &Path, to: &Path) -> anyhow::Result<()> {
    let refuse = |p: &Path, why: String| anyhow::Error::from(InputError(format!("{}: {why}", p.display())));
    let entries = std::fs::read_dir(from).map_err(|e| refuse(from, e.to_string()))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| refuse(from, e.to_string()))?;
        let path = entry.path();
        let meta = std::fs::symlink_metadata(&path).map_err(|e| refuse(&path, e.to_string()))?;
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if !meta.is_file() || !matches!(ext, "json" | "csv" | "html" | "txt") {
            return Err(refuse(&path, "not a report page (a plain .json, .csv, .html or .txt file)".into()));
        }
        if meta.len() > super::dirs::MAX_REPORT_FILE {
            return Err(refuse(&path, format!("{} bytes, more than a report file may have", meta.len())));
        }
        files.push(path);
        if files.len() > MAX_PAGES {
            return Err(refuse(from, format!("more than {MAX_PAGES} files: not a run's pages")));
        }
    }
    if !files.iter().any(|p| p.file_name().is_some_and(|n| n == "summary.json")) {
        return Err(refuse(from, "no summary.json: not replication 0's pages".into()));
    }
    files.sort();
    std::fs::create_dir_all(to).map_err(|e| anyhow::anyhow!("creating {}: {e}", to.display()))?;
    for f in files {
        let dest = to.join(f.file_name().expect("a directory entry has a name"));
        std::fs::copy(&f, &dest)
            .map_err(|e| anyhow::anyhow!("copying {} to {}: {e}", f.display(), dest.display()))?;
    }
    Ok(())
}
