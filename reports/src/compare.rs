//! Two runs or two sweeps side by side: `compare.json`, `compare.csv`, `report.html`.
//!
//! Every difference is tested with [`crate::significance::welch`], the one definition of
//! "significant" lvsim has. A run with several seeds gives Student t intervals over them;
//! one run alone gives an interval only for its mean response time (its batch means,
//! summary.json's `latency_ms.mean_ci95`); any other metric of a single run "cannot tell".

use std::io;
use std::path::Path;

use sim_core::stats::LATENCY_BATCHES;

use crate::chart::{Chart, Line};
use crate::csv::{Csv, num};
use crate::html::{Page, nav};
use crate::replications::OPTIONAL_METRICS;
use crate::replications::estimate as estimate_of;
use crate::significance::welch;
use crate::sweep::display_value;
use crate::text::escape;
use crate::{
    CompareReport, CompareRow, CompareSide, Estimate, GroupSummary, Replications, Summary, SweepReport,
    Written,
};

/// A metric compared: its name (summary.json's path where it has one), unit, decimals
/// shown, and its estimate (`None` when the result has none: feedback or HA of a run
/// without them).
struct Metric {
    name: &'static str,
    unit: &'static str,
    estimate: fn(&Replications) -> Option<Estimate>,
}

/// The headline metrics, then the feedback and HA ones (only when a side has them).
fn metrics() -> Vec<Metric> {
    let mut m = vec![
        Metric { name: "latency_ms.mean", unit: "ms", estimate: |r| Some(r.latency_mean_ms) },
        Metric { name: "latency_ms.p99", unit: "ms", estimate: |r| Some(r.latency_p99_ms) },
        Metric { name: "throughput_cps", unit: "conn/s", estimate: |r| Some(r.throughput_cps) },
        Metric { name: "loss_fraction", unit: "fraction", estimate: |r| Some(r.loss_fraction) },
        Metric { name: "utilization_spread", unit: "fraction", estimate: |r| Some(r.utilization_spread) },
    ];
    for o in OPTIONAL_METRICS {
        let unit = match o.name {
            "feedback_weight_travel_per_min" => "1/min",
            "lost_on_failover" => "conns",
            _ => "s",
        };
        m.push(Metric { name: o.name, unit, estimate: o.estimate });
    }
    m
}

/// How a unit is shown to people: a factor, the unit shown and decimals. Fractions
/// (loss, utilisation spread) are shown in %, as everywhere a person reads them; the JSON
/// and CSV files keep the fraction.
fn shown(unit: &str) -> (f64, &str, usize) {
    match unit {
        "fraction" => (100.0, "%", 3),
        "conn/s" | "1/min" => (1.0, unit, 2),
        "conns" => (1.0, unit, 1),
        _ => (1.0, unit, 3),
    }
}

/// The result of one run as compared: one run's mean response time gets its batch-means
/// interval (20 batches of the measured window), which Welch's test can use.
fn with_batch_means(mut r: Replications) -> Replications {
    if let [only] = r.runs.as_slice()
        && only.latency_ms.mean_ci95 > 0.0
    {
        r.latency_mean_ms = Estimate {
            mean: only.latency_ms.mean,
            ci95: only.latency_ms.mean_ci95,
            n: LATENCY_BATCHES as u32,
        };
    }
    r
}

/// Where an estimate's interval comes from.
fn basis(r: &Replications, e: &Estimate) -> &'static str {
    match (r.runs.len(), e.n) {
        (1, n) if n > 1 => "batch means",
        (_, n) if n > 1 => "replications",
        _ => "one run",
    }
}

/// One compared metric: Welch's verdict on `B − A`, and what the intervals come from.
fn row(
    point: &[String],
    metric: String,
    unit: &str,
    (a, ea): (&Replications, Estimate),
    (b, eb): (&Replications, Estimate),
) -> CompareRow {
    let d = welch(&ea, &eb);
    let verdict = match (d.testable, d.significant, ea.n < 2, eb.n < 2) {
        (true, true, ..) => "significant".to_string(),
        (true, false, ..) => "not significant".to_string(),
        (false, _, true, true) => "cannot tell (one run each: use --replications)".to_string(),
        (false, _, true, false) => "cannot tell (A is one run: use --replications)".to_string(),
        (false, ..) => "cannot tell (B is one run: use --replications)".to_string(),
    };
    let (ba, bb) = (basis(a, &ea), basis(b, &eb));
    CompareRow {
        point: point.to_vec(),
        metric,
        unit: unit.to_string(),
        a: ea,
        b: eb,
        difference: d,
        basis: if ba == bb { ba.to_string() } else { format!("A {ba}, B {bb}") },
        verdict,
    }
}

/// The rows of one pair of results (a run each, or a matched sweep point): the headline
/// metrics, then the breakdowns both sides have.
fn rows(point: &[String], a: &Replications, b: &Replications) -> Vec<CompareRow> {
    let (a, b) = (with_batch_means(a.clone()), with_batch_means(b.clone()));
    let mut out: Vec<CompareRow> = metrics()
        .into_iter()
        .filter_map(|m| {
            let (ea, eb) = ((m.estimate)(&a)?, (m.estimate)(&b)?);
            Some(row(point, m.name.to_string(), m.unit, (&a, ea), (&b, eb)))
        })
        .collect();
    for (metric, unit, value) in breakdown_metrics(&a, &b) {
        let of = |r: &Replications| -> Option<Estimate> {
            let xs: Option<Vec<f64>> = r.runs.iter().map(&value).collect();
            xs.filter(|xs| !xs.is_empty()).map(|xs| estimate_of(&xs))
        };
        if let (Some(ea), Some(eb)) = (of(&a), of(&b)) {
            out.push(row(point, metric, unit, (&a, ea), (&b, eb)));
        }
    }
    out
}

/// A breakdown metric's value in one run (`None` when that run lacks the element).
type Value = Box<dyn Fn(&Summary) -> Option<f64>>;

/// The per-service and per-population metrics (when either side has more than one, else
/// they repeat the headline) and the backend tier's, for the names both sides' first runs
/// have, in A's order.
fn breakdown_metrics(a: &Replications, b: &Replications) -> Vec<(String, &'static str, Value)> {
    let (Some(fa), Some(fb)) = (a.runs.first(), b.runs.first()) else { return Vec::new() };
    let mut out: Vec<(String, &'static str, Value)> = Vec::new();
    let group = |list: &'static str,
                 names: Vec<String>,
                 get: fn(&Summary, &str) -> Option<GroupSummary>,
                 out: &mut Vec<(String, &'static str, Value)>| {
        for n in names {
            let path = format!("{list}[{n}]");
            let g = |f: fn(&GroupSummary) -> f64| -> Value {
                let n = n.clone();
                Box::new(move |s: &Summary| get(s, &n).map(|x| f(&x)))
            };
            out.push((format!("{path}.latency_ms.p99"), "ms", g(|x| x.latency_ms.p99)));
            out.push((format!("{path}.throughput_cps"), "conn/s", g(|x| x.throughput_cps)));
            out.push((format!("{path}.loss_fraction"), "fraction", g(|x| x.loss_fraction)));
        }
    };
    let both = |xs: Vec<String>, ys: Vec<String>| -> Vec<String> {
        xs.into_iter().filter(|x| ys.contains(x)).collect()
    };
    if fa.services.len() > 1 || fb.services.len() > 1 {
        let names = both(
            fa.services.iter().map(|x| x.name.clone()).collect(),
            fb.services.iter().map(|x| x.name.clone()).collect(),
        );
        group(
            "services",
            names,
            |s, n| s.services.iter().find(|x| x.name == n).map(|x| x.results.clone()),
            &mut out,
        );
    }
    if fa.populations.len() > 1 || fb.populations.len() > 1 {
        let names = both(
            fa.populations.iter().map(|x| x.name.clone()).collect(),
            fb.populations.iter().map(|x| x.name.clone()).collect(),
        );
        group(
            "populations",
            names,
            |s, n| s.populations.iter().find(|x| x.name == n).map(|x| x.results.clone()),
            &mut out,
        );
    }
    let names = both(
        fa.backends.iter().map(|x| x.name.clone()).collect(),
        fb.backends.iter().map(|x| x.name.clone()).collect(),
    );
    for n in names {
        let (n1, n2) = (n.clone(), n.clone());
        out.push((
            format!("backends[{n}].utilization"),
            "fraction",
            Box::new(move |s: &Summary| s.backends.iter().find(|x| x.name == n1).map(|x| x.utilization)),
        ));
        out.push((
            format!("backends[{n}].latency_ms.mean"),
            "ms",
            Box::new(move |s: &Summary| s.backends.iter().find(|x| x.name == n2).map(|x| x.latency_ms.mean)),
        ));
    }
    out
}

fn note_scenarios(a: &CompareSide, b: &CompareSide) -> Vec<String> {
    if a.scenario == b.scenario {
        Vec::new()
    } else {
        vec![format!("A ran scenario {:?} and B scenario {:?}.", a.scenario, b.scenario)]
    }
}

pub(crate) fn runs(a: (CompareSide, Replications), b: (CompareSide, Replications)) -> CompareReport {
    let rows = rows(&[], &a.1, &b.1);
    CompareReport {
        kind: "run".into(),
        notes: note_scenarios(&a.0, &b.0),
        a: a.0,
        b: b.0,
        rows,
        ..CompareReport::default()
    }
}

/// A point's key for matching: `(axis, value)` sorted by axis, numbers compared as
/// numbers (`800` and `800.0` match) and strings without their RON quotes.
fn key(axes: &[String], values: &[String]) -> Vec<(String, String)> {
    let mut k: Vec<(String, String)> = axes
        .iter()
        .zip(values)
        .map(|(axis, v)| {
            let v = match v.trim().parse::<f64>() {
                Ok(x) if x.is_finite() => format!("{x}"),
                _ => display_value(v),
            };
            (axis.clone(), v)
        })
        .collect();
    k.sort();
    k
}

pub(crate) fn sweeps(a: (CompareSide, SweepReport), b: (CompareSide, SweepReport)) -> CompareReport {
    let (sa, sb) = (&a.1, &b.1);
    let mut notes = note_scenarios(&a.0, &b.0);
    let (mut axes_a, mut axes_b) = (sa.axes.clone(), sb.axes.clone());
    axes_a.sort();
    axes_b.sort();
    if axes_a != axes_b {
        notes.push(format!(
            "The sweeps have different axes (A: {}; B: {}): no point can be matched.",
            sa.axes.join(", "),
            sb.axes.join(", ")
        ));
    }
    let keys_b: Vec<_> = sb.points.iter().map(|p| key(&sb.axes, &p.values)).collect();
    let mut matched_b = vec![false; sb.points.len()];
    let mut rows_out = Vec::new();
    let mut only_in_a = Vec::new();
    for p in &sa.points {
        let k = key(&sa.axes, &p.values);
        match keys_b.iter().enumerate().position(|(i, kb)| !matched_b[i] && *kb == k) {
            Some(i) => {
                matched_b[i] = true;
                rows_out.extend(rows(&p.values, &p.result, &sb.points[i].result));
            }
            None => only_in_a.push(p.values.clone()),
        }
    }
    let only_in_b =
        sb.points.iter().zip(&matched_b).filter(|(_, m)| !**m).map(|(p, _)| p.values.clone()).collect();
    CompareReport {
        kind: "sweep".into(),
        axes: sa.axes.clone(),
        a: a.0,
        b: b.0,
        rows: rows_out,
        only_in_a,
        only_in_b,
        notes,
    }
}

/// `x` with `dp` decimals, or in exponent form when that would be long (a cell stays
/// short whatever a report file holds).
fn fixed(x: f64, dp: usize, sign: bool) -> String {
    match (x.abs() >= 1e12, sign) {
        (true, true) => format!("{x:+.3e}"),
        (true, false) => format!("{x:.3e}"),
        (false, true) => format!("{x:+.dp$}"),
        (false, false) => format!("{x:.dp$}"),
    }
}

/// `mean ± ci95` (just the mean with one value).
fn estimate(e: &Estimate, dp: usize) -> String {
    if e.n > 1 {
        format!("{} ± {}", fixed(e.mean, dp, false), fixed(e.ci95, dp, false))
    } else {
        fixed(e.mean, dp, false)
    }
}

pub(crate) fn cells(r: &CompareRow) -> [String; 6] {
    let (k, unit, dp) = shown(&r.unit);
    let d = &r.difference;
    let scaled = |e: &Estimate| Estimate { mean: e.mean * k, ci95: e.ci95 * k, n: e.n };
    let rel = d.diff / r.a.mean.abs() * 100.0;
    let rel = if r.a.mean != 0.0 && rel.abs() < 1e6 { format!(" ({rel:+.1}%)") } else { String::new() };
    let interval = if d.testable {
        format!("[{}, {}]", fixed((d.diff - d.ci95) * k, dp, false), fixed((d.diff + d.ci95) * k, dp, false))
    } else {
        "–".to_string()
    };
    [
        format!("{} [{unit}]", r.metric),
        estimate(&scaled(&r.a), dp),
        estimate(&scaled(&r.b), dp),
        format!("{}{rel}", fixed(d.diff * k, dp, true)),
        interval,
        r.verdict.clone(),
    ]
}

/// The heading of [`cells`].
pub(crate) const HEADER: [&str; 6] = ["metric", "A", "B", "B − A", "95% interval", "verdict"];

/// The comparison as a table: a column per axis (sweeps), then [`HEADER`]; a row per
/// metric (per matched point).
pub(crate) fn table(c: &CompareReport) -> (Vec<String>, Vec<Vec<String>>) {
    let mut header: Vec<String> = c.axes.clone();
    header.extend(HEADER.map(String::from));
    let rows = c
        .rows
        .iter()
        .map(|r| {
            let mut row: Vec<String> = (0..c.axes.len())
                .map(|i| r.point.get(i).map_or(String::new(), |v| display_value(v)))
                .collect();
            row.extend(cells(r));
            row
        })
        .collect();
    (header, rows)
}

fn csv(c: &CompareReport) -> String {
    let mut header: Vec<String> = c.axes.clone();
    header.extend(
        [
            "metric",
            "unit",
            "a_mean",
            "a_ci95",
            "a_n",
            "b_mean",
            "b_ci95",
            "b_n",
            "diff",
            "diff_ci95",
            "df",
            "significant",
            "testable",
            "basis",
            "verdict",
        ]
        .map(String::from),
    );
    let mut csv = Csv::new(&header);
    for r in &c.rows {
        let mut row: Vec<String> =
            (0..c.axes.len()).map(|i| r.point.get(i).cloned().unwrap_or_default()).collect();
        let d = &r.difference;
        row.extend([
            r.metric.clone(),
            r.unit.clone(),
            num(r.a.mean),
            num(r.a.ci95),
            r.a.n.to_string(),
            num(r.b.mean),
            num(r.b.ci95),
            r.b.n.to_string(),
            num(d.diff),
            num(d.ci95),
            num(d.df),
            d.significant.to_string(),
            d.testable.to_string(),
            r.basis.clone(),
            r.verdict.clone(),
        ]);
        csv.row(&row);
    }
    csv.finish()
}

/// A sweep point as a person reads it: `scheduler=wlc, servers=4`.
pub(crate) fn point_label(axes: &[String], values: &[String]) -> String {
    axes.iter().zip(values).map(|(a, v)| format!("{a}={}", display_value(v))).collect::<Vec<_>>().join(", ")
}

/// A dot plot of one metric: A and B side by side at each point, with their whiskers.
fn dot_chart(c: &CompareReport, metric: &str, unit: &str) -> Chart {
    let rows: Vec<&CompareRow> = c.rows.iter().filter(|r| r.metric == metric).collect();
    let (k, unit, _) = shown(unit);
    // At each category's own x: a dot plot sets its lines side by side (`Chart::dots`).
    let side = |name: &str, e: fn(&CompareRow) -> Estimate| Line {
        name: name.to_string(),
        points: rows.iter().enumerate().map(|(i, r)| (i as f64, e(r).mean * k)).collect(),
        ci: rows.iter().map(|r| e(r).ci95 * k).collect(),
    };
    let categories = rows
        .iter()
        .map(|r| if r.point.is_empty() { metric.to_string() } else { point_label(&c.axes, &r.point) })
        .collect();
    Chart {
        title: format!("{metric}: A and B"),
        x_label: if c.axes.is_empty() { String::new() } else { "sweep point".into() },
        y_label: format!("{metric} [{unit}]"),
        x_categories: Some(categories),
        markers: true,
        dots: true,
        lines: vec![side("A", |r| r.a), side("B", |r| r.b)],
        ..Chart::default()
    }
}

fn side_rows(s: &CompareSide) -> Vec<(&'static str, String)> {
    vec![
        ("directory", s.dir.clone()),
        ("scenario", s.scenario.clone()),
        ("seeds", s.seeds.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")),
        ("replications", s.replications.to_string()),
        ("overrides", s.overrides.join(" ")),
    ]
}

fn html(c: &CompareReport) -> String {
    let mut page = Page::new(&format!("lvsim compare: {} vs {}", c.a.dir, c.b.dir));
    page.raw(&format!("<h1>lvsim compare: {} vs {}</h1>\n", escape(&c.a.dir), escape(&c.b.dir)));
    let significant = c.rows.iter().filter(|r| r.difference.significant).count();
    page.p(
        "lead",
        &format!(
            "Two {}s side by side: {} of {} differences are significant (Welch's t test, 95%).",
            c.kind,
            significant,
            c.rows.len()
        ),
    );
    page.raw(&nav(&[("sides", "A and B"), ("table", "Differences"), ("charts", "Charts")]));
    page.h2("sides", "A and B");
    let (ra, rb) = (side_rows(&c.a), side_rows(&c.b));
    let sides: Vec<Vec<String>> = ra
        .iter()
        .map(|(k, va)| {
            let vb = rb.iter().find(|(kb, _)| kb == k).map_or(String::new(), |(_, v)| v.clone());
            vec![(*k).to_string(), va.clone(), vb]
        })
        .collect();
    page.table(&["", "A", "B"], 3, &sides);
    for n in &c.notes {
        page.p("warning", n);
    }
    page.h2("table", "Differences");
    // The verdict next to the metric (the terminal's order puts it last): a wide table
    // scrolls, and the verdict is what the reader came for.
    let (mut header, mut rows) = table(c);
    let first = c.axes.len() + 1;
    for r in std::iter::once(&mut header).chain(rows.iter_mut()) {
        r[first..].rotate_right(1);
    }
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    page.table(&header, first + 1, &rows);
    page.p(
        "note",
        "Intervals: Student t 95% over the replications; for one run, the mean response time's \
         batch means (20 batches); other metrics of a single run cannot be told apart.",
    );
    for (side, points) in [("A", &c.only_in_a), ("B", &c.only_in_b)] {
        if !points.is_empty() {
            page.h3(&format!("Points only in {side}"));
            let list: Vec<Vec<String>> = points.iter().map(|p| vec![point_label(&c.axes, p)]).collect();
            page.table(&["point"], 1, &list);
        }
    }
    page.h2("charts", "Charts");
    let mut seen: Vec<(&str, &str)> = Vec::new();
    for r in &c.rows {
        if !seen.contains(&(r.metric.as_str(), r.unit.as_str())) {
            seen.push((&r.metric, &r.unit));
        }
    }
    for (metric, unit) in seen {
        page.chart(&dot_chart(c, metric, unit), "Whiskers: 95% intervals.", "no value on either side");
    }
    page.finish()
}

pub(crate) fn write(dir: &Path, c: &CompareReport) -> io::Result<Written> {
    std::fs::create_dir_all(dir)?;
    let mut w = Written::default();
    let mut json = serde_json::to_string_pretty(c).map_err(io::Error::other)?;
    json.push('\n');
    w.write(dir, "compare.json", &json)?;
    w.write(dir, "compare.csv", &csv(c))?;
    w.write(dir, "report.html", &html(c))?;
    Ok(w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{LatencyMs, Summary, SweepPoint};

    fn reps(means: &[f64]) -> Replications {
        let runs = means
            .iter()
            .enumerate()
            .map(|(i, &m)| Summary {
                seed: i as u64 + 1,
                latency_ms: LatencyMs { mean: m, mean_ci95: m / 100.0, p99: 3.0 * m, ..LatencyMs::default() },
                throughput_cps: 100.0,
                ..Summary::default()
            })
            .collect();
        crate::replications(runs)
    }

    fn side(dir: &str) -> CompareSide {
        CompareSide { dir: dir.into(), scenario: "s".into(), replications: 3, ..CompareSide::default() }
    }

    #[test]
    fn runs_are_tested_with_welch_and_single_runs_use_batch_means() {
        let c = runs((side("a"), reps(&[10.0, 10.2, 9.9])), (side("b"), reps(&[20.0, 20.3, 19.8])));
        let mean = &c.rows[0];
        assert_eq!((mean.metric.as_str(), mean.verdict.as_str()), ("latency_ms.mean", "significant"));
        assert_eq!(mean.basis, "replications");
        // Equal throughput, zero spread: not significant.
        let cps = c.rows.iter().find(|r| r.metric == "throughput_cps").unwrap();
        assert_eq!(cps.verdict, "not significant");
        // One run each: the mean has batch means, p99 cannot be told.
        let c = runs((side("a"), reps(&[10.0])), (side("b"), reps(&[10.05])));
        assert_eq!(c.rows[0].basis, "batch means");
        assert_eq!(c.rows[0].a.n, LATENCY_BATCHES as u32);
        assert_eq!(c.rows[0].verdict, "not significant", "{:?}", c.rows[0].difference);
        assert_eq!(c.rows[1].verdict, "cannot tell (one run each: use --replications)");
        assert_eq!(cells(&c.rows[1])[4], "–");
        assert!(c.rows.iter().all(|r| !r.metric.starts_with("feedback")), "no feedback on either side");
    }

    /// Runs with two services (web's p99 = `p99`, api's 50 ms) and a backend.
    fn with_breakdowns(p99s: &[f64], db: f64) -> Replications {
        let mut r = reps(&vec![10.0; p99s.len()]);
        for (s, &p) in r.runs.iter_mut().zip(p99s) {
            let svc = |name: &str, p99: f64| crate::ServiceSummary {
                name: name.into(),
                results: crate::GroupSummary {
                    latency_ms: crate::LatencyMs { p99, ..Default::default() },
                    ..Default::default()
                },
                ..Default::default()
            };
            s.services = vec![svc("web", p), svc("api", 50.0)];
            s.backends =
                vec![crate::BackendSummary { name: "db".into(), utilization: db, ..Default::default() }];
        }
        r
    }

    #[test]
    fn breakdowns_both_sides_have_are_compared_by_name() {
        let a = with_breakdowns(&[100.0, 101.0, 99.0], 0.5);
        let mut b = with_breakdowns(&[150.0, 152.0, 149.0], 0.5);
        // B's second service is named differently: not compared.
        for s in &mut b.runs {
            s.services[1].name = "api2".into();
        }
        let c = runs((side("a"), a), (side("b"), b));
        let web = c.rows.iter().find(|r| r.metric == "services[web].latency_ms.p99").expect("web p99 row");
        assert_eq!(web.verdict, "significant");
        assert!((web.difference.diff - 50.333).abs() < 1e-2, "{}", web.difference.diff);
        assert!(c.rows.iter().all(|r| !r.metric.contains("api")), "api is only in A");
        let db = c.rows.iter().find(|r| r.metric == "backends[db].utilization").expect("db row");
        assert_eq!((db.unit.as_str(), db.verdict.as_str()), ("fraction", "not significant"));
        // One service and no backend: no breakdown rows (they would repeat the headline).
        let c = runs((side("a"), reps(&[1.0, 2.0])), (side("b"), reps(&[1.0, 2.0])));
        assert!(c.rows.iter().all(|r| !r.metric.contains('[')));
    }

    #[test]
    fn sweep_points_match_by_axis_values_and_the_rest_are_listed() {
        let point = |v: &[&str], m: f64| SweepPoint {
            values: v.iter().map(|s| s.to_string()).collect(),
            result: reps(&[m, m + 0.1, m - 0.1]),
        };
        let a = SweepReport {
            scenario: "s".into(),
            axes: vec!["sched".into(), "rate".into()],
            points: vec![
                point(&["\"rr\"", "800"], 10.0),
                point(&["\"wlc\"", "800"], 10.0),
                point(&["\"lc\"", "800"], 1.0),
            ],
        };
        // B: axes in another order, 800.0 written differently, no lc but an sed.
        let b = SweepReport {
            scenario: "s".into(),
            axes: vec!["rate".into(), "sched".into()],
            points: vec![
                point(&["800.0", "\"wlc\""], 30.0),
                point(&["800", "\"rr\""], 10.0),
                point(&["800", "\"sed\""], 1.0),
            ],
        };
        let c = sweeps((side("a"), a), (side("b"), b));
        assert_eq!(c.only_in_a, [vec!["\"lc\"".to_string(), "800".to_string()]]);
        assert_eq!(c.only_in_b, [vec!["800".to_string(), "\"sed\"".to_string()]]);
        let means: Vec<&CompareRow> = c.rows.iter().filter(|r| r.metric == "latency_ms.mean").collect();
        assert_eq!(means.len(), 2);
        assert_eq!((means[0].point[0].as_str(), means[0].verdict.as_str()), ("\"rr\"", "not significant"));
        assert_eq!((means[1].point[0].as_str(), means[1].verdict.as_str()), ("\"wlc\"", "significant"));
        let text = csv(&c);
        assert!(text.starts_with("sched,rate,metric,unit,a_mean,"), "{text}");
        assert_eq!(text.lines().count(), 1 + c.rows.len());
        let page = html(&c);
        assert!(page.contains("Points only in A") && page.contains("sched=lc, rate=800"));
    }

    #[test]
    fn the_page_escapes_directory_names() {
        let c = runs((side("<a&>"), reps(&[1.0, 1.1])), (side("\"b'"), reps(&[1.0, 1.2])));
        let page = html(&c);
        assert!(!page.contains("<a&>") && page.contains("&lt;a&amp;&gt;"));
        assert!(!page.contains("\"b'"));
        assert!(page.matches("<svg").count() >= 5, "a dot plot per metric");
    }
}
