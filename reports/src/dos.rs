//! SYN floods and IPVS's DoS defences in a run's files: `summary.json`'s `dos`, the
//! terminal block, `series.csv`'s DoS columns and the page's section (table size,
//! defences, legitimate connections refused and dropped, p99, over time).

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use sim_core::model::{DosReport, FloodReport, RunReport, Sample};

use crate::RunMeta;
use crate::chart::Line;
use crate::html::Page;
use crate::timechart::{t_s, time_chart, with_events};
use crate::units::ns_to_ms;

/// `summary.json`'s `dos`: the headline figures, then per director and per flood.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DosSummary {
    /// The most entries a director's table held (largest over the directors).
    pub peak_entries: u64,
    /// Flood SYNs sent.
    pub flood_syns: u64,
    /// Flood SYNs that made an entry.
    pub flood_entries: u64,
    /// New connections (flood and legitimate) dropped by `drop_packet`.
    pub packets_dropped: u64,
    /// Entries removed by `drop_entry`.
    pub entries_dropped: u64,
    /// New connections (flood and legitimate) dropped for lack of memory.
    pub no_memory: u64,
    /// Legitimate connections of the measured window refused (reset).
    pub legit_refused: u64,
    /// Legitimate connections of the measured window dropped (given up after every
    /// retry, or broken).
    pub legit_dropped: u64,
    /// The worst interval's 99th percentile response time [ms] (`None`: no response).
    pub p99_ms_max: Option<f64>,
    /// Per director, in configuration order.
    pub directors: Vec<DosDirectorSummary>,
    /// Per flood.
    pub floods: Vec<FloodReport>,
}

/// A director's defences over the run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DosDirectorSummary {
    /// Name.
    pub name: String,
    /// The most entries its table held.
    pub peak_entries: u64,
    /// New connections dropped by `drop_packet`.
    pub packets_dropped: u64,
    /// Entries removed by `drop_entry`.
    pub entries_dropped: u64,
    /// New connections dropped for lack of memory.
    pub no_memory: u64,
}

pub(crate) fn build(d: &DosReport, r: &RunReport) -> DosSummary {
    let directors: Vec<DosDirectorSummary> = d
        .directors
        .iter()
        .map(|x| DosDirectorSummary {
            name: x.name.clone(),
            peak_entries: x.peak_entries,
            packets_dropped: x.defense.packets_dropped,
            entries_dropped: x.defense.entries_dropped,
            no_memory: x.defense.no_memory,
        })
        .collect();
    let floods = d.floods.clone();
    let p99 = r.series.iter().filter(|s| s.responses > 0).map(|s| ns_to_ms(s.p99_ns)).reduce(f64::max);
    DosSummary {
        peak_entries: directors.iter().map(|x| x.peak_entries).max().unwrap_or(0),
        flood_syns: floods.iter().map(|f| f.syns).sum(),
        flood_entries: floods.iter().map(|f| f.entries).sum(),
        packets_dropped: directors.iter().map(|x| x.packets_dropped).sum(),
        entries_dropped: directors.iter().map(|x| x.entries_dropped).sum(),
        no_memory: directors.iter().map(|x| x.no_memory).sum(),
        legit_refused: r.connections.refused,
        legit_dropped: r.connections.dropped + r.connections.lost_on_failover,
        p99_ms_max: p99,
        directors,
        floods,
    }
}

/// `series.csv`'s DoS columns (none without a DoS side).
pub(crate) fn series_header(r: &RunReport) -> Vec<String> {
    if r.dos.is_none() {
        return Vec::new();
    }
    let mut h: Vec<String> = ["legit_refused", "legit_dropped", "flood_syns"].map(String::from).to_vec();
    for d in &r.directors {
        for c in ["entries", "avail_pages", "drop_rate", "drop_entry_on", "secure_tcp_on"] {
            h.push(format!("{c}_{}", d.name));
        }
    }
    h
}

/// A sample's DoS fields, `columns` of them (empty fields where it has none).
pub(crate) fn series_fields(s: &Sample, columns: usize) -> Vec<String> {
    let Some(d) = &s.dos else { return vec![String::new(); columns] };
    let mut row = vec![d.refused.to_string(), d.dropped.to_string(), d.flood_syns.to_string()];
    for x in &d.directors {
        let l = x.level;
        row.push(x.entries.to_string());
        row.push(l.avail_pages.map_or(String::new(), |p| p.to_string()));
        row.push(l.drop_rate.to_string());
        row.push(u8::from(l.drop_entry).to_string());
        row.push(u8::from(l.secure_tcp).to_string());
    }
    row.resize(columns, String::new());
    row
}

fn headline(d: &DosSummary) -> Vec<(&'static str, String)> {
    vec![
        ("peak IPVS entries", d.peak_entries.to_string()),
        ("flood SYNs (made an entry)", format!("{} ({})", d.flood_syns, d.flood_entries)),
        ("dropped by drop_packet", d.packets_dropped.to_string()),
        ("entries dropped by drop_entry", d.entries_dropped.to_string()),
        ("new connections without memory", d.no_memory.to_string()),
        ("legitimate connections refused / dropped", format!("{} / {}", d.legit_refused, d.legit_dropped)),
        ("worst interval p99", d.p99_ms_max.map_or("-".into(), |x| format!("{x:.1} ms"))),
    ]
}

/// The terminal block.
pub(crate) fn text(out: &mut String, d: &DosSummary) {
    let _ = writeln!(out, "\nSYN flood and IPVS defences");
    for (k, v) in headline(d) {
        let _ = writeln!(out, "  {k:<42} {v}");
    }
}

fn director_rows(d: &DosSummary) -> Vec<Vec<String>> {
    d.directors
        .iter()
        .map(|x| {
            let n = [x.peak_entries, x.packets_dropped, x.entries_dropped, x.no_memory];
            std::iter::once(x.name.clone()).chain(n.map(|v| v.to_string())).collect()
        })
        .collect()
}

fn flood_rows(d: &DosSummary) -> Vec<Vec<String>> {
    d.floods
        .iter()
        .map(|f| {
            let n = [f.syns, f.entries, f.defense_dropped, f.no_memory, f.other, f.lost];
            [f.name.clone(), f.director.clone()].into_iter().chain(n.map(|v| v.to_string())).collect()
        })
        .collect()
}

const DIRECTOR_HEADER: [&str; 5] = ["director", "peak entries", "drop_packet", "drop_entry", "no memory"];
const FLOOD_HEADER: [&str; 8] =
    ["flood", "director", "SYNs", "entries", "drop_packet", "no memory", "other", "lost (director down)"];

/// A line of one figure per sample.
fn line(name: &str, r: &RunReport, f: impl Fn(&Sample) -> Option<f64>) -> Line {
    Line {
        name: name.into(),
        points: r.series.iter().map(|s| (t_s(s), f(s).unwrap_or(f64::NAN))).collect(),
        ci: Vec::new(),
    }
}

/// The page's section: the headline, four time charts, the tables.
pub(crate) fn section(page: &mut Page, d: &DosSummary, meta: &RunMeta, r: &RunReport) {
    let no_series = "no time series (the scenario sets no sample interval)";
    page.h2("dos", "SYN flood and IPVS defences");
    page.key_values(&headline(d));
    let mut lines = Vec::new();
    for (i, x) in r.directors.iter().enumerate() {
        let at = move |s: &Sample| s.dos.as_ref().and_then(|d| d.directors.get(i).copied());
        lines.push(line(&format!("entries {}", x.name), r, move |s| at(s).map(|d| d.entries as f64)));
        lines.push(line(&format!("available pages {}", x.name), r, move |s| {
            at(s).and_then(|d| d.level.avail_pages).map(|p| p as f64)
        }));
    }
    let mut c =
        with_events(time_chart("IPVS table size and available memory", "entries / pages", lines), meta);
    c.y_integer = true;
    page.chart(&c, "Entries in each director's table, and the memory left [4 KiB pages] as update_defense_level() sees it (when the director's memory is given).", no_series);
    let lines = vec![
        line("legitimate refused", r, |s| s.dos.as_ref().map(|d| d.refused as f64)),
        line("legitimate dropped", r, |s| s.dos.as_ref().map(|d| d.dropped as f64)),
        line("responses", r, |s| Some(s.responses as f64)),
    ];
    let mut c =
        with_events(time_chart("Legitimate connections per interval", "per sample interval", lines), meta);
    c.y_integer = true;
    page.chart(&c, "Responses, and legitimate connections refused (reset) or dropped (every SYN retry unanswered) in each interval.", no_series);
    let lines = vec![line("p99", r, |s| (s.responses > 0).then(|| ns_to_ms(s.p99_ns)))];
    let mut c = with_events(time_chart("p99 response time per interval", "ms", lines), meta);
    c.y_log = true;
    page.chart(&c, "The 99th percentile of each interval's response times (a connection's first response includes its SYN retransmissions).", no_series);
    let mut lines = Vec::new();
    for (i, x) in r.directors.iter().enumerate() {
        let at = move |s: &Sample| s.dos.as_ref().and_then(|d| d.directors.get(i).copied());
        lines.push(line(&format!("drop_packet rate {}", x.name), r, move |s| {
            at(s).map(|d| f64::from(d.level.drop_rate))
        }));
        lines.push(line(&format!("drop_entry on {}", x.name), r, move |s| {
            at(s).map(|d| f64::from(u8::from(d.level.drop_entry)))
        }));
        lines.push(line(&format!("secure_tcp on {}", x.name), r, move |s| {
            at(s).map(|d| f64::from(u8::from(d.level.secure_tcp)))
        }));
    }
    let mut c = with_events(time_chart("Defences", "1 in N dropped / on (1) or off (0)", lines), meta);
    c.y_integer = true;
    page.chart(&c, "drop_packet's rate (one new connection in N dropped; 0: none), and whether drop_entry and secure_tcp's state table are on, at each sample.", no_series);
    page.h3("Per director");
    page.table(&DIRECTOR_HEADER, 1, &director_rows(d));
    page.h3("Per flood");
    if d.floods.is_empty() {
        page.p("note", "no SYN flood");
    } else {
        page.table(&FLOOD_HEADER, 2, &flood_rows(d));
    }
}
