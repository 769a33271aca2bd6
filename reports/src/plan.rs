//! A capacity plan's directory: `plan.json`, `plan.csv`, `report.html`.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use crate::chart::{Chart, Line, Threshold};
use crate::csv::{Csv, num};
use crate::html::{Page, escape, nav};
use crate::replications::{ESTIMATE_COLUMNS, estimate_fields, fmt_estimate};
use crate::{Estimate, PlanReport, PlanTrial, Replications, Written};

/// An SLO as written (`latency_ms.p99 <= 200`): the metric, the comparison and the
/// threshold; `None` if it does not read so.
pub(crate) fn parse_slo(slo: &str) -> Option<(String, &'static str, f64)> {
    let at = slo.find(['<', '>'])?;
    let op = ["<=", ">=", "<", ">"].into_iter().find(|op| slo[at..].starts_with(op))?;
    let metric = slo[..at].trim().to_string();
    let value = slo[at + op.len()..].split_whitespace().next()?.parse::<f64>().ok()?;
    (!metric.is_empty() && value.is_finite()).then_some((metric, op, value))
}

/// The trial's confidence interval of the SLO metric, when the metric is one the
/// replications estimate.
fn metric_estimate(metric: &str, r: &Replications) -> Option<Estimate> {
    match metric {
        "latency_ms.p99" => Some(r.latency_p99_ms),
        "latency_ms.mean" => Some(r.latency_mean_ms),
        "throughput_cps" => Some(r.throughput_cps),
        "loss_fraction" => Some(r.loss_fraction),
        "utilization_spread" => Some(r.utilization_spread),
        "feedback.reaction_s" => r.feedback_reaction_s,
        "feedback.weight_travel_per_min" => r.feedback_weight_travel_per_min,
        "connections.lost_on_failover" => r.lost_on_failover,
        "ha.failover_gap_s_max" => r.ha_failover_gap_s_max,
        "ha.detection_s_max" => r.ha_detection_s_max,
        _ => None,
    }
}

fn csv(p: &PlanReport) -> String {
    let mut header = vec!["scheduler", "servers", "value", "meets"];
    header.extend(ESTIMATE_COLUMNS);
    let mut csv = Csv::new(&header);
    for t in &p.trials {
        let mut row = vec![t.scheduler.clone(), t.servers.to_string(), num(t.value), t.meets.to_string()];
        row.extend(estimate_fields(&t.result));
        csv.row(&row);
    }
    csv.finish()
}

fn answer(page: &mut Page, p: &PlanReport) {
    match &p.answer {
        Some(a) => {
            page.raw(&format!(
                "<div class=\"answer\"><p><strong>Use {} real server{} with the {} scheduler.</strong> \
                 {} = {} there; the SLO is {} at {}.</p>",
                a.servers,
                if a.servers == 1 { "" } else { "s" },
                escape(&a.scheduler),
                escape(&slo_metric(p)),
                escape(&format!("{:.3}", a.value)),
                escape(&p.slo),
                escape(&p.load),
            ));
            if !a.why.is_empty() {
                page.raw(&format!("<p>{}</p>", escape(&a.why)));
            }
            page.raw("</div>\n");
        }
        None => {
            page.raw(&format!(
                "<div class=\"answer none\"><p><strong>No configuration met the SLO within the range \
                 searched.</strong> SLO: {} at {}; {} trial{} ran.</p></div>\n",
                escape(&p.slo),
                escape(&p.load),
                p.trials.len(),
                if p.trials.len() == 1 { "" } else { "s" },
            ));
        }
    }
}

fn slo_metric(p: &PlanReport) -> String {
    parse_slo(&p.slo).map_or_else(|| "the SLO metric".to_string(), |(m, _, _)| m)
}

fn chart(p: &PlanReport) -> Chart {
    let slo = parse_slo(&p.slo);
    let metric = slo_metric(p);
    let mut schedulers: Vec<&str> = Vec::new();
    for t in &p.trials {
        if !schedulers.contains(&t.scheduler.as_str()) {
            schedulers.push(&t.scheduler);
        }
    }
    let lines = schedulers
        .iter()
        .map(|&s| {
            // One point per server count (the last trial run there), by server count.
            let by_servers: BTreeMap<u32, &PlanTrial> =
                p.trials.iter().filter(|t| t.scheduler == s).map(|t| (t.servers, t)).collect();
            let trials: Vec<&PlanTrial> = by_servers.into_values().collect();
            let ci = |t: &&PlanTrial| metric_estimate(&metric, &t.result).map_or(0.0, |e| e.ci95);
            Line {
                name: s.to_string(),
                points: trials.iter().map(|t| (f64::from(t.servers), t.value)).collect(),
                ci: trials.iter().map(ci).collect(),
            }
        })
        .collect();
    Chart {
        title: format!("{metric} against the number of real servers"),
        x_label: "real servers".into(),
        y_label: metric.clone(),
        x_integer: true,
        markers: true,
        y_from_zero: true,
        lines,
        threshold: slo.map(|(_, op, v)| Threshold { y: v, label: format!("SLO {op} {v}") }),
        ..Chart::default()
    }
}

fn html(p: &PlanReport) -> String {
    let mut page = Page::new(&format!("lvsim capacity plan: {}", p.scenario));
    page.raw(&format!("<h1>lvsim capacity plan: {}</h1>\n", escape(&p.scenario)));
    page.p("lead", &format!("SLO {} at {}.", p.slo, p.load));
    page.raw(&nav(&[("answer", "Answer"), ("evidence", "Evidence"), ("trials", "Trials")]));
    page.h2("answer", "Answer");
    answer(&mut page, p);
    page.h2("evidence", "Evidence");
    let reps = p.trials.iter().map(|t| t.result.runs.len()).max().unwrap_or(0);
    let caption = if reps > 1 {
        "Each point is a trial's mean over its replications; error bars are Student t 95% intervals. \
         The dashed line is the SLO threshold."
    } else {
        "Each point is a trial; the dashed line is the SLO threshold."
    };
    page.chart(&chart(p), caption, "no trial ran");
    page.h2("trials", "Trials");
    let header =
        ["scheduler", "servers", "value", "SLO", "runs", "mean ms", "p99 ms", "throughput conn/s", "lost %"];
    let chosen = |t: &PlanTrial| {
        p.answer.as_ref().is_some_and(|a| a.scheduler == t.scheduler && a.servers == t.servers)
    };
    let rows: Vec<Vec<String>> = p
        .trials
        .iter()
        .map(|t| {
            let r = &t.result;
            let lost = Estimate {
                mean: r.loss_fraction.mean * 100.0,
                ci95: r.loss_fraction.ci95 * 100.0,
                ..r.loss_fraction
            };
            let verdict = match (t.meets, chosen(t)) {
                (true, true) => "meets (chosen)",
                (true, false) => "meets",
                (false, _) => "fails",
            };
            vec![
                t.scheduler.clone(),
                t.servers.to_string(),
                format!("{:.3}", t.value),
                verdict.to_string(),
                r.runs.len().to_string(),
                fmt_estimate(&r.latency_mean_ms, 3),
                fmt_estimate(&r.latency_p99_ms, 3),
                fmt_estimate(&r.throughput_cps, 1),
                fmt_estimate(&lost, 2),
            ]
        })
        .collect();
    page.table(&header, 1, &rows);
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

    #[test]
    fn slo_text_parses_into_metric_comparison_and_threshold() {
        assert_eq!(parse_slo("latency_ms.p99 <= 200"), Some(("latency_ms.p99".into(), "<=", 200.0)));
        assert_eq!(parse_slo("loss_fraction<0.01"), Some(("loss_fraction".into(), "<", 0.01)));
        assert_eq!(parse_slo("throughput_cps >= 750 conn/s"), Some(("throughput_cps".into(), ">=", 750.0)));
        assert_eq!(parse_slo("fast enough"), None);
        assert_eq!(parse_slo("<= 3"), None);
    }

    #[test]
    fn slo_metrics_on_ha_paths_have_their_intervals() {
        let e = Estimate { mean: 1.5, ci95: 0.5, n: 3 };
        let r = Replications {
            lost_on_failover: Some(e),
            ha_failover_gap_s_max: Some(e),
            ha_detection_s_max: Some(e),
            ..Replications::default()
        };
        for m in ["connections.lost_on_failover", "ha.failover_gap_s_max", "ha.detection_s_max"] {
            assert_eq!(metric_estimate(m, &r), Some(e), "{m}");
            assert_eq!(metric_estimate(m, &Replications::default()), None, "{m}");
        }
    }
}
