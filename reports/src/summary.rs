//! `summary.json` from a [`RunReport`], and the terminal summary.

use std::fmt::Write as _;

use lvs_ipvs::ipvsadm;
use sim_core::model::{DirectorReport, FeedbackReport, RunReport};

use crate::text::{fmt_ms, text_table};
use crate::units::{finite, finite_opt, latency_ms, ns_to_s, spread};
use crate::{
    Connections, DirectorSummary, FeedbackServerSummary, FeedbackSummary, LatencyMs, RunMeta, Summary,
};

fn director(d: &DirectorReport) -> DirectorSummary {
    let dropped = [d.external_in, d.external_out, d.internal_out, d.internal_in, d.cpu]
        .iter()
        .map(|c| c.dropped_packets)
        .sum();
    DirectorSummary {
        name: d.name.clone(),
        in_pkts: d.in_pkts,
        out_pkts: d.out_pkts,
        in_bytes: d.in_bytes,
        out_bytes: d.out_bytes,
        link_utilization: finite(d.link_utilization),
        cpu_utilization: finite(d.cpu.utilization),
        dropped_packets: dropped,
    }
}

fn feedback(f: &FeedbackReport) -> FeedbackSummary {
    let servers: Vec<FeedbackServerSummary> = f
        .servers
        .iter()
        .map(|s| FeedbackServerSummary {
            name: s.name.clone(),
            reports: s.reports,
            weight_changes: s.weight_changes,
            weight_mean: finite(s.weight_mean),
            weight_min: s.weight_min,
            weight_max: s.weight_max,
            weight_travel_per_min: finite(s.weight_travel_per_min),
            reaction_s: finite_opt(s.reaction_s),
            capacity_last: finite_opt(s.capacity_last),
        })
        .collect();
    FeedbackSummary {
        law: f.law.clone(),
        reports_sent: f.reports_sent,
        reports_applied: f.reports_applied,
        weight_changes: f.weight_changes,
        segments_lost: f.segments_lost,
        reconnects: f.reconnects,
        reaction_s: servers.iter().filter_map(|s| s.reaction_s).reduce(f64::max),
        weight_travel_per_min: servers.iter().map(|s| s.weight_travel_per_min).sum(),
        servers,
    }
}

pub(crate) fn build(meta: &RunMeta, r: &RunReport) -> Summary {
    // Batch means are in seconds; `None` when a batch got no value.
    let ci_ms = r.ref1.batch_means.half_width_95().map_or(0.0, |s| s * 1e3);
    let (services, populations, backends) = crate::breakdown::build(r);
    // Without full detail: the distributions and the top and bottom servers, no list.
    let (all, across) = crate::across::of_run(r, !r.server_detail);
    Summary {
        scenario: meta.scenario.clone(),
        warnings: meta.warnings.clone(),
        overrides: meta.overrides.clone(),
        seed: r.seed,
        simulated_s: ns_to_s(r.simulated.as_nanos()),
        wall_s: finite(meta.wall_s),
        events: r.engine_events,
        connections: crate::breakdown::connections(&r.connections),
        latency_ms: latency_ms(&r.latency, ci_ms),
        throughput_cps: finite(r.throughput_cps),
        real_servers: if r.server_detail { all } else { Vec::new() },
        utilization_spread: spread(r.servers.iter().map(|s| s.utilization)),
        real_servers_across: Some(across),
        directors: r.directors.iter().map(director).collect(),
        services,
        populations,
        backends,
        // Without full detail: the servers whose weight travelled most, not every one.
        feedback: r
            .feedback
            .as_ref()
            .map(feedback)
            .map(|f| if r.server_detail { f } else { most_travelled(&f, crate::across::TOP_N) }),
        ha: r.ha.as_ref().map(|h| crate::ha::build(h, &r.directors)),
        ecmp: r.ecmp.as_ref().map(crate::ecmp::build),
        dos: r.dos.as_ref().map(|d| crate::dos::build(d, r)),
    }
}

/// `summary.json`'s text: pretty JSON, keys in struct order, and a final newline.
pub(crate) fn to_json(s: &Summary) -> String {
    let mut out = serde_json::to_string_pretty(s).expect("a Summary always serialises");
    out.push('\n');
    out
}

/// Whether the page and the terminal list every real server one a row (else their
/// distributions: `across.rs`).
pub(crate) fn listed(s: &Summary, r: &RunReport) -> bool {
    s.real_servers.len() == r.servers.len() && r.servers.len() <= crate::across::LIST_MAX
}

/// An ipvsadm listing cut to its first lines (a table of thousands of real servers is
/// not read in a terminal or on a page; `real_servers.csv` has every one).
pub(crate) fn ipvs_listing(text: &str) -> String {
    let lines = text.lines().count();
    if lines <= IPVS_LINES_MAX {
        return text.to_string();
    }
    let mut out: String = text.lines().take(IPVS_LINES_MAX).flat_map(|l| [l, "\n"]).collect();
    out.push_str(&format!(
        "... {} more lines (every real server: real_servers.csv)\n",
        lines - IPVS_LINES_MAX
    ));
    out
}

/// Most lines of an ipvsadm listing shown.
pub(crate) const IPVS_LINES_MAX: usize = 100;

/// One line of outcomes.
pub(crate) fn outcomes_line(c: &Connections) -> String {
    format!(
        "offered {}, completed {}, refused {}, dropped {}, lost on fail-over {}",
        c.offered, c.completed, c.refused, c.dropped, c.lost_on_failover
    )
}

/// One line of latency figures.
pub(crate) fn latency_line(l: &LatencyMs) -> String {
    let ci = if l.mean_ci95 > 0.0 { format!(" ± {}", fmt_ms(l.mean_ci95)) } else { String::new() };
    format!(
        "mean {}{ci}  p50 {}  p90 {}  p99 {}  p99.9 {}  max {} [ms]",
        fmt_ms(l.mean),
        fmt_ms(l.p50),
        fmt_ms(l.p90),
        fmt_ms(l.p99),
        fmt_ms(l.p999),
        fmt_ms(l.max)
    )
}

/// The feedback per-server table's columns (text and HTML share them).
pub(crate) const FEEDBACK_COLUMNS: [&str; 9] = [
    "server",
    "reports",
    "weight changes",
    "weight mean",
    "min",
    "max",
    "travel /min",
    "reaction s",
    "capacity %",
];

/// The `n` servers whose weight travelled most (ties in configuration order).
pub(crate) fn most_travelled(f: &FeedbackSummary, n: usize) -> FeedbackSummary {
    let mut servers = f.servers.clone();
    servers.sort_by(|a, b| b.weight_travel_per_min.total_cmp(&a.weight_travel_per_min));
    servers.truncate(n);
    FeedbackSummary { servers, ..f.clone() }
}

/// The feedback servers a page or terminal shows: every one up to
/// [`crate::across::LIST_MAX`] when the summary has them all, else the
/// [`crate::across::TOP_N`] whose weight travelled most, with a line saying so.
pub(crate) fn feedback_shown(f: &FeedbackSummary, r: &RunReport) -> (FeedbackSummary, Option<String>) {
    let all = r.servers.len();
    if f.servers.len() == all && all <= crate::across::LIST_MAX {
        return (f.clone(), None);
    }
    let shown = most_travelled(f, crate::across::TOP_N);
    let rest = if f.servers.len() == all {
        "every one is in summary.json"
    } else {
        "the run kept no full per-server detail"
    };
    let note =
        format!("The {} of {all} real servers whose weight travelled most ({rest})", shown.servers.len());
    (shown, Some(note))
}

/// An optional figure, or a dash.
fn or_dash(x: Option<f64>, f: impl Fn(f64) -> String) -> String {
    x.map_or_else(|| "–".to_string(), f)
}

pub(crate) fn feedback_rows(f: &FeedbackSummary) -> Vec<Vec<String>> {
    f.servers
        .iter()
        .map(|s| {
            vec![
                s.name.clone(),
                s.reports.to_string(),
                s.weight_changes.to_string(),
                format!("{:.1}", s.weight_mean),
                s.weight_min.to_string(),
                s.weight_max.to_string(),
                format!("{:.1}", s.weight_travel_per_min),
                or_dash(s.reaction_s, |x| format!("{x:.2}")),
                or_dash(s.capacity_last, |x| format!("{:.1}", x * 100.0)),
            ]
        })
        .collect()
}

/// The feedback loop's counters, as `(label, text)` lines.
pub(crate) fn feedback_lines(f: &FeedbackSummary) -> Vec<(&'static str, String)> {
    vec![
        ("law", f.law.clone()),
        (
            "reports",
            format!(
                "{} sent, {} applied, {} weight changes, {} segments lost, {} reconnects",
                f.reports_sent, f.reports_applied, f.weight_changes, f.segments_lost, f.reconnects
            ),
        ),
        (
            "reaction",
            or_dash(f.reaction_s, |x| {
                format!("{x:.2} s (slowest server, to its last background-work change)")
            }),
        ),
        ("weight travel", format!("{:.1} per minute (all servers)", f.weight_travel_per_min)),
    ]
}

pub(crate) fn text(meta: &RunMeta, r: &RunReport) -> String {
    let s = build(meta, r);
    let mut out = String::new();
    let _ = writeln!(out, "scenario   {}", s.scenario);
    for w in &s.warnings {
        let _ = writeln!(out, "warning    {w}");
    }
    let _ = writeln!(out, "seed       {}", s.seed);
    let (w0, w1) = (ns_to_s(r.window.0.as_nanos()), ns_to_s(r.window.1.as_nanos()));
    let _ = writeln!(
        out,
        "simulated  {:.3} s (measured window {w0:.3}–{w1:.3} s), {} events, wall {:.2} s",
        s.simulated_s, s.events, s.wall_s
    );
    let _ = writeln!(out, "conns      {}", outcomes_line(&s.connections));
    let _ = writeln!(out, "throughput {:.2} conn/s", s.throughput_cps);
    let _ = writeln!(out, "latency    {}", latency_line(&s.latency_ms));
    out.push('\n');
    if listed(&s, r) {
        let rows: Vec<Vec<String>> = s.real_servers.iter().map(crate::across::server_row).collect();
        out.push_str(&text_table(&crate::across::SERVER_COLUMNS, 2, &rows));
    } else {
        crate::across::text(&mut out, r, &s);
    }
    let _ = writeln!(out, "utilisation spread {:.1} %", s.utilization_spread * 100.0);
    crate::breakdown::text(&mut out, &s);
    if let Some(f) = &s.feedback {
        out.push('\n');
        for (label, line) in feedback_lines(f) {
            let _ = writeln!(out, "feedback {label:<13} {line}");
        }
        let (shown, note) = feedback_shown(f, r);
        if let Some(note) = note {
            let _ = writeln!(out, "{note}:");
        }
        out.push_str(&text_table(&FEEDBACK_COLUMNS, 1, &feedback_rows(&shown)));
    }
    if let Some(h) = &s.ha {
        crate::ha::text(&mut out, h);
    }
    if let Some(e) = &s.ecmp {
        crate::ecmp::text(&mut out, e);
    }
    if let Some(d) = &s.dos {
        crate::dos::text(&mut out, d);
    }
    for (d, ds) in r.directors.iter().zip(&s.directors) {
        let _ = writeln!(
            out,
            "\ndirector {}: link {:.1} %, cpu {:.1} %, {} packets dropped",
            ds.name,
            ds.link_utilization * 100.0,
            ds.cpu_utilization * 100.0,
            ds.dropped_packets
        );
        let _ = writeln!(out, "# ipvsadm -L -n");
        out.push_str(&ipvs_listing(&ipvsadm::list(&d.ipvs)));
        let _ = writeln!(out, "# ipvsadm -L -n --stats");
        out.push_str(&ipvs_listing(&ipvsadm::list_stats(&d.ipvs)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_table_aligns_columns() {
        let t =
            text_table(&["name", "n"], 1, &[vec!["a".into(), "10".into()], vec!["bbb".into(), "2".into()]]);
        assert_eq!(t, "name   n\n----  --\na     10\nbbb    2\n");
    }

    #[test]
    fn non_finite_values_become_zero() {
        assert_eq!(finite(f64::NAN), 0.0);
        assert_eq!(finite(f64::INFINITY), 0.0);
        assert_eq!(finite(1.5), 1.5);
    }
}
