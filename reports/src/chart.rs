//! Charts as inline SVG: plotters' SVG backend draws the axes, grid, lines and error bars;
//! [`overlay`] adds what plotters cannot say in SVG: the warm-up band, event marks, hover
//! values (`<title>`, no script) and the legend, in a panel beside the plot area so that it
//! never covers data.
//!
//! Text is emitted as SVG `<text>` elements that the browser lays out, so no font is
//! linked or embedded (plotters' "naive" font estimate sizes the labels).
//!
//! A point whose y is not finite (NaN) is a gap: the line stops before it and starts again
//! after it (an interval in which nothing was measured is not a 0).

mod overlay;

use std::ops::Range;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;

/// Chart size [px] with its legend panel; the page scales it down to its column's width.
const SIZE: (u32, u32) = (1000, 400);

/// A narrow chart's size (two side by side: the CDF and its tail).
const NARROW: (u32, u32) = (620, 440);

/// Width of the legend panel right of the plot [px].
pub(crate) const LEGEND_W: u32 = 240;

/// Most points drawn per line (the rest are decimated, keeping each bucket's extremes).
pub(crate) const MAX_POINTS: usize = 2000;

/// Most lines that get an entry in the chart's legend; more and the page lists them.
pub(crate) const MAX_LEGEND: usize = 10;

/// Matplotlib's "tab10" palette: distinct, and readable on white.
const PALETTE: [RGBColor; 10] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
    RGBColor(0xe3, 0x77, 0xc2),
    RGBColor(0x7f, 0x7f, 0x7f),
    RGBColor(0xbc, 0xbd, 0x22),
    RGBColor(0x17, 0xbe, 0xcf),
];

/// The colour of the i-th line, as CSS (for legends drawn in HTML).
pub(crate) fn css_color(i: usize) -> String {
    let RGBColor(r, g, b) = PALETTE[i % PALETTE.len()];
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// One line of a chart.
#[derive(Clone, Debug, Default)]
pub(crate) struct Line {
    /// Legend entry.
    pub name: String,
    /// Points `(x, y)`, in x order; a non-finite y is a gap in the line.
    pub points: Vec<(f64, f64)>,
    /// 95% half-widths of each point's y (error bars); empty for none.
    pub ci: Vec<f64>,
}

/// A shaded range behind the lines (a spread across real servers): at each x, from a low
/// to a high value. Drawn under every line, in the colour of line `color`; nested bands
/// (min–max, p10–p90) darken where they overlap.
#[derive(Clone, Debug, Default)]
pub(crate) struct Band {
    /// Legend entry.
    pub name: String,
    /// `(x, low, high)` in x order; a non-finite bound is a gap.
    pub points: Vec<(f64, f64, f64)>,
    /// Palette index of its colour.
    pub color: usize,
    /// Fill opacity, in (0, 1].
    pub opacity: f64,
}

/// At most `max` band points: each of `max` equal-count buckets keeps its first x, its
/// lowest low and its highest high, so that no excursion is lost; a bucket with a gap is
/// a gap.
pub(crate) fn decimate_band(points: &[(f64, f64, f64)], max: usize) -> Vec<(f64, f64, f64)> {
    if points.len() <= max || max == 0 {
        return points.to_vec();
    }
    (0..max)
        .filter_map(|b| {
            let chunk = &points[b * points.len() / max..(b + 1) * points.len() / max];
            let (x, ..) = *chunk.first()?;
            if chunk.iter().any(|p| !(p.1.is_finite() && p.2.is_finite())) {
                return Some((x, f64::NAN, f64::NAN));
            }
            let lo = chunk.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
            let hi = chunk.iter().map(|p| p.2).fold(f64::NEG_INFINITY, f64::max);
            Some((x, lo, hi))
        })
        .collect()
}

/// A horizontal reference line (an SLO threshold).
#[derive(Clone, Debug)]
pub(crate) struct Threshold {
    pub y: f64,
    pub label: String,
}

/// Vertical lines at event times (faults, fail-overs, the scenario's events): one colour
/// and one legend entry a group. Marks outside the data's x range are left out.
#[derive(Clone, Debug, Default)]
pub(crate) struct Marks {
    /// Legend entry.
    pub label: String,
    /// Colour (red, green, blue).
    pub rgb: (u8, u8, u8),
    /// Where [x].
    pub xs: Vec<f64>,
    /// What each mark is (hover text, and a label over the plot when there are few);
    /// empty: the group's label.
    pub titles: Vec<String>,
}

/// What to draw.
#[derive(Clone, Debug, Default)]
pub(crate) struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// Logarithmic x axis (points with x <= 0 are left out).
    pub x_log: bool,
    /// Category names for x = 0, 1, 2...: the x axis is labelled with them.
    pub x_categories: Option<Vec<String>>,
    /// The x values are whole numbers (server counts): labels only on them.
    pub x_integer: bool,
    /// Mark each point (for sparse data: sweeps, plans).
    pub markers: bool,
    /// A dot plot: each point with its 95% whisker (`Line::ci`), no line between points
    /// (categorical x axes: schedulers, where a line would suggest a trend). Several lines
    /// are set side by side around each category.
    pub dots: bool,
    /// The y axis starts at 0 (else at the smallest value).
    pub y_from_zero: bool,
    /// The y axis reaches at least this (100 for utilisations in %).
    pub y_at_least: f64,
    pub lines: Vec<Line>,
    /// Shaded ranges under the lines.
    pub bands: Vec<Band>,
    pub threshold: Option<Threshold>,
    /// Event marks, drawn over the lines.
    pub marks: Vec<Marks>,
    /// Logarithmic y axis (response times: one slow interval does not flatten the rest;
    /// points with y <= 0 are gaps).
    pub y_log: bool,
    /// The y values are whole numbers (weights, connections): labels only on them.
    pub y_integer: bool,
    /// The warm-up [x units]: shaded from the axis' start to here (not measured).
    pub warmup: Option<f64>,
    /// Drawn at [`NARROW`] size (two charts side by side).
    pub narrow: bool,
}

/// At most `max` points of `points`: the points of each of `max / 2` equal-count buckets
/// with the smallest and the largest y, in x order, so spikes survive.
pub(crate) fn decimate(points: &[(f64, f64)], max: usize) -> Vec<(f64, f64)> {
    if points.len() <= max || max < 4 {
        return points.to_vec();
    }
    let buckets = max / 2;
    let mut out = Vec::with_capacity(max);
    for b in 0..buckets {
        let chunk = &points[b * points.len() / buckets..(b + 1) * points.len() / buckets];
        let by_y = |a: &&(f64, f64), c: &&(f64, f64)| a.1.total_cmp(&c.1);
        let (lo, hi) = match (chunk.iter().min_by(by_y), chunk.iter().max_by(by_y)) {
            (Some(lo), Some(hi)) => (lo, hi),
            _ => continue,
        };
        // Keep x order: whichever extreme comes first in the bucket goes first.
        let (first, second) = if lo.0 <= hi.0 { (lo, hi) } else { (hi, lo) };
        out.push(*first);
        if second != first {
            out.push(*second);
        }
    }
    out
}

/// The runs of drawable points between gaps (non-finite y).
pub(crate) fn segments(points: &[(f64, f64)]) -> impl Iterator<Item = &[(f64, f64)]> {
    points.split(|p| !p.1.is_finite()).filter(|s| !s.is_empty())
}

/// A line's points as drawn: x inside the axis' domain, y <= 0 a gap on a log y axis, each
/// run between gaps decimated (a NaN between runs keeps them apart); with error bars, the
/// drawable points and their half-widths.
fn prepare(c: &Chart, l: &Line) -> Line {
    let y_ok = |y: f64| y.is_finite() && (!c.y_log || y > 0.0);
    let x_ok = |x: f64| x.is_finite() && (!c.x_log || x > 0.0);
    if !l.ci.is_empty() && l.ci.len() == l.points.len() {
        let (points, ci) = l
            .points
            .iter()
            .copied()
            .zip(l.ci.iter().copied())
            .filter(|((x, y), _)| x_ok(*x) && y_ok(*y))
            .unzip();
        return Line { name: l.name.clone(), points, ci };
    }
    let marked: Vec<(f64, f64)> = l
        .points
        .iter()
        .filter(|p| x_ok(p.0))
        .map(|&(x, y)| (x, if y_ok(y) { y } else { f64::NAN }))
        .collect();
    let runs: Vec<&[(f64, f64)]> = segments(&marked).collect();
    let per_run = MAX_POINTS / runs.len().max(1);
    let mut points = Vec::new();
    for (i, run) in runs.iter().enumerate() {
        if i > 0 {
            points.push((run[0].0, f64::NAN));
        }
        points.extend(decimate(run, per_run.max(4)));
    }
    // Leading and trailing gaps keep their x, so that the axis spans them.
    if let (Some(first), Some(last)) = (marked.first(), marked.last()) {
        if !first.1.is_finite() {
            points.insert(0, *first);
        }
        if !last.1.is_finite() && marked.len() > 1 {
            points.push(*last);
        }
    }
    Line { name: l.name.clone(), points, ci: Vec::new() }
}

/// A band's points as drawn: x inside the axis' domain, a bound <= 0 a gap on a log y
/// axis, at most [`MAX_POINTS`].
fn prepare_band(c: &Chart, b: &Band) -> Band {
    let ok = |y: f64| y.is_finite() && (!c.y_log || y > 0.0);
    let points: Vec<(f64, f64, f64)> = b
        .points
        .iter()
        .filter(|p| p.0.is_finite() && (!c.x_log || p.0 > 0.0))
        .map(|&(x, lo, hi)| if ok(lo) && ok(hi) { (x, lo, hi) } else { (x, f64::NAN, f64::NAN) })
        .collect();
    Band { points: decimate_band(&points, MAX_POINTS), ..b.clone() }
}

fn axis_range(values: impl Iterator<Item = f64>, log: bool) -> Option<Range<f64>> {
    let (lo, hi) = values
        .filter(|v| v.is_finite() && (!log || *v > 0.0))
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if lo > hi {
        return None;
    }
    Some(match (log, lo == hi) {
        // A quarter of a decade beyond the data: no third of the width left empty.
        (true, _) => lo / 10f64.powf(0.1)..hi * 10f64.powf(0.1),
        (false, true) => lo - 0.5..hi + 0.5,
        (false, false) => lo..hi,
    })
}

/// A tick label with at most 3 significant digits and no trailing zeros (`20`, `0.05`).
pub(crate) fn tick(v: f64) -> String {
    significant(v, 3)
}

/// `v` with at most `digits` significant digits and no trailing zeros.
pub(crate) fn significant(v: f64, digits: i32) -> String {
    if v == 0.0 || !v.is_finite() {
        return "0".into();
    }
    let decimals = (digits - 1 - v.abs().log10().floor() as i32).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s }
}

/// The y axis: the points, the threshold and `y_at_least`, from 0 when asked; error bars
/// widen it by at most half the points' span (a two-run interval can be ten times wider
/// than the data), and 5% headroom on top (the legend is beside the plot, not over it).
fn y_range(chart: &Chart, lines: &[Line]) -> Option<Range<f64>> {
    let ys = lines.iter().flat_map(|l| l.points.iter().map(|p| p.1));
    let threshold = chart.threshold.iter().map(|t| t.y);
    let at_least = (chart.y_at_least > 0.0).then_some(chart.y_at_least);
    if chart.y_log {
        let tops = lines.iter().flat_map(|l| l.points.iter().zip(&l.ci).map(|(p, e)| p.1 + e));
        return axis_range(ys.chain(threshold).chain(at_least).chain(tops), true);
    }
    let base = axis_range(ys.chain(threshold).chain(at_least), false)?;
    let from_zero = chart.y_from_zero && base.start >= 0.0;
    let (mut lo, mut hi) = (if from_zero { 0.0 } else { base.start }, base.end);
    if from_zero && hi - lo < 1e-12 {
        // All zero (say, no connection lost): a unit axis rather than one around 0.
        hi = if hi > 0.0 { hi * 1.5 } else { 1.0 };
    }
    let slack = (hi - lo).max(hi.abs()) * 0.5;
    for l in lines {
        for (p, e) in l.points.iter().zip(&l.ci) {
            hi = hi.max((p.1 + e).min(base.end + slack));
            if !from_zero {
                lo = lo.min((p.1 - e).max(base.start - slack));
            }
        }
    }
    if chart.y_integer {
        // Whole numbers at both ends, and a little room over the top line.
        return Some(lo.floor()..hi + ((hi - lo) * 0.05).max(0.1));
    }
    Some(lo..hi + (hi - lo) * 0.05)
}

/// The labelled values of a log axis: 1, 2 and 5 of each decade over at most two decades,
/// 1 and 3 over four, powers of ten beyond.
pub(crate) fn log_ticks(r: &Range<f64>) -> Vec<f64> {
    if !(r.start > 0.0 && r.end > r.start) {
        return Vec::new();
    }
    let decades = (r.end / r.start).log10();
    let mults: &[f64] = match decades {
        d if d > 4.0 => &[1.0],
        d if d > 2.0 => &[1.0, 3.0],
        _ => &[1.0, 2.0, 5.0],
    };
    let (lo, hi) = (r.start.log10().floor() as i32, r.end.log10().ceil() as i32);
    (lo..=hi).flat_map(|d| mults.iter().map(move |m| m * 10f64.powi(d))).filter(|v| r.contains(v)).collect()
}

/// Whether a power of ten lies inside `r` (a log axis then has a labelled tick).
fn spans_a_power_of_ten(r: &Range<f64>) -> bool {
    r.start > 0.0 && r.end.log10().floor() > r.start.log10().floor()
}

/// A dot plot's lines side by side around each category: line i's x offset.
fn dodge(c: &Chart, n: usize) -> Vec<f64> {
    (0..n).map(|i| if c.dots && n > 1 { (i as f64 / (n - 1) as f64 - 0.5) * 0.4 } else { 0.0 }).collect()
}

type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// Renders `chart` as an `<svg>` element; `None` when it has no point to draw.
pub(crate) fn render(chart: &Chart) -> Option<String> {
    let offsets = dodge(chart, chart.lines.len());
    let lines: Vec<Line> = chart
        .lines
        .iter()
        .zip(&offsets)
        .map(|(l, off)| {
            let mut p = prepare(chart, l);
            p.points.iter_mut().for_each(|pt| pt.0 += off);
            p
        })
        .collect();
    let bands: Vec<Band> = chart.bands.iter().map(|b| prepare_band(chart, b)).collect();
    // What the axes must span: the lines and the bands' bounds (not drawn as lines).
    let mut extent = lines.clone();
    for b in &bands {
        extent.push(Line { points: b.points.iter().map(|p| (p.0, p.1)).collect(), ..Line::default() });
        extent.push(Line { points: b.points.iter().map(|p| (p.0, p.2)).collect(), ..Line::default() });
    }
    // Every sampled x, gaps too: a time axis spans the run, not just its answered intervals.
    let all = || extent.iter().flat_map(|l| l.points.iter());
    all().find(|p| p.1.is_finite())?;
    let mut x = axis_range(all().map(|p| p.0), chart.x_log)?;
    if let Some(cats) = &chart.x_categories {
        x = -0.5..cats.len() as f64 - 0.5;
    } else if chart.x_integer {
        x = x.start.round() - 0.5..x.end.round() + 0.5;
    } else if chart.markers && !chart.x_log {
        // Room for the first and last markers and error-bar caps.
        let pad = (x.end - x.start) * 0.04;
        x = x.start - pad..x.end + pad;
    }
    let y = y_range(chart, &extent)?;
    // plotters labels a log axis at its powers of ten (and their multiples): a range with
    // none inside (130 to 170 ms) would have no label at all, so it is drawn linear. Its
    // values are all within a factor of ten: no outlier flattens the rest.
    let (x_log, y_log) = (chart.x_log && spans_a_power_of_ten(&x), chart.y_log && spans_a_power_of_ten(&y));
    let relaxed;
    let chart = if (x_log, y_log) == (chart.x_log, chart.y_log) {
        chart
    } else {
        let unlog =
            |label: &str, log: bool| if log { label.to_string() } else { label.replace(" (log scale)", "") };
        relaxed = Chart {
            x_log,
            y_log,
            x_label: unlog(&chart.x_label, x_log),
            y_label: unlog(&chart.y_label, y_log),
            ..chart.clone()
        };
        &relaxed
    };
    let (w, h) = if chart.narrow { NARROW } else { SIZE };
    let legend = overlay::legend_keys(chart, &lines, &x);
    let plot_w = if legend.is_empty() { w } else { w - LEGEND_W };
    let mut svg = String::new();
    let over = {
        let root = SVGBackend::with_string(&mut svg, (plot_w, h)).into_drawing_area();
        let drawn = match (chart.x_log, chart.y_log) {
            (false, false) => draw(&root, chart, (&lines, &bands), x, y),
            (true, false) => draw(&root, chart, (&lines, &bands), x.log_scale(), y),
            (false, true) => draw(&root, chart, (&lines, &bands), x, y.log_scale()),
            (true, true) => draw(&root, chart, (&lines, &bands), x.log_scale(), y.log_scale()),
        };
        let over = drawn.expect("drawing into a String cannot fail");
        root.present().expect("drawing into a String cannot fail");
        over
    };
    Some(overlay::compose(chart, (w, h), plot_w, &svg, &over, &legend))
}

/// The mesh: labels, grid, and whole-number or category ticks.
fn mesh<DB, X, Y>(ch: &mut ChartContext<'_, DB, Cartesian2d<X, Y>>, c: &Chart) -> DrawResult<DB>
where
    DB: DrawingBackend,
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let (xr, yr) = (ch.x_range(), ch.y_range());
    let cats = c.x_categories.clone();
    let cat_label = move |v: &f64| -> String {
        let i = v.round();
        match &cats {
            Some(c) if (v - i).abs() < 1e-6 && i >= 0.0 => c.get(i as usize).cloned().unwrap_or_default(),
            _ => String::new(),
        }
    };
    let num_label = |v: &f64| tick(*v);
    // A log axis's grid and labels are the overlay's (`log_ticks`): plotters' skip the
    // partial decades at the ends and crowd 700, 800 and 900.
    let no_label = |_: &f64| String::new();
    let int_label =
        |v: &f64| if (v - v.round()).abs() < 1e-6 { format!("{}", v.round()) } else { String::new() };
    let mut mesh = ch.configure_mesh();
    mesh.x_desc(&c.x_label)
        .y_desc(&c.y_label)
        .axis_desc_style(("sans-serif", 16))
        .label_style(("sans-serif", 13))
        .light_line_style(RGBColor(0xf0, 0xf0, 0xf0))
        .bold_line_style(RGBColor(0xd0, 0xd0, 0xd0));
    if let Some(n) = c.x_categories.as_ref().map(Vec::len) {
        mesh.x_labels(n.max(1)).x_label_formatter(&cat_label).x_max_light_lines(0);
    } else if c.x_integer {
        let span = (xr.end - xr.start).round() as usize;
        mesh.x_labels(span.clamp(1, 20)).x_label_formatter(&int_label).x_max_light_lines(0);
    } else if c.x_log {
        mesh.x_labels(0).x_label_formatter(&no_label).x_max_light_lines(0);
    } else {
        mesh.x_label_formatter(&num_label);
    }
    if c.y_log {
        mesh.y_labels(0).y_label_formatter(&no_label).y_max_light_lines(0);
    } else if c.y_integer {
        // As many labels as whole numbers (up to 11): plotters then puts them on the integers.
        let whole = (yr.end.floor() - yr.start.ceil()) as usize + 1;
        mesh.y_labels(whole.clamp(2, 11)).y_label_formatter(&int_label).y_max_light_lines(0);
    } else {
        mesh.y_label_formatter(&num_label);
    }
    mesh.draw()
}

/// Line i's stroke width: on a whole-number axis or with markers (sparse points: sweeps,
/// plans) and a few lines, earlier ones wider, so that equal lines (three servers of weight
/// 1, two schedulers with the same p99) show as nested stripes instead of hiding each
/// other. Noisy time series stay thin: stripes would only thicken the noise.
fn stroke(c: &Chart, i: usize, n: usize) -> u32 {
    if (c.y_integer || c.markers) && (2..=4).contains(&n) { 2 + 3 * (n - 1 - i) as u32 / 2 } else { 2 }
}

fn draw<DB, X, Y>(
    root: &DrawingArea<DB, Shift>,
    c: &Chart,
    (lines, bands): (&[Line], &[Band]),
    x: X,
    y: Y,
) -> Result<overlay::Frame, DrawingAreaErrorKind<DB::ErrorType>>
where
    DB: DrawingBackend,
    X: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    root.fill(&WHITE)?;
    let mut ch = ChartBuilder::on(root)
        .caption(&c.title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(x, y)?;
    mesh(&mut ch, c)?;
    let (y0, y1) = (ch.y_range().start, ch.y_range().end);
    for b in bands {
        let fill = PALETTE[b.color % PALETTE.len()].mix(b.opacity.clamp(0.05, 1.0)).filled();
        for run in b.points.split(|p| !(p.1.is_finite() && p.2.is_finite())).filter(|r| r.len() > 1) {
            // Along the top, then back along the bottom; clipped to the axis.
            let top = run.iter().map(|p| (p.0, p.2.clamp(y0, y1)));
            let outline: Vec<(f64, f64)> =
                top.chain(run.iter().rev().map(|p| (p.0, p.1.clamp(y0, y1)))).collect();
            ch.draw_series(std::iter::once(Polygon::new(outline, fill)))?;
        }
    }
    for (i, l) in lines.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let style = color.stroke_width(if c.dots { 2 } else { stroke(c, i, lines.len()) });
        if !c.dots {
            for run in segments(&l.points) {
                if run.len() == 1 {
                    // A lone value between gaps: a dot, or it would not show.
                    ch.draw_series(std::iter::once(Circle::new(run[0], 3, color.filled())))?;
                } else {
                    ch.draw_series(LineSeries::new(run.iter().copied(), style))?;
                }
            }
        }
        if c.markers || c.dots {
            // Nested like the strokes: equal points show as rings.
            let r = if c.dots { 4 } else { stroke(c, i, lines.len()) + 2 };
            let finite = l.points.iter().filter(|p| p.1.is_finite());
            ch.draw_series(finite.map(|&p| Circle::new(p, r, color.filled())))?;
        }
        let whisker = color.stroke_width(2);
        for (&(px, py), &e) in l.points.iter().zip(&l.ci) {
            if e > 0.0 {
                // Clipped to the axis; a cap only where the interval ends inside it.
                let lo = if c.y_log && py - e <= 0.0 { y0 } else { (py - e).max(y0) };
                let hi = (py + e).min(y1);
                ch.draw_series(std::iter::once(PathElement::new(vec![(px, lo), (px, hi)], whisker)))?;
                for end in [py - e, py + e].into_iter().filter(|v| (y0..=y1).contains(v)) {
                    let cap = EmptyElement::at((px, end)) + PathElement::new(vec![(-5, 0), (5, 0)], whisker);
                    ch.draw_series(std::iter::once(cap))?;
                }
            }
        }
    }
    if let Some(t) = &c.threshold {
        let red = RGBColor(0xc0, 0x00, 0x00);
        let (x0, x1) = (ch.x_range().start, ch.x_range().end);
        ch.draw_series(DashedLineSeries::new([(x0, t.y), (x1, t.y)], 10, 6, red.stroke_width(2)))?;
    }
    let (px_x, px_y) = ch.plotting_area().get_pixel_range();
    let to_px = |x: f64, y: f64| ch.backend_coord(&(x, y));
    Ok(overlay::frame(c, lines, (px_x, px_y), (ch.x_range(), ch.y_range()), &to_px))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_have_three_significant_digits() {
        assert_eq!(tick(20.000000000000004), "20");
        assert_eq!(tick(0.05), "0.05");
        assert_eq!(tick(1234.6), "1235");
        assert_eq!(tick(1.5), "1.5");
        assert_eq!(tick(0.0), "0");
        assert_eq!(significant(246.94, 4), "246.9");
    }

    #[test]
    fn decimation_keeps_extremes_and_order() {
        let pts: Vec<(f64, f64)> =
            (0..10_000).map(|i| (i as f64, if i == 5_001 { 100.0 } else { 1.0 })).collect();
        let d = decimate(&pts, 2000);
        assert!(d.len() <= 2000, "{}", d.len());
        assert!(d.contains(&(5001.0, 100.0)), "the spike survives");
        assert!(d.windows(2).all(|w| w[0].0 < w[1].0), "x order");
        assert_eq!(decimate(&pts[..10], 2000), pts[..10].to_vec());
    }

    fn line(name: &str, points: &[(f64, f64)]) -> Line {
        Line { name: name.into(), points: points.to_vec(), ci: vec![] }
    }

    #[test]
    fn renders_svg_with_title_labels_legend_and_hover_values() {
        let chart = Chart {
            title: "Response time".into(),
            x_label: "time [s]".into(),
            y_label: "latency [ms]".into(),
            y_from_zero: true,
            lines: vec![line("p50", &[(0.0, 1.0), (1.0, 2.0)]), line("p99 <&>", &[(0.0, 3.0), (1.0, 5.0)])],
            ..Chart::default()
        };
        let svg = render(&chart).expect("has points");
        assert!(svg.starts_with("<svg class=\"chart\""), "{}", &svg[..80]);
        for t in ["Response time", "time [s]", "latency [ms]", "p50", "p99 &lt;&amp;&gt;", "<polyline"] {
            assert!(svg.contains(t), "missing {t}");
        }
        assert!(svg.contains("<title>p99 &lt;&amp;&gt;\ntime [s]: 1\nlatency [ms]: 5</title>"), "{svg}");
        assert_eq!(svg.matches("class=\"hover\"").count(), 4);
        assert!(svg.contains("class=\"legend\""));
        assert!(render(&Chart { lines: vec![Line::default()], ..chart.clone() }).is_none());
        // One line and nothing else to explain: no legend (the title says it).
        let one = render(&Chart { lines: vec![chart.lines[0].clone()], ..chart }).unwrap();
        assert!(!one.contains("class=\"legend\""));
    }

    #[test]
    fn a_nan_is_a_gap_not_a_zero() {
        let pts =
            [(0.0, 5.0), (1.0, 6.0), (2.0, f64::NAN), (3.0, 5.0), (4.0, 7.0), (5.0, f64::NAN), (6.0, 8.0)];
        let chart =
            Chart { title: "t".into(), y_log: true, lines: vec![line("p99", &pts)], ..Chart::default() };
        let p = prepare(&chart, &chart.lines[0]);
        let runs: Vec<&[(f64, f64)]> = segments(&p.points).collect();
        assert_eq!(runs, [&[(0.0, 5.0), (1.0, 6.0)][..], &[(3.0, 5.0), (4.0, 7.0)][..], &[(6.0, 8.0)][..]]);
        let svg = render(&chart).unwrap();
        let plain =
            render(&Chart { lines: vec![line("p99", &[(0.0, 5.0), (6.0, 8.0)])], ..chart.clone() }).unwrap();
        // Two runs of two points are two lines; the lone point is a dot.
        assert_eq!(svg.matches("<polyline").count(), plain.matches("<polyline").count() + 1);
        assert_eq!(svg.matches("class=\"hover\"").count(), 5, "no hover value for a gap");
        // On a log axis a 0 is a gap too.
        let zero = Chart { lines: vec![line("p99", &[(0.0, 5.0), (1.0, 0.0), (2.0, 6.0)])], ..chart };
        assert_eq!(segments(&prepare(&zero, &zero.lines[0]).points).count(), 2);
    }

    #[test]
    fn marks_and_the_warmup_are_drawn_with_their_positions_and_titles() {
        let xs = [1.0, 1.001, 2.0, 11.0, f64::NAN, -1.0];
        // 960 px over 10 s: 0.001 s apart is the same column; 11 and NaN are outside.
        assert_eq!(overlay::mark_positions(&xs, &(0.0..10.0), 960), [0, 2]);
        let many: Vec<f64> = (0..100_000).map(|i| f64::from(i) / 10_000.0).collect();
        assert!(overlay::mark_positions(&many, &(0.0..10.0), 700).len() <= 700);
        let chart = Chart {
            title: "t".into(),
            x_label: "time [s]".into(),
            lines: vec![line("responses", &[(0.0, 1.0), (10.0, 2.0)])],
            marks: vec![
                Marks {
                    label: "scenario event".into(),
                    rgb: (0x22, 0x22, 0x22),
                    xs: vec![3.0, 7.0],
                    titles: vec!["rs2 weight 0".into(), "rs2 <weight> 1".into()],
                },
                Marks { label: "outside".into(), rgb: (0xd6, 0x27, 0x28), xs: vec![20.0], titles: vec![] },
            ],
            warmup: Some(2.0),
            ..Chart::default()
        };
        let svg = render(&chart).expect("has points");
        assert_eq!(svg.matches("<g class=\"mark\"").count(), 2);
        assert!(svg.contains("<title>rs2 &lt;weight&gt; 1 at 7 s</title>"), "{svg}");
        assert!(svg.contains(">rs2 weight 0</text>"), "a few marks are labelled in the plot");
        assert!(!svg.contains("outside"), "no legend entry for marks that are not drawn");
        assert!(svg.contains("class=\"warmup\" data-x=\"2\""));
        assert!(svg.contains("warm-up (not measured)"));
        // Hover targets are bounded per line and per chart.
        let long: Vec<(f64, f64)> = (0..5000).map(|i| (f64::from(i), 1.0)).collect();
        let lines = (0..100).map(|k| line(&format!("rs{k}"), &long)).collect();
        let svg = render(&Chart { lines, marks: vec![], ..chart }).unwrap();
        assert!(svg.matches("class=\"hover\"").count() <= 100 * 20, "bounded hovers");
    }

    #[test]
    fn a_dot_plot_has_no_connecting_line_and_dodges_its_lines() {
        let cats = ["rr", "wrr", "lc"].map(String::from).to_vec();
        let dots = |name: &str, ys: [f64; 3]| Line {
            name: name.into(),
            points: ys.iter().enumerate().map(|(i, y)| (i as f64, *y)).collect(),
            ci: vec![0.5; 3],
        };
        let chart = Chart {
            title: "p99".into(),
            x_label: "scheduler".into(),
            y_label: "p99 [ms]".into(),
            x_categories: Some(cats),
            dots: true,
            y_log: true,
            lines: vec![dots("a", [10.0, 20.0, 3000.0]), dots("b", [11.0, 21.0, 2900.0])],
            ..Chart::default()
        };
        let svg = render(&chart).unwrap();
        assert_eq!(svg.matches("<circle cx").count(), 6 + 2, "six dots (and two in the legend)");
        assert!(svg.contains("scheduler: wrr\np99 [ms]: 21 ± 0.5"), "{svg}");
        assert_eq!(dodge(&chart, 2), [-0.2, 0.2]);
        let connected = render(&Chart { dots: false, markers: true, ..chart.clone() }).unwrap();
        assert!(connected.matches("<polyline").count() > svg.matches("<polyline").count());
    }

    #[test]
    fn bands_are_filled_under_the_lines_span_the_axis_and_have_legend_entries() {
        let band = |name: &str, lo: f64, hi: f64, opacity: f64| Band {
            name: name.into(),
            points: (0..5000).map(|i| (f64::from(i), lo, if i == 2500 { 400.0 } else { hi })).collect(),
            color: 0,
            opacity,
        };
        let chart = Chart {
            title: "utilisation".into(),
            y_from_zero: true,
            lines: vec![line("median", &[(0.0, 50.0), (4999.0, 50.0)])],
            bands: vec![band("min–max", 10.0, 90.0, 0.15), band("p10–p90", 30.0, 70.0, 0.3)],
            ..Chart::default()
        };
        let svg = render(&chart).unwrap();
        assert_eq!(svg.matches("<polygon").count(), 2, "one polygon a band without gaps");
        let (poly, line) = (svg.rfind("<polygon").unwrap(), svg.rfind("<polyline").unwrap());
        assert!(poly < line, "bands under the line");
        for t in ["min–max", "p10–p90", "fill-opacity=\"0.15\""] {
            assert!(svg.contains(t), "missing {t}");
        }
        // The spike at x = 2500 survives decimation and stretches the y axis.
        let d = decimate_band(&chart.bands[0].points, MAX_POINTS);
        assert!(d.len() <= MAX_POINTS && d.iter().any(|p| p.2 == 400.0));
        assert!(svg.contains("\n400\n</text>"), "y axis reaches the band's top");
        // A gap splits a band.
        let mut gap = chart.bands[0].clone();
        gap.points[100].1 = f64::NAN;
        let svg = render(&Chart { bands: vec![gap], ..chart }).unwrap();
        assert_eq!(svg.matches("<polygon").count(), 2);
    }

    #[test]
    fn integer_axes_label_whole_numbers_only() {
        let chart = Chart {
            title: "weight".into(),
            y_integer: true,
            y_from_zero: true,
            lines: vec![line("rs1", &[(0.0, 1.0), (50.0, 1.0)]), line("rs2", &[(0.0, 1.0), (50.0, 0.0)])],
            ..Chart::default()
        };
        let svg = render(&chart).unwrap();
        for half in ["\n0.5\n</text>", "\n0.2\n</text>", "\n1.5\n</text>"] {
            assert!(!svg.contains(half), "fractional label {half}");
        }
        assert!(svg.contains("\n1\n</text>"));
        assert_eq!(stroke(&chart, 0, 3), 5, "equal lines nest: the first is widest");
        assert_eq!(stroke(&chart, 2, 3), 2);
        assert_eq!(stroke(&Chart::default(), 0, 3), 2, "noisy real-valued lines stay thin");
    }

    #[test]
    fn a_narrow_log_axis_still_has_labels() {
        let chart = Chart {
            title: "t".into(),
            y_log: true,
            lines: vec![line("p99", &[(0.0, 130.0), (10.0, 170.0)])],
            ..Chart::default()
        };
        let svg = render(&chart).unwrap();
        let labels: Vec<f64> = svg
            .split("</text>")
            .filter_map(|t| t.rsplit('>').next()?.trim().parse::<f64>().ok())
            .filter(|v| (100.0..=220.0).contains(v))
            .collect();
        assert!(labels.len() >= 2, "y labels {labels:?} in {svg}");
        let c = Chart { y_label: "p99 [ms] (log scale)".into(), ..chart };
        assert!(!render(&c).unwrap().contains("(log scale)"), "a linear axis does not say log");
        assert!(spans_a_power_of_ten(&(80.0..120.0)) && !spans_a_power_of_ten(&(120.0..800.0)));
        assert_eq!(log_ticks(&(32.0..2500.0)), [50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0]);
        assert_eq!(log_ticks(&(10.0..5000.0)), [10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0]);
        assert_eq!(log_ticks(&(32.0..250.0)), [50.0, 100.0, 200.0]);
        assert_eq!(log_ticks(&(0.00001..1.2)), [0.00001, 0.0001, 0.001, 0.01, 0.1, 1.0]);
    }

    #[test]
    fn renders_log_axes_categories_error_bars_and_thresholds() {
        let chart = Chart {
            title: "t".into(),
            x_log: true,
            y_log: true,
            lines: vec![Line { name: "tail".into(), points: vec![(0.5, 0.1), (50.0, 0.001)], ci: vec![] }],
            ..Chart::default()
        };
        assert!(render(&chart).is_some());
        let chart = Chart {
            title: "t".into(),
            x_categories: Some(["rr", "wrr", "lc", "wlc", "sed", "nq", "mh"].map(String::from).to_vec()),
            markers: true,
            lines: vec![Line { name: "a".into(), points: vec![(0.0, 1.0), (6.0, 2.0)], ci: vec![0.1, 0.2] }],
            threshold: Some(Threshold { y: 1.5, label: "SLO".into() }),
            ..Chart::default()
        };
        let svg = render(&chart).expect("has points");
        for t in ["rr", "wrr", "lc", "wlc", "sed", "nq", "mh", "SLO"] {
            assert!(
                svg.contains(&format!("\n{t}\n</text>")) || svg.contains(&format!(">{t}<")),
                "missing {t}"
            );
        }
    }
}
