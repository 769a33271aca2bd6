//! Replications: one scenario run with several seeds, and Student t 95% intervals.

use std::io;
use std::path::Path;

use sim_core::stats::t_975;

use crate::csv::{Csv, num};
use crate::units::finite;
use crate::{Estimate, Replications, Summary, Written};

/// Mean and Student t 95% half-width `t_{n-1,0.975} · s / sqrt(n)` (s the sample standard
/// deviation); half-width 0 with fewer than two values, everything 0 with none.
pub(crate) fn estimate(xs: &[f64]) -> Estimate {
    let n = xs.len();
    if n == 0 {
        return Estimate::default();
    }
    let mean = xs.iter().sum::<f64>() / n as f64;
    let ci95 = if n < 2 {
        0.0
    } else {
        let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1) as f64;
        t_975(n - 1) * var.sqrt() / (n as f64).sqrt()
    };
    Estimate { mean: finite(mean), ci95: finite(ci95), n: u32::try_from(n).unwrap_or(u32::MAX) }
}

/// Fraction of offered connections not completed: refused, dropped or lost on fail-over.
pub(crate) fn loss_fraction(s: &Summary) -> f64 {
    crate::breakdown::loss_fraction(&s.connections)
}

pub(crate) fn aggregate(mut runs: Vec<Summary>) -> Replications {
    // Seed order whatever order the runs finished in (a stable sort keeps equal seeds'
    // order, so the result is a function of the input).
    runs.sort_by_key(|s| s.seed);
    let metric = |f: fn(&Summary) -> f64| estimate(&runs.iter().map(f).collect::<Vec<_>>());
    // A feedback or HA metric is estimated only when every run has it (an estimate over
    // the runs that happen to have one would hide the others).
    let every = |f: fn(&Summary) -> Option<f64>| {
        let xs: Option<Vec<f64>> = runs.iter().map(f).collect();
        xs.filter(|xs| !xs.is_empty()).map(|xs| estimate(&xs))
    };
    Replications {
        latency_mean_ms: metric(|s| s.latency_ms.mean),
        latency_p99_ms: metric(|s| s.latency_ms.p99),
        throughput_cps: metric(|s| s.throughput_cps),
        loss_fraction: metric(loss_fraction),
        utilization_spread: metric(|s| s.utilization_spread),
        feedback_reaction_s: every(feedback_reaction_s),
        feedback_weight_travel_per_min: every(feedback_weight_travel_per_min),
        lost_on_failover: every(lost_on_failover),
        ha_failover_gap_s_max: every(ha_failover_gap_s_max),
        ha_detection_s_max: every(ha_detection_s_max),
        runs,
    }
}

/// A run's slowest feedback reaction [s], if it had feedback and a reaction.
pub(crate) fn feedback_reaction_s(s: &Summary) -> Option<f64> {
    s.feedback.as_ref()?.reaction_s
}

/// A run's summed feedback weight travel [1/min], if it had feedback.
pub(crate) fn feedback_weight_travel_per_min(s: &Summary) -> Option<f64> {
    s.feedback.as_ref().map(|f| f.weight_travel_per_min)
}

/// A run's connections lost on fail-over, if it had HA results (without them the count
/// is 0 by construction, not a measurement).
pub(crate) fn lost_on_failover(s: &Summary) -> Option<f64> {
    s.ha.as_ref().map(|_| s.connections.lost_on_failover as f64)
}

/// A run's longest fail-over gap [s], if it had one.
pub(crate) fn ha_failover_gap_s_max(s: &Summary) -> Option<f64> {
    s.ha.as_ref()?.failover_gap_s_max
}

/// A run's slowest fault detection [s], if a fault was detected.
pub(crate) fn ha_detection_s_max(s: &Summary) -> Option<f64> {
    s.ha.as_ref()?.detection_s_max
}

/// An estimate that only some runs have (feedback, HA): its CSV column, how pages show
/// it, and where the estimate and each run's value are.
#[derive(Clone, Copy)]
pub(crate) struct OptionalMetric {
    /// CSV column (and `NAME_ci95`).
    pub name: &'static str,
    /// Chart title.
    pub title: &'static str,
    /// Chart y label.
    pub y_label: &'static str,
    /// Table heading.
    pub short: &'static str,
    /// The estimate over replications.
    pub estimate: fn(&Replications) -> Option<Estimate>,
    /// One run's value.
    pub per_run: fn(&Summary) -> Option<f64>,
}

/// The optional estimates, in column order: feedback, then HA.
pub(crate) const OPTIONAL_METRICS: [OptionalMetric; 5] = [
    OptionalMetric {
        name: "feedback_reaction_s",
        title: "Feedback reaction time",
        y_label: "slowest server's reaction [s]",
        short: "reaction s",
        estimate: |r| r.feedback_reaction_s,
        per_run: feedback_reaction_s,
    },
    OptionalMetric {
        name: "feedback_weight_travel_per_min",
        title: "Feedback weight travel",
        y_label: "sum of |weight change| [1/min]",
        short: "weight travel /min",
        estimate: |r| r.feedback_weight_travel_per_min,
        per_run: feedback_weight_travel_per_min,
    },
    OptionalMetric {
        name: "lost_on_failover",
        title: "Connections lost on fail-over",
        y_label: "measured connections lost [conns]",
        short: "lost on fail-over",
        estimate: |r| r.lost_on_failover,
        per_run: lost_on_failover,
    },
    OptionalMetric {
        name: "ha_failover_gap_s_max",
        title: "Longest fail-over gap",
        y_label: "fault to gratuitous ARP [s]",
        short: "fail-over gap s",
        estimate: |r| r.ha_failover_gap_s_max,
        per_run: ha_failover_gap_s_max,
    },
    OptionalMetric {
        name: "ha_detection_s_max",
        title: "Slowest fault detection",
        y_label: "fault to health-check verdict [s]",
        short: "detection s",
        estimate: |r| r.ha_detection_s_max,
        per_run: ha_detection_s_max,
    },
];

/// The per-run and estimate columns shared by the CSV files of replications, sweeps and
/// plans.
pub(crate) const ESTIMATE_COLUMNS: [&str; 11] = [
    "n",
    "latency_mean_ms",
    "latency_mean_ms_ci95",
    "latency_p99_ms",
    "latency_p99_ms_ci95",
    "throughput_cps",
    "throughput_cps_ci95",
    "loss_fraction",
    "loss_fraction_ci95",
    "utilization_spread",
    "utilization_spread_ci95",
];

/// The fields of [`ESTIMATE_COLUMNS`].
pub(crate) fn estimate_fields(r: &Replications) -> Vec<String> {
    let mut out = vec![r.latency_mean_ms.n.to_string()];
    for e in [r.latency_mean_ms, r.latency_p99_ms, r.throughput_cps, r.loss_fraction, r.utilization_spread] {
        out.extend([num(e.mean), num(e.ci95)]);
    }
    out
}

/// The optional estimate columns (`NAME`, `NAME_ci95`) of the metrics some of `results`
/// have: none when no result has feedback or HA.
pub(crate) fn optional_columns<'a>(
    results: impl Iterator<Item = &'a Replications> + Clone,
) -> Vec<OptionalMetric> {
    OPTIONAL_METRICS.into_iter().filter(|m| results.clone().any(|r| (m.estimate)(r).is_some())).collect()
}

/// The header of [`optional_columns`].
pub(crate) fn optional_header(cols: &[OptionalMetric]) -> Vec<String> {
    cols.iter().flat_map(|m| [m.name.to_string(), format!("{}_ci95", m.name)]).collect()
}

/// The fields of [`optional_columns`]; empty cells where a result has no such estimate.
pub(crate) fn optional_fields(cols: &[OptionalMetric], r: &Replications) -> Vec<String> {
    cols.iter()
        .flat_map(|m| match (m.estimate)(r) {
            Some(e) => [num(e.mean), num(e.ci95)],
            None => [String::new(), String::new()],
        })
        .collect()
}

/// `replications.csv`: one row per seed, then a `mean` and a `ci95` row.
/// The feedback and HA columns are there only when their estimates are (every run had
/// them).
pub(crate) fn csv(r: &Replications) -> String {
    let fb: Vec<OptionalMetric> =
        OPTIONAL_METRICS.into_iter().filter(|m| (m.estimate)(r).is_some()).collect();
    let mut header: Vec<String> = [
        "seed",
        "latency_mean_ms",
        "latency_p99_ms",
        "throughput_cps",
        "loss_fraction",
        "utilization_spread",
    ]
    .map(String::from)
    .to_vec();
    header.extend(fb.iter().map(|m| m.name.to_string()));
    let mut csv = Csv::new(&header);
    for s in &r.runs {
        let mut row = vec![
            s.seed.to_string(),
            num(s.latency_ms.mean),
            num(s.latency_ms.p99),
            num(s.throughput_cps),
            num(loss_fraction(s)),
            num(s.utilization_spread),
        ];
        row.extend(fb.iter().map(|m| (m.per_run)(s).map_or(String::new(), num)));
        csv.row(&row);
    }
    let mut es =
        vec![r.latency_mean_ms, r.latency_p99_ms, r.throughput_cps, r.loss_fraction, r.utilization_spread];
    es.extend(fb.iter().filter_map(|m| (m.estimate)(r)));
    let row = |label: &str, f: fn(&Estimate) -> f64| {
        let mut row = vec![label.to_string()];
        row.extend(es.iter().map(|e| num(f(e))));
        row
    };
    csv.row(&row("mean", |e| e.mean));
    csv.row(&row("ci95", |e| e.ci95));
    csv.finish()
}

pub(crate) fn write(dir: &Path, r: &Replications) -> io::Result<Written> {
    std::fs::create_dir_all(dir)?;
    let mut w = Written::default();
    let mut json = serde_json::to_string_pretty(r).map_err(io::Error::other)?;
    json.push('\n');
    w.write(dir, "replications.json", &json)?;
    w.write(dir, "replications.csv", &csv(r))?;
    Ok(w)
}

/// `mean ± ci` for tables.
pub(crate) fn fmt_estimate(e: &Estimate, decimals: usize) -> String {
    if e.n > 1 {
        format!("{:.decimals$} ± {:.decimals$}", e.mean, e.ci95)
    } else {
        format!("{:.decimals$}", e.mean)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Connections, LatencyMs};

    fn run(seed: u64, mean: f64, p99: f64, cps: f64, lost: u64) -> Summary {
        Summary {
            seed,
            latency_ms: LatencyMs { mean, p99, ..LatencyMs::default() },
            throughput_cps: cps,
            connections: Connections {
                offered: 100,
                completed: 100 - lost,
                refused: lost,
                ..Connections::default()
            },
            ..Summary::default()
        }
    }

    #[test]
    fn student_t_interval_matches_hand_computation() {
        // 2, 4, 6, 8: mean 5, s² = (9 + 1 + 1 + 9) / 3 = 20/3, t_{3,0.975} = 3.182446305,
        // half-width = 3.182446305 · sqrt(20/3) / 2 = 3.182446305 · 2.581988897 / 2 = 4.1085205...
        let e = estimate(&[2.0, 4.0, 6.0, 8.0]);
        assert_eq!((e.mean, e.n), (5.0, 4));
        assert!((e.ci95 - 4.108_520_5).abs() < 1e-6, "{}", e.ci95);
        // Two values 10, 12: s = sqrt(2), t_{1} = 12.706204736, hw = 12.706204736 · 1 = 12.7062...
        let e = estimate(&[10.0, 12.0]);
        assert!((e.ci95 - 12.706_204_736).abs() < 1e-9, "{}", e.ci95);
        assert_eq!(estimate(&[3.0]), Estimate { mean: 3.0, ci95: 0.0, n: 1 });
        assert_eq!(estimate(&[]), Estimate::default());
        assert_eq!(estimate(&[7.0, 7.0, 7.0]).ci95, 0.0);
    }

    #[test]
    fn replications_sort_by_seed_and_estimate_each_metric() {
        let r = aggregate(vec![
            run(3, 30.0, 90.0, 100.0, 2),
            run(1, 10.0, 70.0, 120.0, 0),
            run(2, 20.0, 80.0, 110.0, 1),
        ]);
        assert_eq!(r.runs.iter().map(|s| s.seed).collect::<Vec<_>>(), [1, 2, 3]);
        // 10, 20, 30: mean 20, s = 10, t_{2} = 4.302652730, hw = 4.30265273 · 10 / sqrt 3.
        assert_eq!(r.latency_mean_ms.mean, 20.0);
        assert!((r.latency_mean_ms.ci95 - 43.026_527_3 / 3f64.sqrt()).abs() < 1e-9);
        assert_eq!(r.latency_p99_ms.mean, 80.0);
        assert_eq!(r.throughput_cps.mean, 110.0);
        assert!((r.loss_fraction.mean - 0.01).abs() < 1e-12);
        let csv = csv(&r);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 1 + 3 + 2);
        assert_eq!(
            lines[0],
            "seed,latency_mean_ms,latency_p99_ms,throughput_cps,loss_fraction,utilization_spread"
        );
        assert_eq!(lines[1], "1,10,70,120,0,0");
        assert!(lines[4].starts_with("mean,20,80,110,"), "{}", lines[4]);
        assert!(lines[5].starts_with("ci95,"), "{}", lines[5]);
    }

    fn with_feedback(mut s: Summary, spread: f64, reaction: Option<f64>, travel: f64) -> Summary {
        s.utilization_spread = spread;
        s.feedback = Some(crate::FeedbackSummary {
            law: "capacity".into(),
            reaction_s: reaction,
            weight_travel_per_min: travel,
            ..crate::FeedbackSummary::default()
        });
        s
    }

    #[test]
    fn feedback_estimates_need_every_run_to_have_them() {
        let fb = |seed, reaction, travel| with_feedback(run(seed, 1.0, 1.0, 1.0, 0), 0.1, reaction, travel);
        let r = aggregate(vec![fb(1, Some(2.0), 10.0), fb(2, Some(4.0), 20.0)]);
        assert_eq!(r.utilization_spread.mean, 0.1);
        assert_eq!(r.feedback_reaction_s.map(|e| (e.mean, e.n)), Some((3.0, 2)));
        assert_eq!(r.feedback_weight_travel_per_min.map(|e| e.mean), Some(15.0));
        let text = csv(&r);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].ends_with(",utilization_spread,feedback_reaction_s,feedback_weight_travel_per_min"));
        assert_eq!(lines[1], "1,1,1,1,0,0.1,2,10");
        assert_eq!(lines[3], "mean,1,1,1,0,0.1,3,15");
        // One run without a reaction: travel is still estimated, reaction is not.
        let r = aggregate(vec![fb(1, Some(2.0), 10.0), fb(2, None, 20.0)]);
        assert_eq!(r.feedback_reaction_s, None);
        assert!(r.feedback_weight_travel_per_min.is_some());
        assert!(
            csv(&r).lines().next().unwrap().ends_with(",utilization_spread,feedback_weight_travel_per_min")
        );
        // One run without feedback: neither, and no feedback columns or keys.
        let r = aggregate(vec![fb(1, Some(2.0), 10.0), run(2, 1.0, 1.0, 1.0, 0)]);
        assert_eq!((r.feedback_reaction_s, r.feedback_weight_travel_per_min), (None, None));
        assert!(csv(&r).lines().next().unwrap().ends_with(",utilization_spread"));
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains("\"utilization_spread\"") && !json.contains("feedback_"), "{json}");
        // No runs at all: nothing to estimate.
        assert_eq!(aggregate(Vec::new()).feedback_weight_travel_per_min, None);
    }

    fn with_ha(mut s: Summary, lost: u64, gap: Option<f64>, detection: Option<f64>) -> Summary {
        s.connections.lost_on_failover = lost;
        s.ha = Some(crate::HaSummary {
            failover_gap_s_max: gap,
            detection_s_max: detection,
            ..crate::HaSummary::default()
        });
        s
    }

    #[test]
    fn ha_estimates_need_every_run_to_have_them() {
        let ha = |seed, lost, gap, detection| with_ha(run(seed, 1.0, 1.0, 1.0, 0), lost, gap, detection);
        let r = aggregate(vec![ha(2, 6, Some(3.0), None), ha(1, 4, Some(1.0), Some(0.5))]);
        assert_eq!(r.lost_on_failover.map(|e| (e.mean, e.n)), Some((5.0, 2)));
        assert_eq!(r.ha_failover_gap_s_max.map(|e| e.mean), Some(2.0));
        assert_eq!(r.ha_detection_s_max, None, "one run detected nothing");
        // Lost on fail-over counts in the loss fraction too.
        assert_eq!(r.loss_fraction.mean, 0.05);
        let text = csv(&r);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].ends_with(",utilization_spread,lost_on_failover,ha_failover_gap_s_max"),
            "{}",
            lines[0]
        );
        assert_eq!(lines[1], "1,1,1,1,0.04,0,4,1");
        assert_eq!(lines[3], "mean,1,1,1,0.05,0,5,2");
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains("\"ha_failover_gap_s_max\"") && !json.contains("ha_detection_s_max"), "{json}");
        // Feedback and HA together: feedback's columns first.
        let both = |seed| {
            let s = with_ha(run(seed, 1.0, 1.0, 1.0, 0), 1, Some(1.0), Some(1.0));
            with_feedback(s, 0.0, Some(2.0), 3.0)
        };
        let header = csv(&aggregate(vec![both(1), both(2)])).lines().next().unwrap().to_string();
        assert!(
            header.ends_with(
                ",feedback_reaction_s,feedback_weight_travel_per_min,lost_on_failover,\
                 ha_failover_gap_s_max,ha_detection_s_max"
            ),
            "{header}"
        );
        // A run without HA results: no HA estimate at all (its 0 lost is no measurement).
        let r = aggregate(vec![ha(1, 4, Some(1.0), Some(0.5)), run(2, 1.0, 1.0, 1.0, 0)]);
        assert_eq!((r.lost_on_failover, r.ha_failover_gap_s_max, r.ha_detection_s_max), (None, None, None));
        assert!(csv(&r).lines().next().unwrap().ends_with(",utilization_spread"));
    }
}
