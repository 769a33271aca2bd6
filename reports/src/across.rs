//! The real servers as distributions: what `summary.json`, the page, the CSV files and the
//! terminal show of a run with many real servers, or without full per-server detail
//! (`RunReport::server_detail`), instead of one row or one chart line a server: quantiles
//! across the servers, their CDFs, the top and bottom servers, and time charts of the
//! spread at each sample as bands. `real_servers.csv` keeps one row for every server.

use sim_core::model::{AcrossServers, RunReport, Sample, ServerReport, Spread};

use crate::chart::{Band, Chart, Line};
use crate::csv::{Csv, num};
use crate::html::Page;
use crate::text::{fmt_ms, text_table};
use crate::timechart::{t_s, time_chart};
use crate::units::{finite, quantile_ms};
use crate::{Quantiles, RealServerSummary, ServerLatencyMs, ServersAcross, Summary};

/// Most per-server lines on a time chart; more servers, or none sampled one by one, and the
/// chart shows their spread as bands.
pub(crate) const CHART_LINES_MAX: usize = 32;

/// Most real servers listed one a row on the page and in the terminal; more and they show
/// as distributions and top/bottom tables.
pub(crate) const LIST_MAX: usize = 64;

/// Servers in each top/bottom list.
pub(crate) const TOP_N: usize = 10;

/// Points of a CDF across servers (a quantile every 0.5%, and the extremes).
const CDF_POINTS: usize = 200;

/// The nearest-rank q-quantile of sorted values (0 for none).
fn nearest_rank(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The finite values, sorted.
fn sorted(xs: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut v: Vec<f64> = xs.filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    v
}

fn mean(sorted: &[f64]) -> f64 {
    if sorted.is_empty() { 0.0 } else { finite(sorted.iter().sum::<f64>() / sorted.len() as f64) }
}

/// A figure's distribution across servers (non-finite values left out).
pub(crate) fn quantiles(xs: impl Iterator<Item = f64>) -> Quantiles {
    let v = sorted(xs);
    let q = |q| nearest_rank(&v, q);
    Quantiles {
        min: q(0.0),
        p1: q(0.01),
        p10: q(0.1),
        p50: q(0.5),
        p90: q(0.9),
        p99: q(0.99),
        max: q(1.0),
        mean: mean(&v),
    }
}

/// A figure's [`Spread`] across servers, non-finite values left out (the simulator's one
/// definition, [`Spread::of`], as it computes `Sample::across`).
pub(crate) fn spread(xs: impl Iterator<Item = f64>) -> Spread {
    let mut v: Vec<f64> = xs.filter(|x| x.is_finite()).collect();
    Spread::of(&mut v)
}

/// The per-real-server table's rows (text and HTML share them).
pub(crate) const SERVER_COLUMNS: [&str; 8] =
    ["server", "address", "conns", "util %", "weight", "active mean", "p50 ms", "p99 ms"];

pub(crate) fn server_row(rs: &RealServerSummary) -> Vec<String> {
    vec![
        rs.name.clone(),
        rs.address.clone(),
        rs.connections.to_string(),
        format!("{:.1}", rs.utilization * 100.0),
        rs.weight_final.to_string(),
        format!("{:.2}", rs.active_conns_mean),
        fmt_ms(rs.latency_ms.p50),
        fmt_ms(rs.latency_ms.p99),
    ]
}

/// The page's rows: [`SERVER_COLUMNS`], the mean response time and the refusals.
pub(crate) fn page_server_rows(list: &[RealServerSummary]) -> Vec<Vec<String>> {
    list.iter()
        .map(|rs| {
            let mut row = server_row(rs);
            row.extend([fmt_ms(rs.latency_ms.mean), rs.refused.to_string()]);
            row
        })
        .collect()
}

/// A real server's row of `summary.json`.
pub(crate) fn real_server(s: &ServerReport) -> RealServerSummary {
    RealServerSummary {
        name: s.name.clone(),
        address: s.address.to_string(),
        connections: s.connections,
        utilization: finite(s.utilization),
        weight_final: s.weight_final,
        active_conns_mean: finite(s.active_conns_mean),
        latency_ms: ServerLatencyMs {
            mean: finite(s.latency.mean_ns() / 1e6),
            p50: quantile_ms(&s.latency, 0.5),
            p99: quantile_ms(&s.latency, 0.99),
        },
        refused: s.refused,
    }
}

/// The first [`TOP_N`] of `rows` (indices into `all`) by `key`, highest first when
/// `desc`; ties keep configuration order.
fn top(
    all: &[RealServerSummary],
    rows: &[usize],
    key: fn(&RealServerSummary) -> f64,
    desc: bool,
) -> Vec<RealServerSummary> {
    let mut idx = rows.to_vec();
    idx.sort_by(|&a, &b| {
        let o = key(&all[a]).total_cmp(&key(&all[b]));
        if desc { o.reverse() } else { o }
    });
    idx.iter().take(TOP_N).map(|&i| all[i].clone()).collect()
}

/// Every server's row, and their distributions; with `tops`, the top and bottom lists.
pub(crate) fn of_run(r: &RunReport, tops: bool) -> (Vec<RealServerSummary>, ServersAcross) {
    let all: Vec<RealServerSummary> = r.servers.iter().map(real_server).collect();
    let answered: Vec<usize> = (0..all.len()).filter(|&i| r.servers[i].latency.count() > 0).collect();
    let over_answered = |f: fn(&RealServerSummary) -> f64| quantiles(answered.iter().map(|&i| f(&all[i])));
    let mut a = ServersAcross {
        servers: all.len() as u64,
        answered: answered.len() as u64,
        utilization: quantiles(all.iter().map(|s| s.utilization)),
        connections: quantiles(all.iter().map(|s| s.connections as f64)),
        active_conns_mean: quantiles(all.iter().map(|s| s.active_conns_mean)),
        latency_mean_ms: over_answered(|s| s.latency_ms.mean),
        latency_p99_ms: over_answered(|s| s.latency_ms.p99),
        ..ServersAcross::default()
    };
    if tops {
        let every: Vec<usize> = (0..all.len()).collect();
        a.busiest = top(&all, &every, |s| s.utilization, true);
        a.idlest = top(&all, &every, |s| s.utilization, false);
        a.slowest = top(&all, &answered, |s| s.latency_ms.p99, true);
        a.fastest = top(&all, &answered, |s| s.latency_ms.p99, false);
    }
    (all, a)
}

/// `real_servers.csv`: one row for every real server (its results over the measured
/// window), whatever detail the run kept.
pub(crate) fn real_servers_csv(r: &RunReport) -> String {
    let mut csv = Csv::new(&[
        "server",
        "address",
        "connections",
        "utilization",
        "weight_final",
        "active_conns_mean",
        "latency_mean_ms",
        "latency_p50_ms",
        "latency_p99_ms",
        "responses",
        "refused",
    ]);
    for s in &r.servers {
        let rs = real_server(s);
        // No measured response: no response time (an empty field, not 0).
        let ms = |x: f64| if s.latency.count() == 0 { String::new() } else { num(x) };
        csv.row(&[
            rs.name,
            rs.address,
            rs.connections.to_string(),
            num(rs.utilization),
            rs.weight_final.to_string(),
            num(rs.active_conns_mean),
            ms(rs.latency_ms.mean),
            ms(rs.latency_ms.p50),
            ms(rs.latency_ms.p99),
            s.latency.count().to_string(),
            rs.refused.to_string(),
        ]);
    }
    csv.finish()
}

/// A sample's spread across servers: the simulator's (`Sample::across`), or computed
/// from its per-server entries; `None` when it has neither.
pub(crate) fn sample_spread(s: &Sample) -> Option<AcrossServers> {
    if let Some(a) = s.across {
        return Some(a);
    }
    if s.servers.is_empty() {
        return None;
    }
    let of = |f: fn(&sim_core::model::ServerSample) -> f64| spread(s.servers.iter().map(f));
    Some(AcrossServers {
        utilization: of(|x| x.utilization),
        active_conns: of(|x| f64::from(x.active_conns)),
        weight: of(|x| f64::from(x.weight)),
    })
}

/// A figure of [`AcrossServers`] and a statistic of a [`Spread`], by their CSV names.
type Figure = (&'static str, fn(&AcrossServers) -> Spread);
type Stat = (&'static str, fn(&Spread) -> f64);

/// The figures of [`AcrossServers`], as `series.csv` names them.
const FIGURES: [Figure; 3] =
    [("utilization", |a| a.utilization), ("active_conns", |a| a.active_conns), ("weight", |a| a.weight)];

const STATS: [Stat; 6] = [
    ("min", |s| s.min),
    ("p10", |s| s.p10),
    ("p50", |s| s.p50),
    ("p90", |s| s.p90),
    ("max", |s| s.max),
    ("mean", |s| s.mean),
];

/// `series.csv`'s columns of the spread across servers (`utilization_p50`, ...); present
/// only when the samples carry `Sample::across` (no per-server time series).
pub(crate) fn series_header(r: &RunReport) -> Vec<String> {
    if !r.series.iter().any(|s| s.across.is_some()) {
        return Vec::new();
    }
    FIGURES.iter().flat_map(|(f, _)| STATS.iter().map(move |(s, _)| format!("{f}_{s}"))).collect()
}

/// A sample's fields for [`series_header`]'s columns (empty fields without a spread).
pub(crate) fn series_fields(s: &Sample, columns: usize) -> Vec<String> {
    match s.across {
        Some(a) if columns > 0 => {
            FIGURES.iter().flat_map(|(_, f)| STATS.iter().map(move |(_, st)| num(st(&f(&a))))).collect()
        }
        _ => vec![String::new(); columns],
    }
}

/// Whether the run's time charts draw one line a real server (few servers, sampled one by
/// one); else they draw the spread across servers as bands.
pub(crate) fn lines_per_server(r: &RunReport) -> bool {
    r.servers.len() <= CHART_LINES_MAX && r.series.iter().all(|s| s.across.is_none())
}

/// A time chart of a figure's spread across servers at each sample (`None`: a gap):
/// min–max and p10–p90 bands, the median and the mean; `scale` multiplies every value
/// (100 for %).
pub(crate) fn band_chart(
    r: &RunReport,
    (title, y_label): (&str, &str),
    f: impl Fn(&Sample) -> Option<Spread>,
    scale: f64,
) -> Chart {
    let spreads: Vec<(f64, Option<Spread>)> = r.series.iter().map(|s| (t_s(s), f(s))).collect();
    let band = |name: &str, lo: fn(&Spread) -> f64, hi: fn(&Spread) -> f64, opacity| Band {
        name: name.into(),
        points: spreads
            .iter()
            .map(|(t, sp)| sp.map_or((*t, f64::NAN, f64::NAN), |sp| (*t, lo(&sp) * scale, hi(&sp) * scale)))
            .collect(),
        color: 0,
        opacity,
    };
    let line = |name: &str, v: fn(&Spread) -> f64| Line {
        name: name.into(),
        points: spreads.iter().map(|(t, sp)| (*t, sp.map_or(f64::NAN, |sp| v(&sp) * scale))).collect(),
        ci: Vec::new(),
    };
    let mut c = time_chart(title, y_label, vec![line("median", |s| s.p50), line("mean", |s| s.mean)]);
    c.bands = vec![band("min–max", |s| s.min, |s| s.max, 0.15), band("p10–p90", |s| s.p10, |s| s.p90, 0.3)];
    c
}

/// The spread of the spare capacity the agents last reported, over the servers that had
/// reported by the sample (`None` before any did, or without per-server samples).
pub(crate) fn capacity_spread(s: &Sample) -> Option<Spread> {
    let reported = || s.servers.iter().filter_map(|x| x.capacity);
    reported().next().map(|_| spread(reported()))
}

/// A CDF across servers: `(value × scale, fraction of servers ≤ value)`.
fn cdf(xs: impl Iterator<Item = f64>, scale: f64) -> Vec<(f64, f64)> {
    let v = sorted(xs);
    if v.is_empty() {
        return Vec::new();
    }
    let mut points: Vec<(f64, f64)> = (0..=CDF_POINTS)
        .map(|i| i as f64 / CDF_POINTS as f64)
        .map(|q| (nearest_rank(&v, q) * scale, q.max(1.0 / v.len() as f64)))
        .collect();
    points.dedup();
    points
}

const QUANTILE_COLUMNS: [&str; 9] =
    ["across servers", "min", "p1", "p10", "p50", "p90", "p99", "max", "mean"];

fn quantile_rows(a: &ServersAcross) -> Vec<Vec<String>> {
    let row = |name: &str, q: &Quantiles, f: &dyn Fn(f64) -> String| {
        let mut r = vec![name.to_string()];
        r.extend([q.min, q.p1, q.p10, q.p50, q.p90, q.p99, q.max, q.mean].map(f));
        r
    };
    vec![
        row("utilisation %", &a.utilization, &|x| format!("{:.1}", x * 100.0)),
        row("connections", &a.connections, &|x| format!("{x:.0}")),
        row("active mean", &a.active_conns_mean, &|x| format!("{x:.2}")),
        row("mean ms", &a.latency_mean_ms, &|x| fmt_ms(x)),
        row("p99 ms", &a.latency_p99_ms, &|x| fmt_ms(x)),
    ]
}

/// What the real-server section says first; `then` names the lists that follow.
fn lead(a: &ServersAcross, detail: bool, then: &str) -> String {
    let why = if detail { "too many to list one a row" } else { "the run kept no full per-server detail" };
    format!(
        "{} real servers ({why}), {} of them answered a measured request: their distributions, then {then}. \
         Response-time quantiles are over the servers that answered. Every server has a row in \
         real_servers.csv.",
        a.servers, a.answered
    )
}

/// Servers in each of the terminal's lists.
const TEXT_TOP_N: usize = 5;

/// The summary's spread across the real servers, or the run's own when the summary has
/// none (with its lists).
fn across<'a>(r: &RunReport, s: &'a Summary) -> std::borrow::Cow<'a, ServersAcross> {
    match &s.real_servers_across {
        Some(a) if !a.busiest.is_empty() => std::borrow::Cow::Borrowed(a),
        _ => std::borrow::Cow::Owned(of_run(r, true).1),
    }
}

/// The page's real-server section for a run whose servers are not listed one a row.
pub(crate) fn page_section(page: &mut Page, r: &RunReport, s: &Summary) {
    let a = &*across(r, s);
    page.p("lead", &lead(a, r.server_detail, &format!("the top and bottom {TOP_N}")));
    page.table(&QUANTILE_COLUMNS, 1, &quantile_rows(a));
    let answered = || r.servers.iter().filter(|x| x.latency.count() > 0);
    let narrow = |title: &str, x_label: &str, points| Chart {
        title: title.into(),
        x_label: x_label.into(),
        y_label: "fraction of servers ≤ x".into(),
        y_from_zero: true,
        y_at_least: 1.0,
        narrow: true,
        lines: vec![Line { name: "real servers".into(), points, ci: Vec::new() }],
        ..Chart::default()
    };
    let util = narrow(
        "Utilisation across real servers (CDF)",
        "utilisation [%]",
        cdf(r.servers.iter().map(|x| x.utilization), 100.0),
    );
    let mut p99 = narrow(
        "p99 across real servers (CDF)",
        "p99 response time [ms] (log scale)",
        cdf(answered().map(|x| quantile_ms(&x.latency, 0.99)), 1.0),
    );
    p99.x_log = true;
    page.chart_pair(
        [&util, &p99],
        "The fraction of real servers at or below each utilisation (measured window) and each p99 response \
         time (servers that answered a measured request). A step: servers alike; a long tail: a few outliers.",
        "no real server",
    );
    let mut header = SERVER_COLUMNS.to_vec();
    header.extend(["mean ms", "refused"]);
    for (title, list) in [
        ("Busiest (highest utilisation)", &a.busiest),
        ("Idlest (lowest utilisation)", &a.idlest),
        ("Slowest (highest p99)", &a.slowest),
        ("Fastest (lowest p99)", &a.fastest),
    ] {
        page.h3(title);
        page.table(&header, 2, &page_server_rows(list));
    }
}

/// The terminal's real-server block for a run whose servers are not listed one a row.
pub(crate) fn text(out: &mut String, r: &RunReport, s: &Summary) {
    let a = &*across(r, s);
    out.push_str(&lead(
        a,
        r.server_detail,
        &format!("the {TEXT_TOP_N} busiest and the {TEXT_TOP_N} slowest"),
    ));
    out.push('\n');
    out.push_str(&text_table(&QUANTILE_COLUMNS, 1, &quantile_rows(a)));
    for (title, list) in [("busiest", &a.busiest), ("slowest (p99)", &a.slowest)] {
        out.push_str(&format!("\n{title}:\n"));
        let rows: Vec<Vec<String>> = list.iter().take(TEXT_TOP_N).map(server_row).collect();
        out.push_str(&text_table(&SERVER_COLUMNS, 2, &rows));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank_and_skip_non_finite_values() {
        let q = quantiles([5.0, 1.0, f64::NAN, 3.0, 2.0, 4.0].into_iter());
        assert_eq!((q.min, q.p10, q.p50, q.p90, q.max, q.mean), (1.0, 1.0, 3.0, 5.0, 5.0, 3.0));
        let hundred = quantiles((1..=100).map(f64::from));
        assert_eq!((hundred.p1, hundred.p10, hundred.p50, hundred.p99), (1.0, 10.0, 50.0, 99.0));
        assert_eq!(quantiles(std::iter::empty()), Quantiles::default());
        let s = spread((1..=100).map(f64::from));
        assert_eq!((s.min, s.p10, s.p50, s.p90, s.max, s.mean), (1.0, 10.0, 50.0, 90.0, 100.0, 50.5));
    }

    #[test]
    fn top_lists_order_by_the_key_and_keep_configuration_order_on_ties() {
        let rs = |name: &str, u: f64| RealServerSummary {
            name: name.into(),
            utilization: u,
            ..Default::default()
        };
        let all = [rs("a", 0.5), rs("b", 0.9), rs("c", 0.5), rs("d", 0.1)];
        let names = |v: Vec<RealServerSummary>| v.into_iter().map(|s| s.name).collect::<Vec<_>>();
        assert_eq!(names(top(&all, &[0, 1, 2, 3], |s| s.utilization, true)), ["b", "a", "c", "d"]);
        assert_eq!(names(top(&all, &[0, 1, 2, 3], |s| s.utilization, false)), ["d", "a", "c", "b"]);
        assert_eq!(names(top(&all, &[0, 2], |s| s.utilization, true)), ["a", "c"], "only the rows given");
    }

    #[test]
    fn a_cdf_across_servers_is_bounded_and_rises() {
        let c = cdf((0..100_000).map(|i| f64::from(i) / 100_000.0), 100.0);
        assert!(c.len() <= CDF_POINTS + 1);
        assert!(c.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 < w[1].1));
        assert_eq!(c.last(), Some(&(0.99999 * 100.0, 1.0)));
        assert!(cdf(std::iter::empty(), 1.0).is_empty());
    }
}
