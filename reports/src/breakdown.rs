//! Results broken down per virtual service, per client population and per backend:
//! `summary.json`'s `services`, `populations` and `backends`, the files `services.csv`,
//! `populations.csv` and `backends.csv` (one row each), the page's "Breakdowns" section
//! and the terminal block.

use std::fmt::Write as _;
use std::io;
use std::path::Path;

use lvs_ipvs::ServiceKey;
use sim_core::model::{BackendReport, GroupResults, RunReport};

use crate::csv::{Csv, num};
use crate::html::Page;
use crate::text::{fmt_ms, text_table};
use crate::units::{finite, latency_ms};
use crate::{
    BackendSummary, Connections, GroupSummary, LatencyMs, PopulationSummary, ServiceSummary, Summary, Written,
};

/// Fraction of offered connections not completed: refused, dropped or lost on fail-over;
/// 0 when none was offered. (The run's own `loss_fraction` is this of its totals.)
pub(crate) fn loss_fraction(c: &Connections) -> f64 {
    if c.offered == 0 {
        return 0.0;
    }
    (c.refused + c.dropped + c.lost_on_failover) as f64 / c.offered as f64
}

pub(crate) fn connections(c: &sim_core::model::ConnCounts) -> Connections {
    Connections {
        offered: c.offered,
        completed: c.completed,
        refused: c.refused,
        dropped: c.dropped,
        lost_on_failover: c.lost_on_failover,
    }
}

fn group(g: &GroupResults) -> GroupSummary {
    let connections = connections(&g.connections);
    GroupSummary {
        loss_fraction: loss_fraction(&connections),
        connections,
        throughput_cps: finite(g.throughput_cps),
        latency_ms: latency_ms(&g.latency, 0.0),
    }
}

fn backend(b: &BackendReport) -> BackendSummary {
    BackendSummary {
        name: b.name.clone(),
        utilization: finite(b.utilization),
        queue_mean: finite(b.queue_mean),
        queue_max: b.queue_max,
        latency_ms: latency_ms(&b.latency, 0.0),
        queries: b.queries,
        refused: b.refused,
    }
}

/// `summary.json`'s `services`, `populations` and `backends`.
pub(crate) fn build(r: &RunReport) -> (Vec<ServiceSummary>, Vec<PopulationSummary>, Vec<BackendSummary>) {
    let services = r
        .services
        .iter()
        .map(|s| {
            let (protocol, vip, port, fwmark) = match s.key {
                ServiceKey::Addr { protocol, addr, port } => {
                    (protocol.name().to_owned(), addr.to_string(), port, None)
                }
                ServiceKey::Fwmark { mark, .. } => ("FWM".to_owned(), String::new(), 0, Some(mark)),
            };
            ServiceSummary { name: s.name.clone(), protocol, vip, port, fwmark, results: group(&s.results) }
        })
        .collect();
    let populations = r
        .populations
        .iter()
        .map(|p| PopulationSummary {
            name: p.name.clone(),
            service: p.service.clone(),
            results: group(&p.results),
        })
        .collect();
    (services, populations, r.backends.iter().map(backend).collect())
}

/// The CSV columns of a group's results, after its own.
const GROUP_CSV: [&str; 13] = [
    "offered",
    "completed",
    "refused",
    "dropped",
    "lost_on_failover",
    "loss_fraction",
    "throughput_cps",
    "latency_mean_ms",
    "latency_p50_ms",
    "latency_p90_ms",
    "latency_p99_ms",
    "latency_p999_ms",
    "latency_max_ms",
];

fn percentile_fields(l: &LatencyMs) -> [String; 6] {
    [l.mean, l.p50, l.p90, l.p99, l.p999, l.max].map(num)
}

fn group_fields(g: &GroupSummary) -> Vec<String> {
    let c = &g.connections;
    let mut row: Vec<String> =
        [c.offered, c.completed, c.refused, c.dropped, c.lost_on_failover].map(|n| n.to_string()).to_vec();
    row.extend([num(g.loss_fraction), num(g.throughput_cps)]);
    row.extend(percentile_fields(&g.latency_ms));
    row
}

fn header(own: &[&str], rest: &[&str]) -> Vec<String> {
    own.iter().chain(rest).map(|s| s.to_string()).collect()
}

/// `services.csv`: one row per service.
pub(crate) fn services_csv(s: &Summary) -> String {
    let mut csv = Csv::new(&header(&["name", "protocol", "vip", "port", "fwmark"], &GROUP_CSV));
    for svc in &s.services {
        let mut row = vec![
            svc.name.clone(),
            svc.protocol.clone(),
            svc.vip.clone(),
            svc.port.to_string(),
            svc.fwmark.map_or(String::new(), |m| m.to_string()),
        ];
        row.extend(group_fields(&svc.results));
        csv.row(&row);
    }
    csv.finish()
}

/// `populations.csv`: one row per population.
pub(crate) fn populations_csv(s: &Summary) -> String {
    let mut csv = Csv::new(&header(&["name", "service"], &GROUP_CSV));
    for p in &s.populations {
        let mut row = vec![p.name.clone(), p.service.clone()];
        row.extend(group_fields(&p.results));
        csv.row(&row);
    }
    csv.finish()
}

/// `backends.csv`: one row per backend.
pub(crate) fn backends_csv(s: &Summary) -> String {
    let own = ["name", "utilization", "queue_mean", "queue_max", "queries", "refused"];
    let mut csv = Csv::new(&header(&own, &GROUP_CSV[7..]));
    for b in &s.backends {
        let mut row = vec![
            b.name.clone(),
            num(b.utilization),
            num(b.queue_mean),
            b.queue_max.to_string(),
            b.queries.to_string(),
            b.refused.to_string(),
        ];
        row.extend(percentile_fields(&b.latency_ms));
        csv.row(&row);
    }
    csv.finish()
}

/// Writes `services.csv`, `populations.csv` and `backends.csv` (a header only when the
/// list is empty, so that a reader finds every file).
pub(crate) fn write(dir: &Path, s: &Summary, w: &mut Written) -> io::Result<()> {
    w.write(dir, "services.csv", &services_csv(s))?;
    w.write(dir, "populations.csv", &populations_csv(s))?;
    w.write(dir, "backends.csv", &backends_csv(s))
}

/// Columns of the services and populations tables (text and HTML), after the names.
const GROUP_COLUMNS: [&str; 8] =
    ["offered", "completed", "loss %", "conn/s", "mean ms", "p50 ms", "p99 ms", "p99.9 ms"];

fn group_cells(g: &GroupSummary) -> Vec<String> {
    let l = &g.latency_ms;
    vec![
        g.connections.offered.to_string(),
        g.connections.completed.to_string(),
        format!("{:.2}", g.loss_fraction * 100.0),
        format!("{:.2}", g.throughput_cps),
        fmt_ms(l.mean),
        fmt_ms(l.p50),
        fmt_ms(l.p99),
        fmt_ms(l.p999),
    ]
}

fn service_table(s: &Summary) -> (Vec<&'static str>, Vec<Vec<String>>) {
    let mut head = vec!["service", "listens on"];
    head.extend(GROUP_COLUMNS);
    let rows = s
        .services
        .iter()
        .map(|svc| {
            let on = match svc.fwmark {
                Some(m) => format!("FWM {m}"),
                None if svc.vip.contains(':') => format!("{} [{}]:{}", svc.protocol, svc.vip, svc.port),
                None => format!("{} {}:{}", svc.protocol, svc.vip, svc.port),
            };
            let mut row = vec![svc.name.clone(), on];
            row.extend(group_cells(&svc.results));
            row
        })
        .collect();
    (head, rows)
}

fn population_table(s: &Summary) -> (Vec<&'static str>, Vec<Vec<String>>) {
    let mut head = vec!["population", "service"];
    head.extend(GROUP_COLUMNS);
    let rows = s
        .populations
        .iter()
        .map(|p| {
            let mut row = vec![p.name.clone(), p.service.clone()];
            row.extend(group_cells(&p.results));
            row
        })
        .collect();
    (head, rows)
}

const BACKEND_COLUMNS: [&str; 9] =
    ["backend", "util %", "queue mean", "queue max", "queries", "refused", "mean ms", "p50 ms", "p99 ms"];

fn backend_rows(s: &Summary) -> Vec<Vec<String>> {
    s.backends
        .iter()
        .map(|b| {
            vec![
                b.name.clone(),
                format!("{:.1}", b.utilization * 100.0),
                format!("{:.2}", b.queue_mean),
                b.queue_max.to_string(),
                b.queries.to_string(),
                b.refused.to_string(),
                fmt_ms(b.latency_ms.mean),
                fmt_ms(b.latency_ms.p50),
                fmt_ms(b.latency_ms.p99),
            ]
        })
        .collect()
}

/// Whether the services and populations say more than the run's totals: more than one
/// of either (one service and one population repeat the totals).
fn worth_breaking_down(s: &Summary) -> bool {
    s.services.len() > 1 || s.populations.len() > 1
}

/// The terminal block: the services and populations tables when there is more than one
/// of either, the backend tier when there is one.
pub(crate) fn text(out: &mut String, s: &Summary) {
    if worth_breaking_down(s) {
        let (head, rows) = service_table(s);
        out.push('\n');
        out.push_str(&text_table(&head, 2, &rows));
        let (head, rows) = population_table(s);
        out.push('\n');
        out.push_str(&text_table(&head, 2, &rows));
    }
    if !s.backends.is_empty() {
        out.push('\n');
        out.push_str(&text_table(&BACKEND_COLUMNS, 1, &backend_rows(s)));
        let _ = writeln!(out, "(backend latency: residence at the backend, link latency not included)");
    }
}

/// The page's "Breakdowns" section: services, populations, backend tier.
pub(crate) fn section(page: &mut Page, s: &Summary) {
    page.h2("breakdown", "Breakdowns");
    page.h3("Per virtual service");
    let (head, rows) = service_table(s);
    page.table(&head, 2, &rows);
    page.p(
        "note",
        "Each service's results are those of the client populations that connect to it \
         (the measured window; loss = refused + dropped + lost on fail-over).",
    );
    page.h3("Per client population");
    let (head, rows) = population_table(s);
    page.table(&head, 2, &rows);
    page.h3("Backend tier");
    if s.backends.is_empty() {
        page.p("note", "The scenario has no backend.");
    } else {
        page.table(&BACKEND_COLUMNS, 1, &backend_rows(s));
        page.p(
            "note",
            "Utilisation: busy fraction of the backend's cores; queue: queries present (in \
             service or waiting); latency: a query's residence at the backend, without the \
             link latency each way.",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_fraction_counts_every_failure() {
        let c = Connections { offered: 200, completed: 180, refused: 10, dropped: 6, lost_on_failover: 4 };
        assert_eq!(loss_fraction(&c), 0.1);
        assert_eq!(loss_fraction(&Connections::default()), 0.0);
    }

    #[test]
    fn empty_lists_write_headers_only() {
        let s = Summary::default();
        assert_eq!(services_csv(&s).lines().count(), 1);
        assert!(populations_csv(&s).starts_with("name,service,offered,"));
        assert_eq!(
            backends_csv(&s),
            "name,utilization,queue_mean,queue_max,queries,refused,latency_mean_ms,latency_p50_ms,\
             latency_p90_ms,latency_p99_ms,latency_p999_ms,latency_max_ms\n"
        );
        let mut out = String::new();
        text(&mut out, &s);
        assert_eq!(out, "");
    }
}
