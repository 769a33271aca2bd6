//! `lvsim compare A B`: two runs or two sweeps side by side.
//!
//! Reads A's and B's report files as [`dirs::read_json`] reads them (plain files, bounded,
//! errors naming file:line:column), compares them with `reports::compare_runs` or
//! `reports::compare_sweeps` (Welch's test), prints a table and writes a report directory.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use reports::{CompareReport, CompareSide, Replications, Summary, SweepReport};

use super::InputError;
use super::dirs::{self, Kind, OutDir};

/// `lvsim compare`'s options.
#[derive(Clone, Debug, Default)]
pub struct CompareOpts {
    /// The first report directory.
    pub a: PathBuf,
    /// The second report directory.
    pub b: PathBuf,
    /// `--out DIR`.
    pub out: Option<PathBuf>,
    /// `--json`.
    pub json: bool,
    /// `--quiet`.
    pub quiet: bool,
}

/// Compares two report directories of the same kind (two runs, or two sweeps), prints the
/// table (or compare.json with `--json`) and writes DIR/{compare.json, compare.csv,
/// report.html, summary.txt}.
pub fn compare(o: &CompareOpts) -> anyhow::Result<()> {
    let (ka, kb) = (report_kind(&o.a)?, report_kind(&o.b)?);
    if ka != kb {
        return Err(InputError(format!(
            "{} is a {} report and {} a {} report: compare two runs or two sweeps",
            o.a.display(),
            ka.word(),
            o.b.display(),
            kb.word()
        ))
        .into());
    }
    let report = if ka == Kind::Run {
        reports::compare_runs(load_run(&o.a)?, load_run(&o.b)?)
    } else {
        reports::compare_sweeps(load_sweep(&o.a)?, load_sweep(&o.b)?)
    };
    let dir = o.out.clone().unwrap_or_else(|| default_dir(&o.a, &o.b));
    for input in [&o.a, &o.b] {
        if same_dir(&dir, input) {
            return Err(InputError(format!(
                "--out {}: that is a report being compared; choose another directory",
                dir.display()
            ))
            .into());
        }
    }
    let out = OutDir::check(dir)?;
    out.clear()?;
    reports::write_compare(&out.path, &report)
        .with_context(|| format!("writing the comparison to {}", out.path.display()))?;
    let text = terminal_text(&report, &out.path);
    super::write_terminal(&out.path, &text).with_context(|| format!("writing to {}", out.path.display()))?;
    let stdout = std::io::stdout();
    let mut w = stdout.lock();
    if o.json {
        serde_json::to_writer_pretty(&mut w, &report)?;
        writeln!(w)?;
    } else if !o.quiet {
        w.write_all(text.as_bytes())?;
    }
    w.flush()?;
    Ok(())
}

/// The kind of report in `dir`: a run or a sweep; anything else is refused (exit 2),
/// naming the path.
fn report_kind(dir: &Path) -> anyhow::Result<Kind> {
    let refuse = |why: String| anyhow::Error::from(InputError(format!("{}: {why}", dir.display())));
    if !dir.is_dir() {
        return Err(refuse(
            "not a directory (expected the report directory of lvsim run or lvsim sweep)".into(),
        ));
    }
    match dirs::kind_of(dir) {
        None => Err(refuse(format!("not an lvsim report directory: it has none of {}", dirs::markers()))),
        Some(k @ (Kind::Run | Kind::Sweep)) => Ok(k),
        Some(k) => Err(refuse(format!(
            "a {} report ({}); compare takes the reports of lvsim run or lvsim sweep",
            k.word(),
            k.json()
        ))),
    }
}

/// A run's first summary and, when it had several seeds, its replications.json (else its
/// one summary as a replication of one).
fn load_run(dir: &Path) -> anyhow::Result<(CompareSide, Replications)> {
    let summary: Summary = dirs::read_json(&dir.join("summary.json"), "a run's summary.json")?;
    let reps_path = dir.join("replications.json");
    // The estimates are recomputed from the runs the file holds, not taken from it: one
    // definition of an interval, and a file whose estimates disagree with its runs cannot
    // make a difference look significant.
    let mut runs = Vec::new();
    if std::fs::symlink_metadata(&reps_path).is_ok() {
        let r: Replications = dirs::read_json(&reps_path, "a run's replications.json")?;
        runs = r.runs;
    }
    if runs.is_empty() {
        runs.push(summary.clone());
    }
    let reps = reports::replications(runs);
    let side = CompareSide {
        dir: dir.display().to_string(),
        scenario: summary.scenario.clone(),
        seeds: reps.runs.iter().map(|s| s.seed).collect(),
        overrides: summary.overrides.clone(),
        replications: u32::try_from(reps.runs.len()).unwrap_or(u32::MAX),
    };
    Ok((side, reps))
}

fn load_sweep(dir: &Path) -> anyhow::Result<(CompareSide, SweepReport)> {
    let path = dir.join("sweep.json");
    let mut sweep: SweepReport = dirs::read_json(&path, "a sweep's sweep.json")?;
    for (i, p) in sweep.points.iter_mut().enumerate() {
        if p.values.len() != sweep.axes.len() {
            return Err(InputError(format!(
                "{}: points[{i}] has {} values for {} axes",
                path.display(),
                p.values.len(),
                sweep.axes.len()
            ))
            .into());
        }
        // As for a run: the estimates from the point's runs, not from the file.
        if !p.result.runs.is_empty() {
            p.result = reports::replications(std::mem::take(&mut p.result.runs));
        }
    }
    let reps = sweep.points.iter().map(|p| p.result.runs.len()).max().unwrap_or(0);
    let side = CompareSide {
        dir: dir.display().to_string(),
        scenario: sweep.scenario.clone(),
        replications: u32::try_from(reps).unwrap_or(u32::MAX),
        ..CompareSide::default()
    };
    Ok((side, sweep))
}

/// `lvsim-out/compare-A-vs-B/`, A and B the directories' last components (sanitised,
/// at most 60 bytes each).
fn default_dir(a: &Path, b: &Path) -> PathBuf {
    let name = |p: &Path| {
        let full = std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        let last =
            full.file_name().map_or_else(|| "report".to_string(), |n| n.to_string_lossy().into_owned());
        let clean: String = last
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || "._+=,@-".contains(c) { c } else { '_' })
            .take(60)
            .collect();
        clean
    };
    Path::new("lvsim-out").join(format!("compare-{}-vs-{}", name(a), name(b)))
}

/// Whether two paths name the same existing directory.
fn same_dir(x: &Path, y: &Path) -> bool {
    match (std::fs::canonicalize(x), std::fs::canonicalize(y)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// What `lvsim compare` prints (and keeps in summary.txt).
fn terminal_text(c: &CompareReport, dir: &Path) -> String {
    let mut out = String::new();
    let side = |s: &CompareSide| {
        let mut t = format!("{} ({}", s.dir, s.scenario);
        match s.seeds.as_slice() {
            [] => {}
            [one] => {
                let _ = write!(t, ", seed {one}");
            }
            [first, .., last] => {
                let _ = write!(t, ", seeds {first}..={last}");
            }
        }
        let _ = write!(t, ", {} replication(s)", s.replications);
        if !s.overrides.is_empty() {
            let _ = write!(t, ", {}", s.overrides.join(" "));
        }
        t + ")"
    };
    let _ = writeln!(out, "compare {}s:\n  A = {}\n  B = {}", c.kind, side(&c.a), side(&c.b));
    for n in &c.notes {
        let _ = writeln!(out, "note: {n}");
    }
    let (header, rows) = reports::compare_table(c);
    out.push('\n');
    out.push_str(&super::table::table(&header, &rows));
    for (name, points) in [("A", &c.only_in_a), ("B", &c.only_in_b)] {
        if !points.is_empty() {
            let _ = writeln!(out, "\npoints only in {name}:");
            for p in points {
                let _ = writeln!(out, "  {}", reports::point_label(&c.axes, p));
            }
        }
    }
    let significant = c.rows.iter().filter(|r| r.difference.significant).count();
    let _ = writeln!(
        out,
        "\n{significant} of {} differences significant (Welch's t test at 95%; intervals over the \
         replications, or one run's batch means for its mean response time)",
        c.rows.len()
    );
    let _ = writeln!(out, "report: {}", dir.join("report.html").display());
    out
}
