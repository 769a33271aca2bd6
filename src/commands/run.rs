//! `lvsim run` and `lvsim validate`.

use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context as _;
use scenarios::expect;
use sim_core::model::RunReport;

use super::{Common, ExpectationFailed, InputError, meta, simulate};

/// Runs a scenario (all its replications) and writes its report directory.
pub fn run(c: &Common) -> anyhow::Result<()> {
    let l = c.load(&[])?;
    c.check_budget(
        &l,
        u64::from(l.scenario.replications.max(1)),
        "the run",
        scenarios::budget::Keeps::Reports,
    )?;
    let out_dir = c.report_dir(&l.name, "")?;
    let dir = out_dir.path.clone();
    let n = l.scenario.replications.max(1) as usize;
    let ((first, wall0), runs) = replicate(c, &l, n)?;
    let first = &first;
    let m = meta(&l, wall0);
    let summary = runs[0].clone();
    out_dir.clear()?;
    reports::write_run(&dir, &m, first)
        .with_context(|| format!("writing the report to {}", dir.display()))?;
    let reps = (n > 1).then(|| reports::replications(runs));
    if let Some(reps) = &reps {
        reports::write_replications(&dir, reps).with_context(|| format!("writing to {}", dir.display()))?;
    }

    let value = serde_json::to_value(&summary)?;
    let mut outcomes = Vec::new();
    for e in &l.scenario.expect {
        outcomes.push(expect::check(e, &value).map_err(|m| InputError(format!("{}: expect: {m}", l.file)))?);
    }

    let text = terminal_text(&l, &m, first, reps.as_ref(), &outcomes, &dir);
    super::write_terminal(&dir, &text).with_context(|| format!("writing to {}", dir.display()))?;
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

/// Runs the `n` replications in parallel: the first seed's whole report (the run's pages)
/// and its wall time, and every seed's summary in seed order. The other reports are
/// dropped as their runs end, so a run of many replications holds one report, the
/// summaries and the runs at once; each configuration is built when its run starts.
fn replicate(
    c: &Common,
    l: &scenarios::Loaded,
    n: usize,
) -> anyhow::Result<((RunReport, f64), Vec<reports::Summary>)> {
    let horizon = l.cluster.duration.as_nanos().max(1);
    let bar = progress(c, &l.name, n, horizon);
    // Progress: the slowest replication's virtual time (they run side by side).
    let clocks: Vec<AtomicU64> = (0..n).map(|_| AtomicU64::new(0)).collect();
    let mut first: Option<(RunReport, f64)> = None;
    let mut runs: Vec<reports::Summary> = Vec::with_capacity(n);
    let threads = super::ordered::threads(c.jobs, n);
    super::ordered::in_order(
        threads,
        n,
        super::ordered::window(threads),
        |i| {
            let (report, wall) = simulate(l.replication(i as u32), |t| {
                clocks[i].store(t.as_nanos().min(horizon), Ordering::Relaxed);
                let slowest = clocks.iter().map(|c| c.load(Ordering::Relaxed)).min().unwrap_or(0);
                bar.set_position(slowest / 1_000_000);
                bar.set_message(format!("{:.1} s", slowest as f64 / 1e9));
            })?;
            let summary = reports::summary(&meta(l, wall), &report);
            Ok::<_, anyhow::Error>((summary, (i == 0).then_some((report, wall))))
        },
        |_, result| -> anyhow::Result<()> {
            let (summary, report) = result?;
            runs.push(summary);
            if report.is_some() {
                first = report;
            }
            Ok(())
        },
    )?;
    bar.finish_and_clear();

    Ok((first.expect("replication 0 ran"), runs))
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

/// What `lvsim run` prints (and keeps in `summary.txt`): the first seed's summary, the
/// replications' intervals, the checks, where the report is.
fn terminal_text(
    l: &scenarios::Loaded,
    m: &reports::RunMeta,
    first: &RunReport,
    reps: Option<&reports::Replications>,
    outcomes: &[expect::Outcome],
    dir: &std::path::Path,
) -> String {
    use std::fmt::Write as _;
    let mut out = reports::text_summary(m, first);
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

/// `lvsim merge` of a run's replications: the report `run` writes, from the shards.
pub fn merged(c: &Common, g: super::shard::Gathered) -> anyhow::Result<()> {
    let _ = (c, g);
    Err(InputError("merging a run's replications is not built yet".into()).into())
}
