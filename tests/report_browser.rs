//! The report pages in a real browser (issue 19, charts): Debian's headless chromium driven
//! through chromedriver by the W3C WebDriver client of `feedbackd-master/tests/common`,
//! on the pages `lvsim run`, `lvsim sweep` and `lvsim plan` write for library scenarios.
//!
//! What a reader must be able to trust, measured on the laid-out page (bounding boxes in
//! CSS pixels, not the SVG text):
//! - no response-time point drawn, and no line drawn across, an interval without a response
//!   (the VRRP fail-over's outage is a gap, not a 0 ms dip);
//! - the scenario's events marked where the x axis puts their time, and the warm-up shaded
//!   up to its end, on every time chart;
//! - no legend over a plot area; hover values as SVG `<title>`s, with no script on the page;
//! - a sweep over schedulers drawn as dots with whiskers, no line joining two schedulers.
//!
//! Screenshots go to `target/report-screenshots/*.png`, listed with what they show in
//! `index.txt` there. Needs chromium and chromium-driver: the test fails (never skips)
//! without them.

mod common;
#[path = "../feedbackd-master/tests/common/webdriver.rs"]
mod webdriver;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::vm::TempDir;
use serde_json::Value;
use sim_core::model::{ServerDetail, Simulation};
use webdriver::Browser;

/// Runs `lvsim ARGS` in `cwd` (a fresh temporary directory); it must succeed.
fn lvsim(cwd: &Path, args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_lvsim"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("spawning lvsim");
    assert!(
        out.status.success(),
        "lvsim {args:?}: exit {:?}\n{}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn library(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/library").join(name).display().to_string()
}

/// Every chart of the page as laid out: its boxes, hover titles, marks, warm-up band,
/// x-axis tick labels and the polylines plotters drew (in page pixels).
const CHARTS_JS: &str = r#"
const box = e => { const b = e.getBoundingClientRect(); return {l: b.left, r: b.right, t: b.top, b: b.bottom}; };
return Array.from(document.querySelectorAll('svg.chart')).map(svg => {
  const plot = box(svg.querySelector('rect.plot-area'));
  const legend = svg.querySelector('g.legend rect.legend-box');
  const warm = svg.querySelector('rect.warmup');
  return {
    label: svg.getAttribute('aria-label'),
    svg: box(svg),
    plot,
    legend: legend ? box(legend) : null,
    hovers: Array.from(svg.querySelectorAll('circle.hover')).map(c => {
      const t = c.querySelector('title'); const b = box(c);
      return {title: t ? t.textContent : '', x: (b.l + b.r) / 2, y: (b.t + b.b) / 2};
    }),
    marks: Array.from(svg.querySelectorAll('g.mark')).map(g => {
      const b = box(g.querySelector('line'));
      return {at: parseFloat(g.dataset.x), x: (b.l + b.r) / 2, title: g.querySelector('title').textContent};
    }),
    warmup: warm ? {at: parseFloat(warm.dataset.x), ...box(warm)} : null,
    marklabels: Array.from(svg.querySelectorAll('text.mark-label')).map(box),
    logticks: Array.from(svg.querySelectorAll('g.tick text')).map(t => { const b = box(t); return [parseFloat(t.textContent), (b.t + b.b) / 2, (b.l + b.r) / 2]; }),
    ticks: Array.from(svg.querySelectorAll('g.plot text')).map(t => ({text: t.textContent.trim(), ...box(t)}))
      .filter(t => t.t >= plot.b - 1 && t.b <= plot.b + 40),
    yticks: Array.from(svg.querySelectorAll('g.plot text')).map(t => ({text: t.textContent.trim(), ...box(t)}))
      .filter(t => t.r <= plot.l + 1 && t.r >= plot.l - 60 && t.b >= plot.t - 10 && t.t <= plot.b + 10)
      .map(t => t.text),
    lines: Array.from(svg.querySelectorAll('g.plot polyline')).map(p => {
      const m = p.getScreenCTM();
      return {stroke: (p.getAttribute('stroke') || '').toLowerCase(),
              pts: Array.from(p.points).map(q => { const s = new DOMPoint(q.x, q.y).matrixTransform(m); return [s.x, s.y]; })};
    }),
  };
});
"#;

fn charts(b: &Browser) -> Vec<Value> {
    b.script(CHARTS_JS, vec![]).as_array().cloned().expect("a list of charts")
}

fn chart<'a>(all: &'a [Value], label: &str) -> &'a Value {
    all.iter().find(|c| c["label"] == label).unwrap_or_else(|| panic!("no chart {label:?}"))
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// The page x of `t` on a chart's linear x axis, from two of its tick labels' centres.
fn x_of(c: &Value, t: f64) -> f64 {
    let mut ticks: Vec<(f64, f64)> = c["ticks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| Some((k["text"].as_str()?.parse::<f64>().ok()?, (f(&k["l"]) + f(&k["r"])) / 2.0)))
        .collect();
    ticks.sort_by(|a, b| a.1.total_cmp(&b.1));
    assert!(ticks.len() >= 2, "{}: fewer than two numeric x ticks: {}", c["label"], c["ticks"]);
    let ((v0, x0), (v1, x1)) = (ticks[0], ticks[ticks.len() - 1]);
    x0 + (t - v0) * (x1 - x0) / (v1 - v0)
}

/// No legend box meets its plot area, and each lies inside its chart.
fn legends_outside_the_data(all: &[Value]) {
    for c in all {
        let (p, s) = (&c["plot"], &c["svg"]);
        for t in c["marklabels"].as_array().unwrap() {
            let inside = f(&t["l"]) >= f(&p["l"]) - 1.0 && f(&t["r"]) <= f(&p["r"]) + 1.0;
            assert!(inside, "{}: an event label {t} outside the plot area {p}", c["label"]);
        }
        let Some(l) = c["legend"].as_object() else { continue };
        let apart = f(&l["l"]) >= f(&p["r"])
            || f(&l["r"]) <= f(&p["l"])
            || f(&l["t"]) >= f(&p["b"])
            || f(&l["b"]) <= f(&p["t"]);
        assert!(apart, "{}: the legend {l:?} overlaps the plot area {p}", c["label"]);
        assert!(
            f(&l["r"]) <= f(&s["r"]) + 0.5,
            "{}: the legend is cut off at the chart's right edge",
            c["label"]
        );
    }
}

/// Each chart's points carry hover values.
fn hover_titles(all: &[Value], y_label: &str) {
    for c in all {
        let hovers = c["hovers"].as_array().unwrap();
        assert!(!hovers.is_empty(), "{}: no hover values", c["label"]);
        assert!(
            hovers.iter().all(|h| h["title"].as_str().is_some_and(|t| t.contains(": "))),
            "{}",
            c["label"]
        );
    }
    assert!(
        all.iter()
            .flat_map(|c| c["hovers"].as_array().unwrap())
            .any(|h| h["title"].as_str().unwrap().contains(y_label)),
        "no hover names {y_label:?}"
    );
}

/// A logarithmic y axis: at least three labels, and the same pixels per decade between
/// each pair of neighbours (on a linear axis 100 to 300 would be three times 30 to 100).
fn log_y_axis(c: &Value) {
    let ticks: Vec<(f64, f64)> =
        c["logticks"].as_array().unwrap().iter().map(|t| (f(&t[0]), f(&t[1]))).collect();
    assert!(ticks.len() >= 3, "{}: log y labels {ticks:?}", c["label"]);
    let per_decade: Vec<f64> =
        ticks.windows(2).map(|w| (w[0].1 - w[1].1) / (w[1].0 / w[0].0).log10()).collect();
    for d in &per_decade {
        assert!(
            (d - per_decade[0]).abs() < 0.03 * per_decade[0].abs() + 1.0,
            "{}: not a log axis: {ticks:?}",
            c["label"]
        );
    }
}

/// Where the screenshots go, with an index of what each shows.
struct Shots {
    dir: PathBuf,
    index: String,
}

impl Shots {
    fn new(index: &str) -> Shots {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
        let dir = target.join("report-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        // This run's index only (each test has its own file: tests run in parallel).
        let _ = std::fs::remove_file(dir.join(index));
        Shots { dir, index: index.to_string() }
    }

    /// Scrolls the chart titled `label` to the top of the viewport and saves it.
    fn chart(&self, b: &Browser, label: &str, name: &str, what: &str) {
        let js = "const s = Array.from(document.querySelectorAll('svg.chart')).find(s => s.getAttribute('aria-label') === arguments[0]); \
                  s.closest('figure').scrollIntoView(); return true;";
        b.script(js, vec![Value::String(label.into())]);
        let path = b.screenshot(&self.dir.join(format!("{name}.png")));
        println!("screenshot: {}: {what}", path.display());
        let line = format!("{name}.png\t{what}\n");
        let index = self.dir.join(&self.index);
        let mut text = std::fs::read_to_string(&index).unwrap_or_default();
        text.push_str(&line);
        std::fs::write(index, text).unwrap();
    }
}

fn open(b: &Browser, page: &Path) {
    assert!(page.exists(), "{} was not written", page.display());
    b.goto(&format!("file://{}", page.display()));
    let html = std::fs::read_to_string(page).unwrap();
    assert!(!html.contains("<script"), "the page has a script");
}

#[test]
fn a_run_page_marks_events_shades_the_warmup_and_keeps_legends_off_the_data() {
    let tmp = TempDir::new("report-browser-run");
    lvsim(&tmp.0, &["run", &library("quickstart.ron"), "-o", "q", "-q"]);
    let b = Browser::start(&tmp.0);
    open(&b, &tmp.0.join("q/report.html"));
    let all = charts(&b);
    legends_outside_the_data(&all);
    hover_titles(&all, "response time [ms]");
    let time_charts: Vec<&Value> = all
        .iter()
        .filter(|c| c["hovers"][0]["title"].as_str().unwrap_or("").contains("simulated time [s]"))
        .collect();
    assert!(time_charts.len() >= 6, "{} time charts", time_charts.len());
    for c in &time_charts {
        // quickstart drains rs2 at 30 s and restores it at 45 s; its warm-up is 5 s.
        let marks = c["marks"].as_array().unwrap();
        let at: Vec<f64> = marks.iter().map(|m| f(&m["at"])).collect();
        assert_eq!(at, [30.0, 45.0], "{}: event marks", c["label"]);
        assert!(marks[0]["title"].as_str().unwrap().contains("rs2 weight 0"), "{}", marks[0]["title"]);
        for m in marks {
            let want = x_of(c, f(&m["at"]));
            assert!(
                (f(&m["x"]) - want).abs() < 2.0,
                "{}: mark at {} s drawn at x {} not {want}",
                c["label"],
                m["at"],
                m["x"]
            );
        }
        let w = &c["warmup"];
        assert_eq!(f(&w["at"]), 5.0, "{}: warm-up", c["label"]);
        let end = x_of(c, 5.0);
        assert!((f(&w["r"]) - end).abs() < 2.0, "{}: warm-up band ends at {} not {end}", c["label"], w["r"]);
        assert!((f(&w["l"]) - f(&c["plot"]["l"])).abs() < 1.5, "{}: the band starts at the axis", c["label"]);
    }
    // Counts have whole-number axes: no 0.2 weight, no half connection.
    for label in
        ["IPVS weight per real server", "Open connections over time", "IPVS ActiveConn per real server"]
    {
        let ticks: Vec<String> = chart(&all, label)["yticks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_string())
            // Numbers only: the rotated axis description ("weight") sits left of the ticks.
            .filter(|t| t.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '.'))
            .collect();
        assert!(ticks.len() >= 2, "{label}: y ticks {ticks:?}");
        assert!(
            ticks.iter().all(|t| t.parse::<u64>().is_ok()),
            "{label}: a y tick that is not a whole number: {ticks:?}"
        );
    }
    let shots = Shots::new("index.txt");
    shots.chart(&b, "Response time over time", "run-latency", "quickstart: p50/p99 on a log axis, drain at 30 s and restore at 45 s marked, warm-up shaded, legend beside the plot");
    shots.chart(
        &b,
        "Response-time distribution (CDF)",
        "run-cdf-tail",
        "quickstart: the CDF and, beside it, the tail (1 − CDF, log-log)",
    );
    shots.chart(
        &b,
        "IPVS weight per real server",
        "run-weights",
        "quickstart: weights on an integer axis, rs2 at 0 between the marks",
    );
}

#[test]
fn the_vrrp_outage_is_a_gap_not_a_zero_latency() {
    let tmp = TempDir::new("report-browser-vrrp");
    lvsim(&tmp.0, &["run", &library("ha/vrrp-failover.ron"), "-o", "v", "-q"]);
    // The intervals without a response after the warm-up (lb1 dies at 60.2 s).
    let csv = std::fs::read_to_string(tmp.0.join("v/series.csv")).unwrap();
    let empty: Vec<f64> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|f| f[1] == "0" && f[0].parse::<f64>().unwrap() > 10.0)
        .map(|f| {
            assert_eq!((f[3], f[4]), ("", ""), "no response: empty percentile fields, not 0");
            f[0].parse().unwrap()
        })
        .collect();
    assert!(empty.len() >= 3, "the outage has empty intervals: {empty:?}");
    let b = Browser::start(&tmp.0);
    open(&b, &tmp.0.join("v/report.html"));
    let all = charts(&b);
    legends_outside_the_data(&all);
    let c = chart(&all, "Response time over time");
    log_y_axis(c);
    let times: Vec<f64> = c["hovers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            let t = h["title"].as_str().unwrap();
            t.split("simulated time [s]: ")
                .nth(1)
                .and_then(|r| r.split('\n').next())
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    for t in &empty {
        assert!(
            !times.iter().any(|x| (x - t).abs() < 1e-6),
            "a latency point drawn at {t} s, an interval without a response"
        );
    }
    // No data line crosses the outage: every polyline vertex pair straddling it is a gap.
    let (lo, hi) = (x_of(c, empty[0]), x_of(c, empty[empty.len() - 1]));
    for l in c["lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| ["#1f77b4", "#ff7f0e"].contains(&l["stroke"].as_str().unwrap()))
    {
        let pts: Vec<(f64, f64)> =
            l["pts"].as_array().unwrap().iter().map(|p| (f(&p[0]), f(&p[1]))).collect();
        for w in pts.windows(2) {
            assert!(!(w[0].0 < lo && w[1].0 > hi), "a line drawn across the outage ({lo}..{hi} px): {w:?}");
            assert!(!(lo..=hi).contains(&w[0].0), "a vertex inside the outage at x {}", w[0].0);
        }
    }
    let text = b.script("return document.body.innerText;", vec![]);
    let text = text.as_str().unwrap();
    assert!(text.contains("1 fail-over(s)"), "the initial election is not a fail-over:\n{text:.3000}");
    assert!(text.contains("initial election not counted: lb1 at"), "{text:.3000}");
    let shots = Shots::new("index-vrrp.txt");
    shots.chart(&b, "Response time over time", "vrrp-latency", "vrrp-failover: a gap (no 0 ms dip) from lb1's death at 60.2 s to lb2's takeover; warm-up 10 s shaded");
    shots.chart(
        &b,
        "Failed connections and responses per interval",
        "vrrp-failures",
        "vrrp-failover: counts on an integer axis, fail-over and election marks, legend beside the plot",
    );
}

#[test]
fn a_scheduler_sweep_is_a_dot_plot_and_a_plan_keeps_its_legend_aside() {
    let tmp = TempDir::new("report-browser-sweep");
    lvsim(&tmp.0, &["sweep", &library("heterogeneous.ron"), "-o", "s", "-q"]);
    lvsim(&tmp.0, &["plan", &library("capacity-planning.ron"), "--max", "6", "-o", "p", "-q"]);
    let b = Browser::start(&tmp.0);
    open(&b, &tmp.0.join("s/report.html"));
    let all = charts(&b);
    assert!(all.len() >= 5, "{} sweep charts", all.len());
    legends_outside_the_data(&all);
    hover_titles(&all, "p99 [ms]");
    for c in &all {
        // Whiskers are vertical and their caps 10 px wide: nothing joins two schedulers.
        for l in c["lines"].as_array().unwrap().iter().filter(|l| l["stroke"] == "#1f77b4") {
            let xs: Vec<f64> = l["pts"].as_array().unwrap().iter().map(|p| f(&p[0])).collect();
            let span = xs.iter().cloned().fold(f64::NEG_INFINITY, f64::max)
                - xs.iter().cloned().fold(f64::INFINITY, f64::min);
            assert!(span < 12.0, "{}: a line {span} px wide joins points of a categorical axis", c["label"]);
        }
        let hovers = c["hovers"].as_array().unwrap();
        assert_eq!(hovers.len(), 6, "{}: one dot per scheduler", c["label"]);
        assert!(hovers.iter().any(|h| h["title"].as_str().unwrap().contains("wlc")), "{}", c["label"]);
        if c["label"].as_str().unwrap().starts_with("99th percentile") {
            let ci = |h: &Value| h["title"].as_str().unwrap().contains(" ± ");
            assert!(hovers.iter().all(ci), "{}: whiskers' half-widths in the hover values", c["label"]);
        }
    }
    let shots = Shots::new("index-sweep.txt");
    let p99 = all
        .iter()
        .find(|c| c["label"].as_str().unwrap().starts_with("99th percentile"))
        .expect("the p99 chart");
    // rr's 3 s p99 and wlc's 70 ms on one readable axis.
    log_y_axis(p99);
    shots.chart(
        &b,
        p99["label"].as_str().unwrap(),
        "sweep-p99",
        "heterogeneous sweep: p99 per scheduler as dots with 95% whiskers on a log axis",
    );
    open(&b, &tmp.0.join("p/report.html"));
    let all = charts(&b);
    assert!(!all.is_empty(), "the plan page has a chart");
    legends_outside_the_data(&all);
    assert!(all.iter().all(|c| !c["hovers"].as_array().unwrap().is_empty()), "plan charts have hover values");
    shots.chart(
        &b,
        all[0]["label"].as_str().unwrap(),
        "plan",
        "capacity-planning plan (--max 6): the SLO line and the legend beside the plot",
    );
}

/// The bands of every chart that has some: each min–max polygon (opacity 0.15) and
/// p10–p90 one inside the plot area, and the median line's vertices (stroke #1f77b4)
/// that lie outside every min–max polygon (a pixel's tolerance for a median on the edge).
const BANDS_JS: &str = r#"
const box = e => { const b = e.getBoundingClientRect(); return {l: b.left, r: b.right, t: b.top, b: b.bottom}; };
return Array.from(document.querySelectorAll('svg.chart')).filter(s => s.querySelector('g.plot polygon')).map(svg => {
  const polys = Array.from(svg.querySelectorAll('g.plot polygon'));
  const minmax = polys.filter(p => p.getAttribute('opacity') === '0.15');
  const median = Array.from(svg.querySelectorAll('g.plot polyline'))
    .find(p => (p.getAttribute('stroke') || '').toLowerCase() === '#1f77b4');
  const pts = median ? Array.from(median.points) : [];
  // A band of no height (every server at the same weight) has no fill: on its edge is in.
  const flat = (p, q) => { const b = p.getBBox();
    return b.height < 2 && Math.abs(q.y - b.y) <= 1.5 && q.x >= b.x - 1 && q.x <= b.x + b.width + 1; };
  const inside = q => minmax.some(p => flat(p, q) || [0, 1, -1].some(d => p.isPointInFill(new DOMPoint(q.x, q.y + d))));
  return {
    label: svg.getAttribute('aria-label'),
    plot: box(svg.querySelector('rect.plot-area')),
    bands: polys.map(box),
    minmax: minmax.length,
    median: pts.length,
    outside: pts.filter(q => !inside(q)).map(q => [q.x, q.y]),
    keys: Array.from(svg.querySelectorAll('g.legend text')).map(t => t.childNodes[0].nodeValue),
  };
});
"#;

/// The first data row of the table after the heading `h3` (its cells' text).
const ROW_JS: &str = r#"
const h = Array.from(document.querySelectorAll('h3')).find(e => e.textContent === arguments[0]);
const t = h.nextElementSibling.querySelector('table');
return Array.from(t.querySelectorAll('tbody tr')).map(r => Array.from(r.cells).map(c => c.textContent));
"#;

/// The page open in `b` shows its real servers as distributions: three band charts, each
/// band inside its plot area with the median inside the min–max band and every legend key;
/// a rising CDF of utilisation across servers; the busiest server's row at the quantile
/// table's highest utilisation. Returns the page's charts.
fn distributions_on_the_page(b: &Browser) -> Vec<Value> {
    let all = charts(b);
    legends_outside_the_data(&all);
    let bands = b.script(BANDS_JS, vec![]).as_array().cloned().expect("a list of band charts");
    let labels: Vec<&str> = bands.iter().map(|c| c["label"].as_str().unwrap()).collect();
    assert_eq!(
        labels,
        [
            "Utilisation across real servers",
            "IPVS ActiveConn across real servers",
            "IPVS weight across real servers"
        ]
    );
    for c in &bands {
        let p = &c["plot"];
        for band in c["bands"].as_array().unwrap() {
            let inside = f(&band["l"]) >= f(&p["l"]) - 1.0
                && f(&band["r"]) <= f(&p["r"]) + 1.0
                && f(&band["t"]) >= f(&p["t"]) - 1.0
                && f(&band["b"]) <= f(&p["b"]) + 1.0;
            assert!(inside, "{}: a band {band} outside the plot area {p}", c["label"]);
        }
        assert!(f(&c["minmax"]) >= 1.0 && f(&c["median"]) >= 50.0, "{}: {c}", c["label"]);
        assert_eq!(
            c["outside"],
            Value::Array(vec![]),
            "{}: median points outside the min–max band",
            c["label"]
        );
        for key in ["median", "mean", "min–max", "p10–p90"] {
            assert!(
                c["keys"].as_array().unwrap().iter().any(|k| k == key),
                "{}: no legend key {key}",
                c["label"]
            );
        }
    }
    // The CDF across servers rises: further right, never lower on the page's y.
    let cdf = chart(&all, "Utilisation across real servers (CDF)");
    let line =
        cdf["lines"].as_array().unwrap().iter().find(|l| l["stroke"] == "#1f77b4").expect("the CDF line");
    let pts: Vec<(f64, f64)> = line["pts"].as_array().unwrap().iter().map(|p| (f(&p[0]), f(&p[1]))).collect();
    assert!(pts.len() > 3 && pts.windows(2).all(|w| w[1].0 >= w[0].0 - 0.01 && w[1].1 <= w[0].1 + 0.01));
    // The busiest server heads its table with the highest utilisation of the quantile table.
    let busiest = b.script(ROW_JS, vec![Value::from("Busiest (highest utilisation)")]);
    let quantiles = b.script(
        "return Array.from(document.querySelectorAll('table tr')).map(r => Array.from(r.cells).map(c => c.textContent)).find(r => r[0] === 'utilisation %');",
        vec![],
    );
    assert_eq!(busiest[0][3], quantiles[7], "busiest {busiest} vs max of {quantiles}");
    all
}

#[test]
fn many_real_servers_are_drawn_as_bands_and_distributions() {
    let tmp = TempDir::new("report-browser-many");
    // 80 web servers: more than a chart draws one line a server, more than the page lists.
    let scenario = library("capacity-planning.ron");
    let mut args = vec!["run", &scenario, "-o", "m", "-q"];
    for set in ["servers[0].count=80", "duration_s=6", "warmup_s=1"] {
        args.extend(["--set", set]);
    }
    lvsim(&tmp.0, &args);
    let b = Browser::start(&tmp.0);
    open(&b, &tmp.0.join("m/report.html"));
    distributions_on_the_page(&b);
    let shots = Shots::new("index-many.txt");
    shots.chart(
        &b,
        "Utilisation across real servers",
        "many-utilisation-bands",
        "80 servers: utilisation spread as bands",
    );
    shots.chart(
        &b,
        "Utilisation across real servers (CDF)",
        "many-utilisation-cdf",
        "80 servers: CDF of utilisation",
    );
}

#[test]
fn a_small_run_without_per_server_detail_shows_distributions() {
    let tmp = TempDir::new("report-browser-aggregate");
    let sets = ["servers[0].count=12", "duration_s=6", "warmup_s=1"].map(String::from);
    let loaded =
        scenarios::load(Path::new(&library("capacity-planning.ron")), &sets).expect("the scenario loads");
    let mut cfg = loaded.cluster;
    cfg.server_detail = ServerDetail::Aggregate;
    let r = Simulation::new(cfg).expect("a valid cluster").run();
    assert!(!r.server_detail, "an Aggregate run keeps no full per-server detail");
    assert!(r.series.len() > 50 && r.series.iter().all(|s| s.servers.is_empty() && s.across.is_some()));
    let meta =
        reports::RunMeta { scenario: "aggregate".into(), warmup_s: 1.0, ..reports::RunMeta::default() };
    reports::write_run(&tmp.0.join("a"), &meta, &r).expect("writes the report");
    let b = Browser::start(&tmp.0);
    open(&b, &tmp.0.join("a/report.html"));
    let all = distributions_on_the_page(&b);
    assert!(
        all.iter().all(|c| !c["label"].as_str().unwrap().contains("per real server")),
        "no per-server lines"
    );
    let page = std::fs::read_to_string(tmp.0.join("a/report.html")).unwrap();
    assert!(page.contains("12 real servers (the run kept no full per-server detail)"));
    let shots = Shots::new("index-aggregate.txt");
    shots.chart(
        &b,
        "IPVS ActiveConn across real servers",
        "aggregate-activeconn-bands",
        "12 servers without per-server detail: ActiveConn spread from Sample::across",
    );
}
