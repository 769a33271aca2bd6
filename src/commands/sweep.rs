//! `lvsim sweep`: every point of the scenario's sweep, each replicated, in parallel.

use std::io::Write as _;

use anyhow::Context as _;
use rayon::prelude::*;
use reports::{SweepPoint, SweepReport};

use super::{Common, InputError, count_bar, summarize};

/// Runs the sweep and writes its report directory.
pub fn sweep(c: &Common) -> anyhow::Result<()> {
    let l = c.load(&[])?;
    let axes = l.sweep_axes();
    if axes.is_empty() {
        return Err(InputError(format!(
            "{}: the scenario has no `sweep` axes; add e.g. `sweep: [Axis(field: \"clients[0].arrival.rate\", values: [100.0, 200.0])]`",
            l.file
        ))
        .into());
    }
    let points = l.sweep_points_within(Some(&c.budget())).map_err(|e| InputError(e.to_string()))?;
    check_budget(c, &points)?;
    let out_dir = c.report_dir(&l.name, "-sweep")?;
    let jobs: Vec<(usize, _)> = points
        .iter()
        .enumerate()
        .flat_map(|(i, (_, p))| p.replications().into_iter().map(move |cfg| (i, cfg)))
        .collect();
    let bar = count_bar(c.bars(), jobs.len() as u64, &format!("{} sweep", l.name));
    let summaries = c.pool()?.install(|| {
        jobs.into_par_iter()
            .map(|(i, cfg)| {
                let s = summarize(&points[i].1, cfg);
                bar.inc(1);
                s.map(|s| (i, s))
            })
            .collect::<anyhow::Result<Vec<_>>>()
    })?;
    bar.finish_and_clear();
    let mut per_point: Vec<Vec<reports::Summary>> = vec![Vec::new(); points.len()];
    for (i, s) in summaries {
        per_point[i].push(s);
    }
    let report = SweepReport {
        scenario: l.name.clone(),
        axes: axes.clone(),
        points: points
            .iter()
            .zip(per_point)
            .map(|((values, _), runs)| SweepPoint {
                values: values.clone(),
                result: reports::replications(runs),
            })
            .collect(),
    };
    out_dir.clear()?;
    let dir = &out_dir.path;
    reports::write_sweep(dir, &report)
        .with_context(|| format!("writing the sweep report to {}", dir.display()))?;
    let text = terminal_text(&report, l.scenario.replications.max(1), dir);
    super::write_terminal(dir, &text).with_context(|| format!("writing to {}", dir.display()))?;

    // A reader that leaves early does not change the verdict (exit 3 on a failed check).
    let mut out = super::pipe::UnlessClosed::new(std::io::stdout().lock());
    if c.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else if !c.quiet {
        out.write_all(text.as_bytes())?;
    }
    out.flush()?;
    Ok(())
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
    out.push_str(&table(&header, &rows));
    out.push_str(&format!("\nreport: {}\n", dir.join("report.html").display()));
    out
}

/// Checks every point of a sweep against the budget, each as if every run of the sweep
/// were like it (an upper bound: the largest point decides).
pub fn check_budget(c: &Common, points: &[(Vec<String>, scenarios::Loaded)]) -> anyhow::Result<()> {
    let runs: u64 = points.iter().map(|(_, p)| u64::from(p.scenario.replications.max(1))).sum();
    for (values, p) in points {
        c.check_budget(
            p,
            runs,
            &format!("the sweep (at point {})", values.join(", ")),
            scenarios::budget::Keeps::Summaries,
        )?;
    }
    Ok(())
}

fn est(e: reports::Estimate) -> String {
    if e.n > 1 { format!("{:.2} ± {:.2}", e.mean, e.ci95) } else { format!("{:.2}", e.mean) }
}

/// A plain text table, columns padded.
pub fn table(header: &[String], rows: &[Vec<String>]) -> String {
    let mut w: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let s: Vec<String> = cells.iter().enumerate().map(|(i, c)| format!("{c:<0$}", w[i])).collect();
        format!("{}\n", s.join("  ").trim_end())
    };
    let mut s = line(header);
    for r in rows {
        s.push_str(&line(r));
    }
    s
}
