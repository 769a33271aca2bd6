//! A run's report directory: `summary.json`, `series.csv`, `servers.csv`, `ha_events.csv`
//! (with HA), `report.html`.

use std::io;
use std::path::Path;

use lvs_ipvs::ipvsadm;
use sim_core::model::{AcrossServers, RunReport, Sample, Spread};
use sim_core::stats::Latency;

use crate::chart::{Chart, Line};
use crate::csv::{Csv, num};
use crate::html::{Page, nav};
use crate::summary;
use crate::text::fmt_ms;
use crate::timechart::{t_s, time_chart, with_events};
use crate::units::{ns_to_ms, ns_to_s, quantile_ms};
use crate::{RunMeta, Summary, Written};

/// Interval lengths [s] of the samples: each ends at its `t`, the first starts at 0.
fn intervals_s(series: &[Sample]) -> Vec<f64> {
    let mut prev = 0;
    series
        .iter()
        .map(|s| {
            let d = s.t.as_nanos().saturating_sub(prev);
            prev = s.t.as_nanos();
            ns_to_s(d)
        })
        .collect()
}

/// A percentile of an interval's responses [ms]; NaN (a gap in a chart, an empty CSV
/// field) when the interval had none: no response is not a 0 ms response.
fn answered_ms(s: &Sample, ns: u64) -> f64 {
    if s.responses == 0 { f64::NAN } else { ns_to_ms(ns) }
}

/// `series.csv`: one row per sample.
pub(crate) fn series_csv(r: &RunReport) -> String {
    let mut header: Vec<String> =
        ["t_s", "responses", "throughput_rps", "p50_ms", "p99_ms", "open_conns"].map(String::from).to_vec();
    header.push("failed".into());
    header.extend(r.directors.iter().map(|d| format!("link_utilization_{}", d.name)));
    header.extend(r.directors.iter().map(|d| format!("share_{}", d.name)));
    let across = crate::across::series_header(r);
    let across_columns = across.len();
    header.extend(across);
    let dos = crate::dos::series_header(r);
    let dos_columns = dos.len();
    header.extend(dos);
    let mut csv = Csv::new(&header);
    for (s, iv) in r.series.iter().zip(intervals_s(&r.series)) {
        // Empty fields (NaN) where the interval has no value: no response, no percentile.
        let rate = if iv > 0.0 { s.responses as f64 / iv } else { f64::NAN };
        let mut row = vec![
            num(ns_to_s(s.t.as_nanos())),
            s.responses.to_string(),
            num(rate),
            num(answered_ms(s, s.p50_ns)),
            num(answered_ms(s, s.p99_ns)),
            s.open_conns.to_string(),
            s.failed.to_string(),
        ];
        // One field per director whatever the sample holds, so every row fits the header.
        let per_director = |xs: &[f64]| {
            (0..r.directors.len()).map(|i| xs.get(i).map_or(String::new(), |&x| num(x))).collect::<Vec<_>>()
        };
        row.extend(per_director(&s.director_link_utilization));
        row.extend(per_director(&s.director_share));
        row.extend(crate::across::series_fields(s, across_columns));
        if dos_columns > 0 {
            row.extend(crate::dos::series_fields(s, dos_columns));
        }
        csv.row(&row);
    }
    csv.finish()
}

/// `servers.csv`: one row per sample per real server (none without per-server samples:
/// `real_servers.csv` then has every server's totals).
pub(crate) fn servers_csv(r: &RunReport) -> String {
    let mut csv =
        Csv::new(&["t_s", "server", "utilization", "active_conns", "inactive_conns", "weight", "capacity"]);
    for s in &r.series {
        for (ss, srv) in s.servers.iter().zip(&r.servers) {
            csv.row(&[
                num(ns_to_s(s.t.as_nanos())),
                srv.name.clone(),
                num(ss.utilization),
                ss.active_conns.to_string(),
                ss.inactive_conns.to_string(),
                ss.weight.to_string(),
                // Empty before the first report, and without feedback.
                ss.capacity.map_or(String::new(), num),
            ]);
        }
    }
    csv.finish()
}

pub(crate) fn write(dir: &Path, meta: &RunMeta, r: &RunReport) -> io::Result<Written> {
    std::fs::create_dir_all(dir)?;
    let s = summary::build(meta, r);
    let mut w = Written::default();
    w.write(dir, "summary.json", &summary::to_json(&s))?;
    w.write(dir, "series.csv", &series_csv(r))?;
    w.write(dir, "servers.csv", &servers_csv(r))?;
    w.write(dir, "real_servers.csv", &crate::across::real_servers_csv(r))?;
    crate::breakdown::write(dir, &s, &mut w)?;
    if let Some(h) = &s.ha {
        w.write(dir, "ha_events.csv", &crate::ha::events_csv(h))?;
    }
    w.write(dir, "report.html", &html(meta, &s, r))?;
    Ok(w)
}

/// The response-time CDF from the hdrhistogram: quantiles on a grid that is finer in the
/// tail, as `(ms, fraction)`.
fn cdf_points(l: &Latency) -> Vec<(f64, f64)> {
    if l.count() == 0 {
        return Vec::new();
    }
    let mut qs: Vec<f64> = (0..100).map(|i| f64::from(i) / 100.0).collect();
    qs.extend((1..10).map(|i| 0.99 + f64::from(i) / 1000.0));
    qs.extend((1..10).map(|i| 0.999 + f64::from(i) / 10_000.0));
    qs.extend([0.99995, 0.99999, 1.0]);
    qs.iter().map(|&q| (quantile_ms(l, q), q)).collect()
}

/// The tail: `(ms, 1 − CDF)` down to one request in the histogram (below that the
/// fraction is noise), for a log-log plot.
fn tail_points(l: &Latency) -> Vec<(f64, f64)> {
    let floor = 1.0 / l.count().max(1) as f64;
    cdf_points(l).into_iter().map(|(ms, q)| (ms, 1.0 - q)).filter(|&(_, p)| p >= floor * 0.999).collect()
}

/// One line per real server of a per-server sample value.
fn per_server(r: &RunReport, f: impl Fn(&sim_core::model::ServerSample) -> f64) -> Vec<Line> {
    r.servers
        .iter()
        .enumerate()
        .map(|(i, srv)| Line {
            name: srv.name.clone(),
            points: r.series.iter().filter_map(|s| Some((t_s(s), f(s.servers.get(i)?)))).collect(),
            ci: Vec::new(),
        })
        .collect()
}

/// The response-time CDF and its tail (1 − CDF, log-log), side by side.
fn distribution(page: &mut Page, r: &RunReport) {
    let line = |points| vec![Line { name: "measured requests".into(), points, ci: Vec::new() }];
    let cdf = Chart {
        title: "Response-time distribution (CDF)".into(),
        x_label: "response time [ms] (log scale)".into(),
        y_label: "fraction of requests ≤ x".into(),
        x_log: true,
        y_from_zero: true,
        y_at_least: 1.0,
        narrow: true,
        lines: line(cdf_points(&r.latency)),
        ..Chart::default()
    };
    let tail = Chart {
        title: "Tail (1 − CDF, log-log)".into(),
        x_label: "response time [ms] (log scale)".into(),
        y_label: "fraction of requests > x (log scale)".into(),
        x_log: true,
        y_log: true,
        narrow: true,
        lines: line(tail_points(&r.latency)),
        ..Chart::default()
    };
    page.chart_pair(
        [&cdf, &tail],
        "From the measured window's histogram (3 significant digits). The tail plot's y axis is the \
         fraction of requests slower than x: 0.01 at the p99, 0.001 at the p99.9.",
        "no response measured",
    );
}

fn charts(page: &mut Page, meta: &RunMeta, r: &RunReport) {
    let no_series = "no time series (the scenario sets no sample interval)";
    let chart = |title: &str, y_label: &str, lines| with_events(time_chart(title, y_label, lines), meta);
    let pct = |name: &str, f: fn(&Sample) -> u64| Line {
        name: name.into(),
        points: r.series.iter().map(|s| (t_s(s), answered_ms(s, f(s)))).collect(),
        ci: Vec::new(),
    };
    let lines = vec![pct("p50", |s| s.p50_ns), pct("p99", |s| s.p99_ns)];
    let mut c = chart("Response time over time", "response time [ms] (log scale)", lines);
    c.y_log = true;
    let caption = "Percentiles of the requests answered in each sample interval, on a log scale (one \
                   slow interval does not flatten the rest). A gap: no request was answered in that \
                   interval.";
    page.chart(&c, caption, no_series);
    distribution(page, r);
    let rate = r
        .series
        .iter()
        .zip(intervals_s(&r.series))
        .map(|(s, iv)| (t_s(s), if iv > 0.0 { s.responses as f64 / iv } else { f64::NAN }));
    let lines = vec![Line { name: "responses".into(), points: rate.collect(), ci: Vec::new() }];
    page.chart(&chart("Responses per second", "responses [1/s]", lines), "", no_series);
    let open = r.series.iter().map(|s| (t_s(s), s.open_conns as f64)).collect();
    let lines = vec![Line { name: "client connections open".into(), points: open, ci: Vec::new() }];
    let mut c = chart("Open connections over time", "connections", lines);
    c.y_integer = true;
    page.chart(&c, "", no_series);
    let lines = r
        .directors
        .iter()
        .enumerate()
        .map(|(i, d)| Line {
            name: d.name.clone(),
            points: r
                .series
                .iter()
                .filter_map(|s| Some((t_s(s), s.director_link_utilization.get(i)? * 100.0)))
                .collect(),
            ci: Vec::new(),
        })
        .collect();
    let mut c = chart("Director link utilisation", "busiest link direction [%]", lines);
    c.y_at_least = 100.0;
    page.chart(&c, "The busiest of each director's four link directions in each interval.", no_series);
    if !crate::across::lines_per_server(r) {
        server_bands(page, meta, r);
        return;
    }
    let lines = per_server(r, |s| f64::from(s.active_conns));
    let mut c = chart("IPVS ActiveConn per real server", "active connections", lines);
    c.y_integer = true;
    page.chart(&c, "", no_series);
    let mut c =
        chart("Utilisation per real server", "CPU utilisation [%]", per_server(r, |s| s.utilization * 100.0));
    c.y_at_least = 100.0;
    page.chart(&c, "Busy fraction of each server's cores in each sample interval.", no_series);
    let lines = per_server(r, |s| f64::from(s.weight));
    let caption = if r.feedback.is_some() { "Set by the feedback masters (see Feedback below)." } else { "" };
    let mut c = chart("IPVS weight per real server", "weight", lines);
    c.y_integer = true;
    page.chart(&c, caption, no_series);
}

/// The per-server time charts of a run with many servers (or none sampled one by one):
/// the spread across servers at each sample, as bands.
fn server_bands(page: &mut Page, meta: &RunMeta, r: &RunReport) {
    let no_series = "no time series (the scenario sets no sample interval)";
    let caption = |what: &str| {
        format!(
            "{what}, across the {} real servers: the light band from the lowest to the highest server, the \
             darker one from the 10th to the 90th percentile, the median and the mean as lines.",
            r.servers.len()
        )
    };
    let band = |titles, f: fn(&AcrossServers) -> Spread, scale| {
        let of = move |s: &Sample| crate::across::sample_spread(s).map(|a| f(&a));
        with_events(crate::across::band_chart(r, titles, of, scale), meta)
    };
    let mut c = band(("Utilisation across real servers", "CPU utilisation [%]"), |a| a.utilization, 100.0);
    c.y_at_least = 100.0;
    page.chart(&c, &caption("Busy fraction of the cores in each sample interval"), no_series);
    let mut c = band(("IPVS ActiveConn across real servers", "active connections"), |a| a.active_conns, 1.0);
    c.y_integer = true;
    page.chart(&c, &caption("IPVS ActiveConn"), no_series);
    let mut c = band(("IPVS weight across real servers", "weight"), |a| a.weight, 1.0);
    c.y_integer = true;
    let fb = if r.feedback.is_some() { " Set by the feedback masters (see Feedback below)." } else { "" };
    page.chart(&c, &format!("{}{fb}", caption("IPVS weight")), no_series);
}

/// The feedback section: the loop's counters, a per-server table and the reported
/// capacity over time (right after the weight and utilisation charts it explains).
fn feedback_section(page: &mut Page, meta: &RunMeta, s: &Summary, r: &RunReport) {
    let Some(f) = &s.feedback else { return };
    page.h2("feedback", "Feedback");
    page.key_values(&summary::feedback_lines(f));
    let (shown, note) = summary::feedback_shown(f, r);
    if let Some(note) = note {
        page.p("note", &format!("{note}."));
    }
    page.table(&summary::FEEDBACK_COLUMNS, 1, &summary::feedback_rows(&shown));
    let title = "Reported spare capacity per real server";
    let c = if crate::across::lines_per_server(r) {
        let lines: Vec<Line> = r
            .servers
            .iter()
            .enumerate()
            .map(|(i, srv)| Line {
                name: srv.name.clone(),
                // A server's line starts at its first report.
                points: r
                    .series
                    .iter()
                    .filter_map(|smp| Some((t_s(smp), smp.servers.get(i)?.capacity? * 100.0)))
                    .collect(),
                ci: Vec::new(),
            })
            .collect();
        time_chart(title, "spare capacity [%]", lines)
    } else {
        let titles = ("Reported spare capacity across real servers", "spare capacity [%]");
        crate::across::band_chart(r, titles, crate::across::capacity_spread, 100.0)
    };
    let mut c = with_events(c, meta);
    c.y_at_least = 100.0;
    page.chart(
        &c,
        "The spare capacity each agent last reported by each sample time (100% = idle); the \
         masters turn it into the weights charted above.",
        "no agent report was sampled (or the run kept no per-server samples)",
    );
}

fn summary_tables(page: &mut Page, meta: &RunMeta, s: &Summary, r: &RunReport) {
    let (w0, w1) = (ns_to_s(r.window.0.as_nanos()), ns_to_s(r.window.1.as_nanos()));
    let mut kv = vec![("scenario", s.scenario.clone())];
    if !meta.source.is_empty() {
        kv.push(("scenario file", meta.source.clone()));
    }
    if !meta.overrides.is_empty() {
        kv.push(("overrides", meta.overrides.join("  ")));
    }
    kv.extend([
        ("seed", s.seed.to_string()),
        ("simulated", format!("{:.3} s (measured window {w0:.3}–{w1:.3} s)", s.simulated_s)),
        ("events", s.events.to_string()),
        ("wall clock", format!("{:.2} s", s.wall_s)),
        ("connections", summary::outcomes_line(&s.connections)),
        ("throughput", format!("{:.2} conn/s", s.throughput_cps)),
        ("response time", summary::latency_line(&s.latency_ms)),
        (
            "utilisation spread",
            format!("{:.1} % (highest − lowest real-server utilisation)", s.utilization_spread * 100.0),
        ),
    ]);
    page.key_values(&kv);
    let l = &s.latency_ms;
    page.h3("Response time [ms]");
    let ci = if l.mean_ci95 > 0.0 { fmt_ms(l.mean_ci95) } else { "–".into() };
    let row = [l.mean, l.p50, l.p90, l.p99, l.p999, l.max].map(fmt_ms);
    let mut cells = vec![row[0].clone(), ci];
    cells.extend(row[1..].iter().cloned());
    page.table(&["mean", "± 95% (batch means)", "p50", "p90", "p99", "p99.9", "max"], 0, &[cells]);
}

fn html(meta: &RunMeta, s: &Summary, r: &RunReport) -> String {
    let mut page = Page::new(&format!("lvsim run: {}", s.scenario));
    page.raw(&format!("<h1>lvsim run: {}</h1>\n", crate::text::escape(&s.scenario)));
    if !meta.description.is_empty() {
        page.p("lead", &meta.description);
    }
    let mut links = vec![("summary", "Summary"), ("servers", "Real servers"), ("directors", "Directors")];
    links.push(("charts", "Charts"));
    if s.feedback.is_some() {
        links.push(("feedback", "Feedback"));
    }
    if s.ha.is_some() {
        links.push(("ha", "High availability"));
    }
    links.push(("ipvs", "IPVS tables"));
    page.raw(&nav(&links));
    page.h2("summary", "Summary");
    for w in &s.warnings {
        page.p("warning", &format!("warning: {w}"));
    }
    summary_tables(&mut page, meta, s, r);
    page.h2("servers", "Real servers");
    if summary::listed(s, r) {
        let mut header = crate::across::SERVER_COLUMNS.to_vec();
        header.extend(["mean ms", "refused"]);
        page.table(&header, 2, &crate::across::page_server_rows(&s.real_servers));
    } else {
        crate::across::page_section(&mut page, r, s);
    }
    page.h2("directors", "Directors");
    let header = ["director", "InPkts", "OutPkts", "InBytes", "OutBytes", "link %", "CPU %", "dropped pkts"];
    let rows: Vec<Vec<String>> = s
        .directors
        .iter()
        .map(|d| {
            vec![
                d.name.clone(),
                d.in_pkts.to_string(),
                d.out_pkts.to_string(),
                d.in_bytes.to_string(),
                d.out_bytes.to_string(),
                format!("{:.1}", d.link_utilization * 100.0),
                format!("{:.1}", d.cpu_utilization * 100.0),
                d.dropped_packets.to_string(),
            ]
        })
        .collect();
    page.table(&header, 1, &rows);
    crate::breakdown::section(&mut page, s);
    page.h2("charts", "Charts");
    charts(&mut page, meta, r);
    feedback_section(&mut page, meta, s, r);
    if let Some(h) = &s.ha {
        crate::ha::section(&mut page, h, meta, r);
    }
    if let Some(e) = &s.ecmp {
        crate::ecmp::section(&mut page, e);
    }
    if let Some(d) = &s.dos {
        crate::dos::section(&mut page, d, meta, r);
    }
    page.h2("ipvs", "IPVS tables at the end of the run");
    for d in &r.directors {
        page.h3(&format!("director {}", d.name));
        let cut = summary::ipvs_listing;
        page.pre(&format!("# ipvsadm -L -n\n{}", cut(&ipvsadm::list(&d.ipvs))));
        page.pre(&format!("# ipvsadm -L -n --stats\n{}", cut(&ipvsadm::list_stats(&d.ipvs))));
        page.pre(&format!("# ipvsadm -L -n --rate\n{}", cut(&ipvsadm::list_rate(&d.ipvs))));
    }
    page.finish()
}
