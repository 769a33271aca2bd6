//! High availability in a run's files: `summary.json`'s `ha`, the terminal block,
//! `ha_events.csv` and the page's High availability section.
//!
//! Everything is built from the [`HaSummary`] (times already in seconds) except the
//! charts, which also need the time series (`failed`, `director_share`).

use std::fmt::Write as _;

use lvs_sched::Time;
use sim_core::model::{DirectorReport, HaReport, RunReport};

use crate::chart::{Chart, Line, Marks};
use crate::csv::{Csv, num};
use crate::html::Page;
use crate::text::text_table;
use crate::timechart::{t_s, time_chart, with_events};
use crate::units::{finite_opt, ns_to_s};
use crate::{
    CheckSummary, DirectorFaultSummary, FailoverSummary, FaultSummary, HaSummary, RunMeta, ScheduledSummary,
    SyncSummary,
};

fn secs(t: Time) -> f64 {
    ns_to_s(t.as_nanos())
}

/// `summary.json`'s `ha`; `directors` name the per-director counters (configuration order).
pub(crate) fn build(h: &HaReport, directors: &[DirectorReport]) -> HaSummary {
    let name = |i: usize| directors.get(i).map_or_else(|| format!("director {i}"), |d| d.name.clone());
    let faults: Vec<FaultSummary> = h
        .faults
        .iter()
        .map(|f| FaultSummary {
            server: f.server.clone(),
            kind: f.kind.clone(),
            at_s: secs(f.at),
            recovered_at_s: f.recovered_at.map(secs),
            detected_at_s: f.detected_at.map(secs),
            // From the integer times, so the difference is exact to the nanosecond.
            detection_s: f.detected_at.map(|d| ns_to_s(d.saturating_since(f.at).as_nanos())),
            restored_at_s: f.restored_at.map(secs),
            failed_before_detection: f.failed_before_detection,
            failed_after_detection: f.failed_after_detection,
        })
        .collect();
    let failovers: Vec<FailoverSummary> = h
        .failovers
        .iter()
        .map(|f| FailoverSummary {
            at_s: secs(f.at),
            from: f.from.clone(),
            to: f.to.clone(),
            cause: f.cause.clone(),
            gap_s: finite_opt(f.gap_s),
            lost_conns: f.lost_conns,
            survived_conns: f.survived_conns,
        })
        .collect();
    HaSummary {
        detection_s_max: faults.iter().filter_map(|f| f.detection_s).reduce(f64::max),
        failover_gap_s_max: failovers.iter().filter_map(|f| f.gap_s).reduce(f64::max),
        lost_conns_total: failovers.iter().map(|f| f.lost_conns).sum(),
        survived_conns_total: failovers.iter().map(|f| f.survived_conns).sum(),
        faults_undetected: faults.iter().filter(|f| f.detected_at_s.is_none()).count() as u64,
        faults,
        checks: h
            .checks
            .iter()
            .enumerate()
            .map(|(i, c)| CheckSummary {
                director: name(i),
                checks: c.checks,
                failed: c.failed,
                downs: c.downs,
                ups: c.ups,
                fallbacks: c.fallbacks,
            })
            .collect(),
        failovers,
        director_faults: h
            .director_faults
            .iter()
            .map(|d| DirectorFaultSummary {
                director: d.director.clone(),
                kind: d.kind.clone(),
                at_s: secs(d.at),
            })
            .collect(),
        sync: h.sync.map(|s| SyncSummary {
            messages: s.messages,
            conns: s.conns,
            bytes: s.bytes,
            applied: s.applied,
        }),
        scheduled_by_director: h
            .scheduled_by_director
            .iter()
            .enumerate()
            .map(|(i, &connections)| ScheduledSummary { director: name(i), connections })
            .collect(),
    }
}

/// A time or span [s] for tables, or a dash.
fn opt_s(x: Option<f64>) -> String {
    x.map_or_else(|| "–".to_string(), |v| format!("{v:.3}"))
}

fn or_dash(x: &Option<String>) -> String {
    x.clone().unwrap_or_else(|| "–".to_string())
}

/// The headline figures, as `(label, text)` lines (terminal and page).
fn headline(h: &HaSummary) -> Vec<(&'static str, String)> {
    let n = h.faults.len();
    let detection = match (n, h.detection_s_max) {
        (0, _) => "no real-server fault".to_string(),
        (_, Some(d)) => format!("slowest {d:.3} s ({n} fault(s), {} undetected)", h.faults_undetected),
        (_, None) => format!("no fault detected ({n} fault(s))"),
    };
    let gap = h.failover_gap_s_max.map_or_else(|| "no gap".to_string(), |g| format!("longest gap {g:.3} s"));
    // A director that takes the VIP from nobody (the first election) is not a fail-over.
    let moved = h.failovers.iter().filter(|f| f.from.is_some()).count();
    let elections: Vec<String> = h
        .failovers
        .iter()
        .filter(|f| f.from.is_none())
        .map(|f| format!("{} at {:.3} s", f.to.as_deref().unwrap_or("?"), f.at_s))
        .collect();
    let mut failover = if moved == 0 {
        "none".to_string()
    } else {
        format!(
            "{moved} fail-over(s), {gap}; {} established connections lost, {} survived",
            h.lost_conns_total, h.survived_conns_total
        )
    };
    if !elections.is_empty() {
        failover.push_str(&format!(" (initial election not counted: {})", elections.join(", ")));
    }
    let sync = h.sync.map_or_else(
        || "off".to_string(),
        |s| {
            format!(
                "{} messages, {} connection records, {} bytes, {} entries applied",
                s.messages, s.conns, s.bytes, s.applied
            )
        },
    );
    let mut lines = vec![("detection", detection), ("fail-over", failover), ("sync", sync)];
    if !h.scheduled_by_director.is_empty() {
        let parts: Vec<String> =
            h.scheduled_by_director.iter().map(|d| format!("{} {}", d.director, d.connections)).collect();
        lines.push(("active-active", format!("connections scheduled: {}", parts.join(", "))));
    }
    lines
}

/// The fault table's columns.
const FAULT_COLUMNS: [&str; 9] = [
    "server",
    "kind",
    "at s",
    "detected s",
    "detection s",
    "failed before",
    "failed after",
    "recovered s",
    "restored s",
];

fn fault_rows(h: &HaSummary) -> Vec<Vec<String>> {
    h.faults
        .iter()
        .map(|f| {
            vec![
                f.server.clone(),
                f.kind.clone(),
                format!("{:.3}", f.at_s),
                opt_s(f.detected_at_s),
                opt_s(f.detection_s),
                f.failed_before_detection.to_string(),
                f.failed_after_detection.to_string(),
                opt_s(f.recovered_at_s),
                opt_s(f.restored_at_s),
            ]
        })
        .collect()
}

/// The fail-over table's columns.
const FAILOVER_COLUMNS: [&str; 7] = ["from", "to", "cause", "at s", "gap s", "lost", "survived"];

fn failover_rows(h: &HaSummary) -> Vec<Vec<String>> {
    h.failovers
        .iter()
        .map(|f| {
            vec![
                or_dash(&f.from),
                or_dash(&f.to),
                // Taking the VIP from nobody is the first election, not a fail-over.
                if f.from.is_none() { format!("initial election ({})", f.cause) } else { f.cause.clone() },
                format!("{:.3}", f.at_s),
                opt_s(f.gap_s),
                f.lost_conns.to_string(),
                f.survived_conns.to_string(),
            ]
        })
        .collect()
}

/// The director-fault table's columns.
const DIRECTOR_FAULT_COLUMNS: [&str; 3] = ["director", "event", "at s"];

fn director_fault_rows(h: &HaSummary) -> Vec<Vec<String>> {
    h.director_faults
        .iter()
        .map(|d| vec![d.director.clone(), d.kind.clone(), format!("{:.3}", d.at_s)])
        .collect()
}

/// The health-check table's columns.
const CHECK_COLUMNS: [&str; 6] = ["director", "checks", "failed", "downs", "ups", "fallbacks"];

fn check_rows(h: &HaSummary) -> Vec<Vec<String>> {
    h.checks
        .iter()
        .map(|c| {
            let mut row = vec![c.director.clone()];
            row.extend([c.checks, c.failed, c.downs, c.ups, c.fallbacks].map(|x| x.to_string()));
            row
        })
        .collect()
}

/// One of the HA tables, as the terminal and the page show it.
struct Table {
    title: &'static str,
    header: &'static [&'static str],
    /// Leading columns that are names (left-aligned).
    left: usize,
    rows: Vec<Vec<String>>,
    /// What the page says without a row.
    none: &'static str,
    /// What the page says under the table: how to read it.
    note: &'static str,
}

fn tables(h: &HaSummary) -> [Table; 4] {
    [
        Table {
            title: "Real-server faults",
            header: &FAULT_COLUMNS,
            left: 2,
            rows: fault_rows(h),
            none: "no real-server fault",
            note: "Detection: from the fault to the first health check that declared the server \
                   down. Failed before/after: connections sent to the server that were refused or \
                   dropped before and after that.",
        },
        Table {
            title: "Fail-overs",
            header: &FAILOVER_COLUMNS,
            left: 3,
            rows: failover_rows(h),
            none: "no fail-over",
            note: "Gap: from the fault that caused the fail-over to the new director's gratuitous \
                   ARP. Lost: established connections the new director had no entry for; \
                   survived: those a synced entry carried on.",
        },
        Table {
            title: "Director faults",
            header: &DIRECTOR_FAULT_COLUMNS,
            left: 2,
            rows: director_fault_rows(h),
            none: "no director fault",
            note: "",
        },
        Table {
            title: "Health checks",
            header: &CHECK_COLUMNS,
            left: 1,
            rows: check_rows(h),
            none: "no health checks",
            note: "",
        },
    ]
}

/// Most rows of a table the terminal shows (active-active can move hundreds of blocks);
/// `ha_events.csv` and the page have them all.
const TEXT_ROWS: usize = 20;

/// The terminal's HA block: the headline, then faults, fail-overs, director faults and
/// checks as tables.
pub(crate) fn text(out: &mut String, h: &HaSummary) {
    out.push('\n');
    for (label, line) in headline(h) {
        let _ = writeln!(out, "ha {label:<13} {line}");
    }
    for t in tables(h).into_iter().filter(|t| !t.rows.is_empty()) {
        let _ = writeln!(out, "{}:", t.title.to_lowercase());
        out.push_str(&text_table(t.header, t.left, &t.rows[..t.rows.len().min(TEXT_ROWS)]));
        if t.rows.len() > TEXT_ROWS {
            let _ = writeln!(out, "... {} more in ha_events.csv", t.rows.len() - TEXT_ROWS);
        }
    }
}

/// `ha_events.csv`'s columns.
const EVENT_COLUMNS: [&str; 15] = [
    "t_s",
    "event",
    "subject",
    "kind",
    "from",
    "to",
    "detected_at_s",
    "detection_s",
    "recovered_at_s",
    "restored_at_s",
    "failed_before_detection",
    "failed_after_detection",
    "gap_s",
    "lost_conns",
    "survived_conns",
];

/// `ha_events.csv`: one row per real-server fault, director fault and fail-over, in time
/// order (at equal times in that order: a fault before the fail-over it causes).
pub(crate) fn events_csv(h: &HaSummary) -> String {
    let opt = |x: Option<f64>| x.map_or(String::new(), num);
    let mut rows: Vec<(f64, Vec<String>)> = Vec::new();
    for f in &h.faults {
        let mut row =
            vec![num(f.at_s), "fault".into(), f.server.clone(), f.kind.clone(), String::new(), String::new()];
        row.extend([opt(f.detected_at_s), opt(f.detection_s), opt(f.recovered_at_s), opt(f.restored_at_s)]);
        row.extend([f.failed_before_detection.to_string(), f.failed_after_detection.to_string()]);
        row.extend([String::new(), String::new(), String::new()]);
        rows.push((f.at_s, row));
    }
    for d in &h.director_faults {
        let mut row = vec![num(d.at_s), "director_fault".into(), d.director.clone(), d.kind.clone()];
        row.resize(EVENT_COLUMNS.len(), String::new());
        rows.push((d.at_s, row));
    }
    for f in &h.failovers {
        let (from, to) = (f.from.clone().unwrap_or_default(), f.to.clone().unwrap_or_default());
        let mut row = vec![num(f.at_s), "failover".into(), to.clone(), f.cause.clone(), from, to];
        row.resize(EVENT_COLUMNS.len() - 3, String::new());
        row.extend([opt(f.gap_s), f.lost_conns.to_string(), f.survived_conns.to_string()]);
        rows.push((f.at_s, row));
    }
    // Stable: equal times keep the order above.
    rows.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut csv = Csv::new(&EVENT_COLUMNS);
    for (_, row) in &rows {
        csv.row(row);
    }
    csv.finish()
}

/// Mark colours: a fault red, its detection green, a fail-over near black, a director
/// fault brown.
const FAULT_RGB: (u8, u8, u8) = (0xd6, 0x27, 0x28);
const DETECTED_RGB: (u8, u8, u8) = (0x2c, 0xa0, 0x2c);
const FAILOVER_RGB: (u8, u8, u8) = (0x22, 0x22, 0x22);
const DIRECTOR_RGB: (u8, u8, u8) = (0x8c, 0x56, 0x4b);
const ELECTION_RGB: (u8, u8, u8) = (0x99, 0x99, 0x99);

fn marks(label: &str, rgb: (u8, u8, u8), xs: Vec<f64>) -> Option<Marks> {
    (!xs.is_empty()).then(|| Marks { label: label.into(), rgb, xs, titles: Vec::new() })
}

fn failover_marks(h: &HaSummary) -> impl Iterator<Item = Marks> {
    let at = |initial: bool| h.failovers.iter().filter(move |f| f.from.is_none() == initial).map(|f| f.at_s);
    let failovers = marks("fail-over", FAILOVER_RGB, at(false).collect());
    let elections = marks("initial election", ELECTION_RGB, at(true).collect());
    let directors =
        marks("director fault/repair", DIRECTOR_RGB, h.director_faults.iter().map(|d| d.at_s).collect());
    failovers.into_iter().chain(elections).chain(directors)
}

/// A time chart of the HA section: the scenario's events and warm-up as on every time
/// chart, less the events the HA marks already draw (a crash, a director down).
fn ha_chart(title: &str, y_label: &str, lines: Vec<Line>, h: &HaSummary, meta: &RunMeta) -> Chart {
    let mut c = with_events(time_chart(title, y_label, lines), meta);
    let drawn: Vec<f64> =
        h.faults.iter().map(|f| f.at_s).chain(h.director_faults.iter().map(|d| d.at_s)).collect();
    for m in &mut c.marks {
        let keep: Vec<bool> = m.xs.iter().map(|x| !drawn.iter().any(|d| (d - x).abs() < 1e-9)).collect();
        let mut k = keep.iter();
        m.xs.retain(|_| *k.next().unwrap_or(&true));
        let mut k = keep.iter();
        m.titles.retain(|_| *k.next().unwrap_or(&true));
    }
    c.marks.retain(|m| !m.xs.is_empty());
    c
}

/// The page's charts: failed connections against responses per interval, and each
/// director's share of the VIP over time, both with the events marked.
fn charts(page: &mut Page, h: &HaSummary, meta: &RunMeta, r: &RunReport) {
    let no_series = "no time series (the scenario sets no sample interval)";
    let per_interval = |name: &str, f: fn(&sim_core::model::Sample) -> u64| Line {
        name: name.into(),
        points: r.series.iter().map(|s| (t_s(s), f(s) as f64)).collect(),
        ci: Vec::new(),
    };
    let lines =
        vec![per_interval("responses", |s| s.responses), per_interval("failed connections", |s| s.failed)];
    let mut c =
        ha_chart("Failed connections and responses per interval", "per sample interval", lines, h, meta);
    c.y_integer = true;
    c.marks.extend(
        [
            marks("real-server fault", FAULT_RGB, h.faults.iter().map(|f| f.at_s).collect()),
            marks("fault detected", DETECTED_RGB, h.faults.iter().filter_map(|f| f.detected_at_s).collect()),
        ]
        .into_iter()
        .flatten()
        .chain(failover_marks(h)),
    );
    page.chart(
        &c,
        "Requests answered and connections (any) refused or dropped in each sample interval. Vertical \
         lines: real-server faults, their detection by a health check, fail-overs and director faults.",
        no_series,
    );
    let lines = r
        .directors
        .iter()
        .enumerate()
        .map(|(i, d)| Line {
            name: d.name.clone(),
            points: r
                .series
                .iter()
                .filter_map(|s| Some((t_s(s), s.director_share.get(i)? * 100.0)))
                .collect(),
            ci: Vec::new(),
        })
        .collect();
    let mut c = ha_chart("Director share of the VIP", "share [%]", lines, h, meta);
    c.y_at_least = 100.0;
    c.marks.extend(failover_marks(h));
    page.chart(
        &c,
        "100% while a director holds the VIP, 0 otherwise; active-active: the fraction of the \
         connection space's blocks it owns. The VIP moves where the lines cross.",
        no_series,
    );
}

/// The page's High availability section: the headline, the charts, then every table.
pub(crate) fn section(page: &mut Page, h: &HaSummary, meta: &RunMeta, r: &RunReport) {
    page.h2("ha", "High availability");
    page.key_values(&headline(h));
    charts(page, h, meta, r);
    for t in tables(h) {
        page.h3(t.title);
        if t.rows.is_empty() {
            page.p("note", t.none);
        } else {
            page.table(t.header, t.left, &t.rows);
            if !t.note.is_empty() {
                page.p("note", t.note);
            }
        }
    }
    page.h3("Connection sync");
    match h.sync {
        Some(s) => page.table(
            &["messages", "connection records", "bytes", "entries applied"],
            0,
            &[[s.messages, s.conns, s.bytes, s.applied].map(|x| x.to_string()).to_vec()],
        ),
        None => page.p("note", "no connection synchronisation"),
    }
    if !h.scheduled_by_director.is_empty() {
        page.h3("Active-active: connections scheduled");
        let rows: Vec<Vec<String>> = h
            .scheduled_by_director
            .iter()
            .map(|d| vec![d.director.clone(), d.connections.to_string()])
            .collect();
        page.table(&["director", "connections"], 1, &rows);
    }
}
