//! A capacity plan's directory: `plan.json`, `plan.csv`, `report.html`.
//!
//! The page puts the answer first (the configuration, its cost, the SLO metric with its
//! 95% interval, and why), then the evidence: the schedulers at the answer's sizes as a
//! dot plot with whiskers (a categorical axis: no line between schedulers), the metric
//! against the first group's size (one group) or the cheapest frontier found (several),
//! and every trial, sorted by scheduler and sizes.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use crate::chart::{Chart, Line, Threshold};
use crate::csv::{Csv, num};
use crate::html::{Page, nav};
use crate::replications::{ESTIMATE_COLUMNS, estimate_fields, fmt_estimate};
use crate::text::escape;
use crate::{Estimate, PlanAnswer, PlanReport, PlanTrial, Verdict, Written, cost_text};

/// An SLO as written (`latency_ms.p99 <= 200`): the metric, the comparison and the
/// threshold; `None` if it does not read so.
pub(crate) fn parse_slo(slo: &str) -> Option<(String, &'static str, f64)> {
    let at = slo.find(['<', '>'])?;
    let op = ["<=", ">=", "<", ">"].into_iter().find(|op| slo[at..].starts_with(op))?;
    let metric = slo[..at].trim().to_string();
    let value = slo[at + op.len()..].split_whitespace().next()?.parse::<f64>().ok()?;
    (!metric.is_empty() && value.is_finite()).then_some((metric, op, value))
}

/// The first SLO check's estimate of a trial (what the answer is chosen on).
fn value(t: &PlanTrial) -> Estimate {
    t.checks.first().map(|c| c.estimate).unwrap_or_default()
}

fn verdict_word(v: Verdict) -> &'static str {
    match v {
        Verdict::Meets => "meets",
        Verdict::Fails => "fails",
        Verdict::Unclear => "unclear",
    }
}

fn sizes_text(p: &PlanReport, sizes: &[u32]) -> String {
    crate::sizes_text(&p.groups, sizes)
}

fn csv(p: &PlanReport) -> String {
    let mut header: Vec<String> = vec!["scheduler".into()];
    header.extend(p.groups.iter().map(|g| g.label.replace(' ', "_")));
    header.extend(["cost".into(), "meets".into()]);
    let checks = p.trials.first().map_or(0, |t| t.checks.len());
    for c in p.trials.first().map(|t| t.checks.as_slice()).unwrap_or_default() {
        header.extend([c.metric.clone(), format!("{}_ci95", c.metric), format!("{}_verdict", c.metric)]);
    }
    header.extend(ESTIMATE_COLUMNS.iter().map(|s| s.to_string()));
    let mut csv = Csv::new(&header);
    for t in &p.trials {
        let mut row = vec![t.scheduler.clone()];
        row.extend(t.sizes.iter().map(u32::to_string));
        row.extend([num(t.cost), t.meets.to_string()]);
        for c in t.checks.iter().take(checks) {
            row.extend([num(c.estimate.mean), num(c.estimate.ci95), verdict_word(c.verdict).into()]);
        }
        row.extend(estimate_fields(&t.result));
        csv.row(&row);
    }
    csv.finish()
}

fn answer(page: &mut Page, p: &PlanReport) {
    let Some(a) = &p.answer else {
        page.raw(&format!(
            "<div class=\"answer none\"><p><strong>No configuration met the SLO within the ranges \
             searched.</strong> SLO: {} at {}; {} trial{} ran.</p></div>\n",
            escape(&p.slo),
            escape(&p.load),
            p.trials.len(),
            if p.trials.len() == 1 { "" } else { "s" },
        ));
        return;
    };
    page.raw(&format!(
        "<div class=\"answer\"><p><strong>Use {} with the {} scheduler (cost {}).</strong> \
         {} = {} there (95% interval over {} runs); the SLO is {} at {}.</p>",
        escape(&sizes_text(p, &a.sizes)),
        escape(&a.scheduler),
        escape(&cost_text(a.cost)),
        escape(&slo_metric(p)),
        escape(&fmt_estimate(&a.value, 2)),
        a.value.n,
        escape(&p.slo),
        escape(&p.load),
    ));
    if !a.why.is_empty() {
        page.raw(&format!("<p>{}</p>", escape(&a.why)));
    }
    page.raw("</div>\n");
    rivals(page, p, a);
}

fn rivals(page: &mut Page, p: &PlanReport, a: &PlanAnswer) {
    if a.rivals.is_empty() {
        return;
    }
    let metric = slo_metric(p);
    let header = ["scheduler", "sizes", metric.as_str(), "minus the answer", "difference"];
    let rows: Vec<Vec<String>> = a
        .rivals
        .iter()
        .map(|r| {
            let d = &r.difference;
            let verdict = match (d.testable, d.significant) {
                (false, _) => "cannot tell (one run each)",
                (true, true) => "significant",
                (true, false) => "not significant",
            };
            vec![
                r.scheduler.clone(),
                sizes_text(p, &r.sizes),
                fmt_estimate(&r.value, 2),
                format!("{:+.2} ± {:.2}", d.diff, d.ci95),
                verdict.into(),
            ]
        })
        .collect();
    page.p("note", "Configurations as cheap as the answer, against it (Welch's t test, 95%):");
    page.table(&header, 2, &rows);
}

fn slo_metric(p: &PlanReport) -> String {
    parse_slo(&p.slo).map_or_else(|| "the SLO metric".to_string(), |(m, _, _)| m)
}

fn threshold(p: &PlanReport) -> Option<Threshold> {
    parse_slo(&p.slo).map(|(_, op, v)| Threshold { y: v, label: format!("SLO {op} {v}") })
}

/// The schedulers at the answer's sizes: a dot plot (categorical axis) with whiskers.
fn schedulers_chart(p: &PlanReport) -> Chart {
    let metric = slo_metric(p);
    let sizes = p.answer.as_ref().map(|a| a.sizes.clone()).unwrap_or_default();
    let at: Vec<&PlanTrial> = p.trials.iter().filter(|t| t.sizes == sizes).collect();
    let line = Line {
        name: metric.clone(),
        points: at.iter().enumerate().map(|(i, t)| (i as f64, value(t).mean)).collect(),
        ci: at.iter().map(|t| value(t).ci95).collect(),
    };
    Chart {
        title: format!("{metric} of each scheduler at {}", sizes_text(p, &sizes)),
        x_label: "scheduler".into(),
        y_label: metric,
        x_categories: Some(at.iter().map(|t| t.scheduler.clone()).collect()),
        markers: true,
        dots: true,
        y_from_zero: true,
        lines: if at.is_empty() { Vec::new() } else { vec![line] },
        threshold: threshold(p),
        ..Chart::default()
    }
}

fn schedulers(p: &PlanReport) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for t in &p.trials {
        if !out.contains(&t.scheduler.as_str()) {
            out.push(&t.scheduler);
        }
    }
    out
}

/// One group: the metric against its size, one line per scheduler, with whiskers.
fn size_chart(p: &PlanReport) -> Chart {
    let metric = slo_metric(p);
    let label = p.groups.first().map_or_else(String::new, |g| g.label.clone());
    let lines = schedulers(p)
        .into_iter()
        .map(|s| {
            let by_size: BTreeMap<u32, &PlanTrial> =
                p.trials.iter().filter(|t| t.scheduler == s).map(|t| (t.sizes[0], t)).collect();
            Line {
                name: s.to_string(),
                points: by_size.iter().map(|(n, t)| (f64::from(*n), value(t).mean)).collect(),
                ci: by_size.values().map(|t| value(t).ci95).collect(),
            }
        })
        .collect();
    Chart {
        title: format!("{metric} against the number of {label}"),
        x_label: label,
        y_label: metric,
        x_integer: true,
        markers: true,
        y_from_zero: true,
        lines,
        threshold: threshold(p),
        ..Chart::default()
    }
}

/// Several groups: for each size of the first group, the least of the second that met the
/// SLO (the frontier the staircase walked), one line per scheduler.
fn frontier_chart(p: &PlanReport) -> Chart {
    let (g0, g1) = (&p.groups[0].label, &p.groups[1].label);
    let lines = schedulers(p)
        .into_iter()
        .map(|s| {
            let mut least: BTreeMap<u32, u32> = BTreeMap::new();
            for t in p.trials.iter().filter(|t| t.scheduler == s && t.meets) {
                let e = least.entry(t.sizes[0]).or_insert(t.sizes[1]);
                *e = (*e).min(t.sizes[1]);
            }
            Line {
                name: s.to_string(),
                points: least.iter().map(|(x, y)| (f64::from(*x), f64::from(*y))).collect(),
                ci: Vec::new(),
            }
        })
        .collect();
    Chart {
        title: format!("The least {g1} that meet the SLO, by the number of {g0}"),
        x_label: g0.clone(),
        y_label: g1.clone(),
        x_integer: true,
        markers: true,
        y_from_zero: true,
        lines,
        ..Chart::default()
    }
}

fn trials_table(page: &mut Page, p: &PlanReport) {
    let chosen =
        |t: &PlanTrial| p.answer.as_ref().is_some_and(|a| a.scheduler == t.scheduler && a.sizes == t.sizes);
    let mut header = p.lead_header();
    header.extend(p.trials.first().into_iter().flat_map(|t| t.checks.iter().map(|c| c.check.clone())));
    header.extend(["SLO".into(), "runs".into(), "throughput conn/s".into()]);
    let rows: Vec<Vec<String>> = p
        .trials
        .iter()
        .map(|t| {
            let mut row = t.lead_cells();
            for c in &t.checks {
                row.push(format!("{} ({})", fmt_estimate(&c.estimate, 3), verdict_word(c.verdict)));
            }
            let verdict = match (t.meets, chosen(t)) {
                (true, true) => "meets (chosen)",
                (true, false) => "meets",
                (false, _) => "fails",
            };
            row.extend([verdict.to_string(), t.result.runs.len().to_string()]);
            row.push(fmt_estimate(&t.result.throughput_cps, 1));
            row
        })
        .collect();
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    page.table(&header, 1, &rows);
}

fn html(p: &PlanReport) -> String {
    let mut page = Page::new(&format!("lvsim capacity plan: {}", p.scenario));
    page.raw(&format!("<h1>lvsim capacity plan: {}</h1>\n", escape(&p.scenario)));
    page.p("lead", &format!("SLO {} at {}.", p.slo, p.load));
    page.raw(&nav(&[("answer", "Answer"), ("evidence", "Evidence"), ("trials", "Trials")]));
    page.h2("answer", "Answer");
    answer(&mut page, p);
    page.h2("evidence", "Evidence");
    let whiskers = "Each point is a trial's mean over its replications; whiskers are Student t 95% \
                    intervals. The dashed line is the SLO threshold.";
    if p.answer.is_some() {
        page.chart(&schedulers_chart(p), whiskers, "no trial at the answer's sizes");
    }
    if p.groups.len() <= 1 {
        page.chart(&size_chart(p), whiskers, "no trial ran");
    } else if p.groups.len() >= 2 {
        let caption = "Each point is the least size of the second group that met the SLO with that \
                       many of the first (the other groups as in the trials).";
        page.chart(&frontier_chart(p), caption, "no trial met the SLO");
    }
    page.h2("trials", "Trials");
    page.p(
        "note",
        &format!(
            "{} trials ({} runs each) of a {}-point grid, searched by {}; sorted by scheduler and sizes. \
             A check is met when its 95% interval lies within the bound; \"unclear\" when it straddles \
             it (counted as failing).",
            p.trials.len(),
            p.replications,
            p.grid_points,
            p.search
        ),
    );
    trials_table(&mut page, p);
    page.finish()
}

pub(crate) fn write(dir: &Path, p: &PlanReport) -> io::Result<Written> {
    std::fs::create_dir_all(dir)?;
    let mut w = Written::default();
    let mut json = serde_json::to_string_pretty(p).map_err(io::Error::other)?;
    json.push('\n');
    w.write(dir, "plan.json", &json)?;
    w.write(dir, "plan.csv", &csv(p))?;
    w.write(dir, "report.html", &html(p))?;
    Ok(w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{PlanCheck, PlanGroup};

    #[test]
    fn slo_text_parses_into_metric_comparison_and_threshold() {
        assert_eq!(parse_slo("latency_ms.p99 <= 200"), Some(("latency_ms.p99".into(), "<=", 200.0)));
        assert_eq!(parse_slo("loss_fraction<0.01"), Some(("loss_fraction".into(), "<", 0.01)));
        assert_eq!(parse_slo("throughput_cps >= 750 conn/s"), Some(("throughput_cps".into(), ">=", 750.0)));
        assert_eq!(parse_slo("fast enough"), None);
        assert_eq!(parse_slo("<= 3"), None);
    }

    fn trial(s: &str, sizes: &[u32], mean: f64, meets: bool) -> PlanTrial {
        let estimate = Estimate { mean, ci95: 1.5, n: 5 };
        let verdict = if meets { Verdict::Meets } else { Verdict::Fails };
        PlanTrial {
            scheduler: s.into(),
            sizes: sizes.to_vec(),
            cost: sizes.iter().map(|&n| f64::from(n)).sum(),
            checks: vec![PlanCheck {
                check: "p99 <= 100".into(),
                metric: "latency_ms.p99".into(),
                estimate,
                verdict,
            }],
            meets,
            result: Default::default(),
        }
    }

    fn report() -> PlanReport {
        let group = |label: &str, path: &str| PlanGroup {
            label: label.into(),
            path: path.into(),
            min: 1,
            max: 4,
            cost: 1.0,
        };
        PlanReport {
            scenario: "t".into(),
            slo: "latency_ms.p99 <= 100 and loss <= 0.001".into(),
            load: "Poisson 10 conn/s".into(),
            groups: vec![
                group("app servers", "servers[0].count"),
                group("db cores", "backends[0].cpu.cores"),
            ],
            replications: 5,
            search: "staircase".into(),
            grid_points: 32,
            trials: vec![
                trial("rr", &[2, 3], 90.0, true),
                trial("rr", &[3, 1], 95.0, true),
                trial("rr", &[2, 2], 120.0, false),
                trial("wlc", &[2, 3], 91.0, true),
            ],
            answer: Some(PlanAnswer {
                scheduler: "rr".into(),
                sizes: vec![2, 3],
                cost: 5.0,
                value: Estimate { mean: 90.0, ci95: 1.5, n: 5 },
                choice: "indistinguishable".into(),
                ..PlanAnswer::default()
            }),
        }
    }

    #[test]
    fn the_scheduler_chart_is_a_dot_plot_at_the_answers_sizes() {
        let c = schedulers_chart(&report());
        assert!(c.dots);
        assert_eq!(c.x_categories, Some(vec!["rr".to_string(), "wlc".to_string()]));
        assert_eq!(c.lines[0].points, vec![(0.0, 90.0), (1.0, 91.0)]);
        assert_eq!(c.lines[0].ci, vec![1.5, 1.5]);
    }

    #[test]
    fn the_frontier_chart_has_the_least_second_size_per_first() {
        let c = frontier_chart(&report());
        assert_eq!(c.lines[0].name, "rr");
        assert_eq!(c.lines[0].points, vec![(2.0, 3.0), (3.0, 1.0)]);
        let csv = csv(&report());
        assert!(csv.starts_with("scheduler,app_servers,db_cores,cost,meets,latency_ms.p99,"), "{csv}");
        let page = html(&report());
        assert!(page.contains("Use 2 app servers + 3 db cores with the rr scheduler (cost 5)"), "{page}");
        assert!(page.contains("90.00 ± 1.50"), "{page}");
    }
}
