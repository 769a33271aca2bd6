//! A sweep's directory: `sweep.json`, `sweep.csv`, `report.html`.

use std::io;
use std::path::Path;

use crate::chart::{Chart, Line};
use crate::csv::Csv;
use crate::html::{Page, nav};
use crate::replications::{
    ESTIMATE_COLUMNS, estimate_fields, fmt_estimate, optional_columns, optional_fields, optional_header,
};
use crate::text::escape;
use crate::{Estimate, Replications, SweepReport, Written};

/// An axis value for people: a RON string's text without its quotes (`"wlc"` → `wlc`),
/// anything else as written.
pub(crate) fn display_value(ron: &str) -> String {
    let t = ron.trim();
    match t.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        Some(inner) if !inner.contains('"') => inner.to_string(),
        _ => t.to_string(),
    }
}

/// The value as a number, if it is one (`4`, `800.0`, `1e3`).
fn number(ron: &str) -> Option<f64> {
    ron.trim().parse::<f64>().ok().filter(|x| x.is_finite())
}

/// The x axis of the comparison charts: the last axis whose values are all numbers, else
/// the last axis (as categories); `None` without axes or points.
fn x_axis(s: &SweepReport) -> Option<(usize, bool)> {
    if s.points.is_empty() || s.axes.is_empty() {
        return None;
    }
    let numeric = |a: usize| s.points.iter().all(|p| p.values.get(a).and_then(|v| number(v)).is_some());
    match (0..s.axes.len()).rev().find(|&a| numeric(a)) {
        Some(a) => Some((a, true)),
        None => Some((s.axes.len() - 1, false)),
    }
}

/// An axis as a legend names it: its fields after the last list index (`forwarding` for
/// `directors[0].services[0].forwarding`, `arrival.rate` for `clients[0].arrival.rate`)
/// unless another axis ends the same way.
fn short_axis<'a>(s: &SweepReport, axis: &'a str) -> &'a str {
    fn last(a: &str) -> &str {
        a.rfind("].").map_or(a, |i| &a[i + 2..])
    }
    let short = last(axis);
    if s.axes.iter().filter(|a| last(a) == short).count() == 1 { short } else { axis }
}

/// A group of points sharing the values of every axis but x: one line.
struct Group {
    name: String,
    /// (x position, point index)
    members: Vec<(f64, usize)>,
}

/// Points grouped by the other axes' values, groups in order of first appearance, members
/// by x; with category names when x is not numeric.
fn groups(s: &SweepReport, x: usize, numeric: bool) -> (Vec<Group>, Option<Vec<String>>) {
    let mut categories: Vec<String> = Vec::new();
    let mut groups: Vec<(Vec<String>, Group)> = Vec::new();
    for (i, p) in s.points.iter().enumerate() {
        let xv = p.values.get(x).map_or("", String::as_str);
        let pos = if numeric {
            number(xv).unwrap_or(0.0)
        } else {
            let pos = categories.iter().position(|c| c == xv).unwrap_or_else(|| {
                categories.push(xv.to_string());
                categories.len() - 1
            });
            pos as f64
        };
        let key: Vec<String> =
            p.values.iter().enumerate().filter(|&(a, _)| a != x).map(|(_, v)| v.clone()).collect();
        let at = match groups.iter().position(|(k, _)| *k == key) {
            Some(at) => at,
            None => {
                let name = s
                    .axes
                    .iter()
                    .enumerate()
                    .filter(|&(a, _)| a != x)
                    .zip(&key)
                    .map(|((_, axis), v)| format!("{}={}", short_axis(s, axis), display_value(v)))
                    .collect::<Vec<_>>()
                    .join(", ");
                groups.push((key, Group { name, members: Vec::new() }));
                groups.len() - 1
            }
        };
        groups[at].1.members.push((pos, i));
    }
    let mut out: Vec<Group> = groups.into_iter().map(|(_, g)| g).collect();
    for g in &mut out {
        g.members.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    let cats = (!numeric).then(|| categories.iter().map(|c| display_value(c)).collect());
    (out, cats)
}

/// The metrics compared: title, y label, and the estimate (`None`: the point has none,
/// a feedback or HA metric of a point without feedback or HA).
type Metric = (&'static str, &'static str, fn(&Replications) -> Option<Estimate>);

const METRICS: [Metric; 5] = [
    ("99th percentile response time", "p99 [ms]", |r| Some(r.latency_p99_ms)),
    ("Mean response time", "mean [ms]", |r| Some(r.latency_mean_ms)),
    ("Throughput", "completed connections [conn/s]", |r| Some(r.throughput_cps)),
    ("Connections lost", "connections not completed [%]", |r| Some(percent(r.loss_fraction))),
    ("Utilisation spread", "max − min real-server utilisation [%]", |r| {
        Some(percent(r.utilization_spread))
    }),
];

fn csv(s: &SweepReport) -> String {
    let fb = optional_columns(s.points.iter().map(|p| &p.result));
    let mut header: Vec<String> = s.axes.clone();
    header.extend(ESTIMATE_COLUMNS.map(String::from));
    header.extend(optional_header(&fb));
    let mut csv = Csv::new(&header);
    for p in &s.points {
        let mut row: Vec<String> =
            (0..s.axes.len()).map(|a| p.values.get(a).cloned().unwrap_or_default()).collect();
        row.extend(estimate_fields(&p.result));
        row.extend(optional_fields(&fb, &p.result));
        csv.row(&row);
    }
    csv.finish()
}

/// The comparison charts of one metric: one line per group, points without the metric
/// left out.
fn metric_chart(
    s: &SweepReport,
    x: usize,
    groups: &[Group],
    categories: &Option<Vec<String>>,
    (title, y_label, metric): Metric,
) -> Chart {
    let lines = groups
        .iter()
        .map(|g| {
            let est: Vec<(f64, Estimate)> =
                g.members.iter().filter_map(|&(px, i)| Some((px, metric(&s.points[i].result)?))).collect();
            Line {
                name: if g.name.is_empty() { title.to_string() } else { g.name.clone() },
                points: est.iter().map(|(px, e)| (*px, e.mean)).collect(),
                ci: est.iter().map(|(_, e)| e.ci95).collect(),
            }
        })
        .filter(|l| !l.points.is_empty())
        .collect();
    Chart {
        title: format!("{title} against {}", s.axes[x]),
        x_label: s.axes[x].clone(),
        y_label: y_label.into(),
        x_categories: categories.clone(),
        // Schedulers are not a scale: dots and whiskers, no line suggesting a trend.
        dots: categories.is_some(),
        markers: categories.is_none(),
        // Every response-time axis is logarithmic: rr's 3 s p99 does not flatten wlc's 60 ms.
        y_log: y_label.ends_with("[ms]"),
        y_from_zero: true,
        lines,
        ..Chart::default()
    }
}

/// A fraction's estimate in percent.
fn percent(e: Estimate) -> Estimate {
    Estimate { mean: e.mean * 100.0, ci95: e.ci95 * 100.0, ..e }
}

fn html(s: &SweepReport) -> String {
    let mut page = Page::new(&format!("lvsim sweep: {}", s.scenario));
    page.raw(&format!("<h1>lvsim sweep: {}</h1>\n", escape(&s.scenario)));
    let reps = s.points.iter().map(|p| p.result.runs.len()).max().unwrap_or(0);
    page.p(
        "lead",
        &format!("{} points over {}; up to {reps} replication(s) each.", s.points.len(), s.axes.join(" × ")),
    );
    page.raw(&nav(&[("charts", "Charts"), ("points", "Points")]));
    page.h2("charts", "Charts");
    match x_axis(s) {
        None => page.p("note", "The sweep has no points to chart."),
        Some((x, numeric)) => {
            let (groups, categories) = groups(s, x, numeric);
            let caption = if reps > 1 {
                "Error bars (whiskers): Student t 95% confidence intervals over the replications. \
                 Response times are on a log axis."
            } else {
                ""
            };
            for m in METRICS {
                page.chart(&metric_chart(s, x, &groups, &categories, m), caption, "no point has a value");
            }
            // Only when some point has them (a sweep over `feedback.enabled`, or with HA).
            let caption = format!(
                "{caption}{}Points without the value in every replication are left out.",
                if caption.is_empty() { "" } else { " " }
            );
            for m in optional_columns(s.points.iter().map(|p| &p.result)) {
                let chart = metric_chart(s, x, &groups, &categories, (m.title, m.y_label, m.estimate));
                page.chart(&chart, &caption, "no point has a value");
            }
        }
    }
    page.h2("points", "Points");
    let fb = optional_columns(s.points.iter().map(|p| &p.result));
    let mut header: Vec<&str> = s.axes.iter().map(String::as_str).collect();
    header.extend(["runs", "mean ms", "p99 ms", "throughput conn/s", "lost %", "util spread %"]);
    header.extend(fb.iter().map(|m| m.short));
    let rows: Vec<Vec<String>> = s
        .points
        .iter()
        .map(|p| {
            let r = &p.result;
            let mut row: Vec<String> = (0..s.axes.len())
                .map(|a| p.values.get(a).map_or(String::new(), |v| display_value(v)))
                .collect();
            let lost = percent(r.loss_fraction);
            row.extend([
                r.runs.len().to_string(),
                fmt_estimate(&r.latency_mean_ms, 3),
                fmt_estimate(&r.latency_p99_ms, 3),
                fmt_estimate(&r.throughput_cps, 1),
                fmt_estimate(&lost, 2),
                fmt_estimate(&percent(r.utilization_spread), 1),
            ]);
            row.extend(fb.iter().map(|m| (m.estimate)(r).map_or("–".to_string(), |e| fmt_estimate(&e, 2))));
            row
        })
        .collect();
    page.table(&header, s.axes.len(), &rows);
    page.finish()
}

pub(crate) fn write(dir: &Path, s: &SweepReport) -> io::Result<Written> {
    std::fs::create_dir_all(dir)?;
    let mut w = Written::default();
    let mut json = serde_json::to_string_pretty(s).map_err(io::Error::other)?;
    json.push('\n');
    w.write(dir, "sweep.json", &json)?;
    w.files.extend(write_pages(dir, s)?.files);
    Ok(w)
}

/// `sweep.csv` and `report.html`: what they show of a run is its estimates and the number
/// of runs, so the points' `runs` may have dropped their per-server parts.
pub(crate) fn write_pages(dir: &Path, s: &SweepReport) -> io::Result<Written> {
    std::fs::create_dir_all(dir)?;
    let mut w = Written::default();
    w.write(dir, "sweep.csv", &csv(s))?;
    w.write(dir, "report.html", &html(s))?;
    Ok(w)
}

/// `sweep.json` written a point at a time, as each finishes, so that a sweep need not hold
/// every run's summary until the end: byte for byte what [`write`] writes for the whole
/// report (pretty JSON, a final newline).
#[derive(Debug)]
pub struct SweepJson<W: io::Write> {
    out: W,
    points: usize,
}

/// `text` (serde_json's pretty output) nested `pad` spaces deeper: JSON text has no raw
/// line break but between tokens, so every line after the first moves right.
fn nest(text: &str, pad: usize) -> String {
    text.replace('\n', &format!("\n{}", " ".repeat(pad)))
}

fn pretty<T: serde::Serialize + ?Sized>(v: &T) -> io::Result<String> {
    serde_json::to_string_pretty(v).map_err(io::Error::other)
}

impl<W: io::Write> SweepJson<W> {
    /// Starts the document: the scenario's name and the axes.
    pub fn new(mut out: W, scenario: &str, axes: &[String]) -> io::Result<Self> {
        write!(
            out,
            "{{\n  \"scenario\": {},\n  \"axes\": {},\n  \"points\": [",
            pretty(scenario)?,
            nest(&pretty(axes)?, 2)
        )?;
        Ok(SweepJson { out, points: 0 })
    }

    /// Appends the next point (points come in the sweep's order).
    pub fn point(&mut self, p: &crate::SweepPoint) -> io::Result<()> {
        let sep = if self.points == 0 { "" } else { "," };
        write!(self.out, "{sep}\n    {}", nest(&pretty(p)?, 4))?;
        self.points += 1;
        Ok(())
    }

    /// Ends the document and returns the writer, flushed.
    pub fn finish(mut self) -> io::Result<W> {
        let tail = if self.points == 0 { "]\n}\n" } else { "\n  ]\n}\n" };
        self.out.write_all(tail.as_bytes())?;
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SweepPoint;
    use crate::replications::OPTIONAL_METRICS;

    fn point(values: &[&str], mean: f64) -> SweepPoint {
        let est = Estimate { mean, ci95: mean / 10.0, n: 3 };
        SweepPoint {
            values: values.iter().map(|v| v.to_string()).collect(),
            result: Replications { latency_mean_ms: est, latency_p99_ms: est, ..Replications::default() },
        }
    }

    /// The streamed `sweep.json` is byte for byte the whole report's, with and without
    /// points, axes and runs, and with text that needs escaping.
    #[test]
    fn streamed_json_is_the_whole_reports() {
        let run = crate::Summary { scenario: "a \"b\"\nc".into(), seed: 7, ..crate::Summary::default() };
        let mut full = sweep();
        full.points[1].result.runs = vec![run.clone(), run];
        let empty_axes = SweepReport { axes: Vec::new(), ..sweep() };
        let none = SweepReport { points: Vec::new(), ..sweep() };
        for s in [sweep(), full, empty_axes, none] {
            let mut want = serde_json::to_string_pretty(&s).unwrap();
            want.push('\n');
            let mut j = SweepJson::new(Vec::new(), &s.scenario, &s.axes).unwrap();
            for p in &s.points {
                j.point(p).unwrap();
            }
            let got = String::from_utf8(j.finish().unwrap()).unwrap();
            assert_eq!(got, want);
        }
    }

    fn sweep() -> SweepReport {
        let mut points = Vec::new();
        for s in ["\"rr\"", "\"wlc\""] {
            for n in ["2", "4", "8"] {
                points.push(point(&[s, n], 10.0 / n.parse::<f64>().unwrap()));
            }
        }
        SweepReport { scenario: "s".into(), axes: vec!["scheduler".into(), "servers".into()], points }
    }

    #[test]
    fn legends_name_an_axis_by_its_last_field_unless_ambiguous() {
        let s = SweepReport {
            axes: vec!["directors[0].services[0].forwarding".into(), "a[0].rate".into(), "b[1].rate".into()],
            ..SweepReport::default()
        };
        assert_eq!(short_axis(&s, "directors[0].services[0].forwarding"), "forwarding");
        assert_eq!(short_axis(&s, "a[0].rate"), "a[0].rate");
        assert_eq!(short_axis(&s, "feedback.enabled"), "feedback.enabled");
    }

    #[test]
    fn values_display_without_ron_quotes() {
        assert_eq!(display_value("\"wlc\""), "wlc");
        assert_eq!(display_value("800.0"), "800.0");
        assert_eq!(display_value("Some(3)"), "Some(3)");
        assert_eq!(number("800.0"), Some(800.0));
        assert_eq!(number("\"wlc\""), None);
    }

    #[test]
    fn the_last_numeric_axis_is_x_and_the_others_make_lines() {
        let s = sweep();
        assert_eq!(x_axis(&s), Some((1, true)));
        let (lines, cats) = groups(&s, 1, true);
        assert!(cats.is_none());
        assert_eq!(
            lines.iter().map(|g| g.name.as_str()).collect::<Vec<_>>(),
            ["scheduler=rr", "scheduler=wlc"]
        );
        assert_eq!(lines[1].members, [(2.0, 3), (4.0, 4), (8.0, 5)]);
        // A numeric axis first and a string axis last: x is still the numeric one.
        let swapped = SweepReport {
            axes: vec!["servers".into(), "scheduler".into()],
            points: s.points.iter().map(|p| point(&[&p.values[1], &p.values[0]], 1.0)).collect(),
            ..s.clone()
        };
        assert_eq!(x_axis(&swapped), Some((0, true)));
        // No numeric axis: the last axis as categories.
        let cats_only = SweepReport {
            axes: vec!["scheduler".into()],
            points: vec![point(&["\"rr\""], 1.0), point(&["\"lc\""], 2.0)],
            ..s.clone()
        };
        assert_eq!(x_axis(&cats_only), Some((0, false)));
        let (lines, cats) = groups(&cats_only, 0, false);
        assert_eq!(cats, Some(vec!["rr".to_string(), "lc".to_string()]));
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].name, "");
    }

    #[test]
    fn csv_has_a_row_per_point_with_axis_values_as_ron() {
        let text = csv(&sweep());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 7);
        assert!(
            lines[0].starts_with("scheduler,servers,n,latency_mean_ms,latency_mean_ms_ci95,"),
            "{}",
            lines[0]
        );
        assert!(lines[1].starts_with("\"\"\"rr\"\"\",2,3,5,0.5,"), "{}", lines[1]);
    }

    #[test]
    fn feedback_columns_and_charts_only_when_some_point_has_feedback() {
        let plain = sweep();
        let header = csv(&plain).lines().next().unwrap().to_string();
        assert!(
            header.ends_with(",loss_fraction_ci95,utilization_spread,utilization_spread_ci95"),
            "{header}"
        );
        let html_plain = html(&plain);
        assert!(html_plain.contains("Utilisation spread against servers"));
        assert!(!html_plain.contains("Feedback reaction"));
        // A sweep over feedback.enabled: the `false` points have no feedback estimates.
        let mut s = sweep();
        s.axes[0] = "feedback.enabled".into();
        for (k, p) in s.points.iter_mut().enumerate() {
            let on = k >= 3;
            p.values[0] = on.to_string();
            if on {
                let e = Estimate { mean: k as f64, ci95: 0.5, n: 3 };
                p.result.feedback_reaction_s = Some(e);
                p.result.feedback_weight_travel_per_min = Some(e);
            }
        }
        let text = csv(&s);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].ends_with(
                ",utilization_spread_ci95,feedback_reaction_s,feedback_reaction_s_ci95,\
                 feedback_weight_travel_per_min,feedback_weight_travel_per_min_ci95"
            ),
            "{}",
            lines[0]
        );
        assert!(lines[1].ends_with(",,,,"), "{}", lines[1]);
        assert!(lines[4].ends_with(",3,0.5,3,0.5"), "{}", lines[4]);
        let page = html(&s);
        assert!(page.contains("Feedback reaction time against servers"));
        assert!(page.contains("Feedback weight travel against servers"));
        assert!(page.contains("<th>reaction s</th>"));
        // The line of points without feedback is left out of the feedback charts.
        let (groups, cats) = groups(&s, 1, true);
        let m = OPTIONAL_METRICS[0];
        let chart = metric_chart(&s, 1, &groups, &cats, (m.title, m.y_label, m.estimate));
        assert_eq!(chart.lines.len(), 1);
        assert_eq!(chart.lines[0].name, "feedback.enabled=true");
    }

    #[test]
    fn ha_columns_and_charts_when_points_have_ha() {
        let mut s = sweep();
        for (k, p) in s.points.iter_mut().enumerate() {
            let e = Estimate { mean: k as f64, ci95: 0.25, n: 3 };
            p.result.lost_on_failover = Some(e);
            p.result.ha_failover_gap_s_max = Some(e);
            // rr's points detected no fault in some replication.
            p.result.ha_detection_s_max = (k >= 3).then_some(e);
        }
        let text = csv(&s);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].ends_with(
                ",utilization_spread_ci95,lost_on_failover,lost_on_failover_ci95,\
                 ha_failover_gap_s_max,ha_failover_gap_s_max_ci95,ha_detection_s_max,ha_detection_s_max_ci95"
            ),
            "{}",
            lines[0]
        );
        assert!(lines[1].ends_with(",0,0.25,0,0.25,,"), "{}", lines[1]);
        assert!(lines[5].ends_with(",4,0.25,4,0.25,4,0.25"), "{}", lines[5]);
        let page = html(&s);
        for title in [
            "Connections lost on fail-over against servers",
            "Longest fail-over gap against servers",
            "Slowest fault detection against servers",
            "<th>fail-over gap s</th>",
            "<th>detection s</th>",
        ] {
            assert!(page.contains(title), "missing {title}");
        }
        assert!(!page.contains("Feedback reaction"));
        assert_eq!(page.matches("<svg").count(), 5 + 3);
        assert!(page.contains("connections not completed [%]") && page.contains("utilisation [%]"));
    }
}
