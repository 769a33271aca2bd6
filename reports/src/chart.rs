//! Line charts as inline SVG, drawn with plotters' SVG backend.
//!
//! Text is emitted as SVG `<text>` elements that the browser lays out, so no font is
//! linked or embedded (plotters' "naive" font estimate sizes the labels).

use std::ops::Range;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

/// Chart size [px]; the page scales it down to its column's width.
const SIZE: (u32, u32) = (960, 400);

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
    /// Points `(x, y)`, in x order.
    pub points: Vec<(f64, f64)>,
    /// 95% half-widths of each point's y (error bars); empty for none.
    pub ci: Vec<f64>,
}

/// A horizontal reference line (an SLO threshold).
#[derive(Clone, Debug)]
pub(crate) struct Threshold {
    pub y: f64,
    pub label: String,
}

/// Vertical lines at event times (faults, fail-overs): one colour and one legend entry a
/// group. Marks outside the data's x range are left out.
#[derive(Clone, Debug, Default)]
pub(crate) struct Marks {
    /// Legend entry.
    pub label: String,
    /// Colour (red, green, blue).
    pub rgb: (u8, u8, u8),
    /// Where [x].
    pub xs: Vec<f64>,
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
    /// (categorical x axes: schedulers, where a line would suggest a trend).
    pub dots: bool,
    /// The y axis starts at 0 (else at the smallest value).
    pub y_from_zero: bool,
    /// The y axis reaches at least this (1.0 for utilisations).
    pub y_at_least: f64,
    pub lines: Vec<Line>,
    pub threshold: Option<Threshold>,
    /// Event marks, drawn over the lines.
    pub marks: Vec<Marks>,
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

fn axis_range(values: impl Iterator<Item = f64>, log: bool) -> Option<Range<f64>> {
    let (lo, hi) = values
        .filter(|v| v.is_finite() && (!log || *v > 0.0))
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if lo > hi {
        return None;
    }
    Some(match (log, lo == hi) {
        // Whole decades, so the axis has labelled powers of ten.
        (true, _) => 10f64.powf(lo.log10().floor())..10f64.powf((hi * 1.0001).log10().ceil()),
        (false, true) => lo - 0.5..hi + 0.5,
        (false, false) => lo..hi,
    })
}

/// A tick label with at most 3 significant digits and no trailing zeros (`20`, `0.05`).
fn tick(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return "0".into();
    }
    let decimals = (2 - v.abs().log10().floor() as i32).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s }
}

/// The y axis: the points, the threshold and `y_at_least`, from 0 when asked; error bars
/// widen it by at most half the points' span (a two-run interval can be ten times wider
/// than the data), and 12% headroom on top keeps the legend off the lines.
fn y_range(chart: &Chart, lines: &[Line]) -> Option<Range<f64>> {
    let ys = lines.iter().flat_map(|l| l.points.iter().map(|p| p.1));
    let threshold = chart.threshold.iter().map(|t| t.y);
    let at_least = (chart.y_at_least > 0.0).then_some(chart.y_at_least);
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
    Some(lo..hi + (hi - lo) * 0.12)
}

type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// Renders `chart` as an `<svg>` element; `None` when it has no point to draw.
pub(crate) fn render(chart: &Chart) -> Option<String> {
    let lines: Vec<Line> = chart
        .lines
        .iter()
        .map(|l| {
            let keep = |&(x, y): &(f64, f64)| x.is_finite() && y.is_finite() && (!chart.x_log || x > 0.0);
            let ci = if l.ci.len() == l.points.len() { l.ci.clone() } else { Vec::new() };
            let (points, ci): (Vec<_>, Vec<_>) = if ci.is_empty() {
                (decimate(&l.points.iter().copied().filter(keep).collect::<Vec<_>>(), MAX_POINTS), Vec::new())
            } else {
                l.points.iter().copied().zip(ci).filter(|(p, _)| keep(p)).unzip()
            };
            Line { name: l.name.clone(), points, ci }
        })
        .collect();
    let all = || lines.iter().flat_map(|l| l.points.iter());
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
    let y = y_range(chart, &lines)?;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        let drawn = if chart.x_log {
            draw(&root, chart, &lines, x.log_scale(), y)
        } else {
            draw(&root, chart, &lines, x, y)
        };
        drawn.and_then(|()| root.present()).expect("drawing into a String cannot fail");
    }
    Some(svg)
}

fn draw<DB, X>(
    root: &DrawingArea<DB, Shift>,
    c: &Chart,
    lines: &[Line],
    x: X,
    y: Range<f64>,
) -> DrawResult<DB>
where
    DB: DrawingBackend,
    X: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
{
    root.fill(&WHITE)?;
    let mut ch = ChartBuilder::on(root)
        .caption(&c.title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(x, y)?;
    let (ch_x_start, ch_x_end) = (ch.x_range().start, ch.x_range().end);
    let cats = c.x_categories.clone();
    let cat_label = move |v: &f64| -> String {
        let i = v.round();
        match &cats {
            Some(c) if (v - i).abs() < 1e-6 && i >= 0.0 => c.get(i as usize).cloned().unwrap_or_default(),
            Some(_) => String::new(),
            None => String::new(),
        }
    };
    let mut mesh = ch.configure_mesh();
    mesh.x_desc(&c.x_label)
        .y_desc(&c.y_label)
        .axis_desc_style(("sans-serif", 16))
        .label_style(("sans-serif", 13))
        .light_line_style(RGBColor(0xee, 0xee, 0xee))
        .bold_line_style(RGBColor(0xd0, 0xd0, 0xd0));
    let num_label = |v: &f64| tick(*v);
    let int_label =
        |v: &f64| if (v - v.round()).abs() < 1e-6 { format!("{}", v.round()) } else { String::new() };
    if let Some(n) = c.x_categories.as_ref().map(Vec::len) {
        mesh.x_labels(n.max(1)).x_label_formatter(&cat_label);
    } else if c.x_integer {
        let span = (ch_x_end - ch_x_start).round() as usize;
        mesh.x_labels(span.clamp(1, 20)).x_label_formatter(&int_label);
    } else {
        mesh.x_label_formatter(&num_label);
    }
    mesh.y_label_formatter(&num_label);
    mesh.draw()?;
    for (i, l) in lines.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let style = color.stroke_width(2);
        let anno = ch.draw_series(LineSeries::new(l.points.iter().copied(), style))?;
        if i < MAX_LEGEND && !l.name.is_empty() {
            anno.label(l.name.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3)));
        }
        if c.markers {
            ch.draw_series(l.points.iter().map(|&p| Circle::new(p, 4, color.filled())))?;
        }
        let (y0, y1) = (ch.y_range().start, ch.y_range().end);
        for (&(px, py), &e) in l.points.iter().zip(&l.ci) {
            if e > 0.0 {
                // Clipped to the axis; a cap only where the interval ends inside it.
                let (lo, hi) = ((py - e).max(y0), (py + e).min(y1));
                ch.draw_series(std::iter::once(PathElement::new(vec![(px, lo), (px, hi)], style)))?;
                for end in [py - e, py + e].into_iter().filter(|v| (y0..=y1).contains(v)) {
                    let cap = EmptyElement::at((px, end)) + PathElement::new(vec![(-5, 0), (5, 0)], style);
                    ch.draw_series(std::iter::once(cap))?;
                }
            }
        }
    }
    if let Some(t) = &c.threshold {
        let red = RGBColor(0xc0, 0x00, 0x00);
        let (x0, x1) = (ch.x_range().start, ch.x_range().end);
        ch.draw_series(DashedLineSeries::new([(x0, t.y), (x1, t.y)], 10, 6, red.stroke_width(2)))?
            .label(t.label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], red.stroke_width(3)));
    }
    draw_marks(&mut ch, &c.marks)?;
    let labelled = lines.iter().take(MAX_LEGEND).any(|l| !l.name.is_empty())
        || c.threshold.is_some()
        || c.marks.iter().any(|m| !m.label.is_empty());
    if labelled {
        ch.configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(0xbb, 0xbb, 0xbb))
            .label_font(("sans-serif", 13))
            .draw()?;
    }
    Ok(())
}

/// At most one mark a pixel column: a thousand fail-overs of active-active blocks draw as
/// a band, not as a thousand elements.
fn mark_positions(xs: &[f64], x: &Range<f64>) -> Vec<f64> {
    let width = x.end - x.start;
    let mut seen = std::collections::BTreeSet::new();
    xs.iter()
        .copied()
        .filter(|v| v.is_finite() && x.contains(v))
        .filter(|v| seen.insert(((v - x.start) / width * f64::from(SIZE.0)) as i64))
        .collect()
}

fn draw_marks<DB, X>(
    ch: &mut ChartContext<'_, DB, Cartesian2d<X, RangedCoordf64>>,
    marks: &[Marks],
) -> DrawResult<DB>
where
    DB: DrawingBackend,
    X: Ranged<ValueType = f64>,
{
    let (x, y) = (ch.x_range(), ch.y_range());
    for m in marks {
        let (r, g, b) = m.rgb;
        let color = RGBColor(r, g, b);
        let xs = mark_positions(&m.xs, &x);
        if xs.is_empty() {
            continue;
        }
        let style = color.mix(0.8).stroke_width(1);
        let anno =
            ch.draw_series(xs.iter().map(|&v| PathElement::new(vec![(v, y.start), (v, y.end)], style)))?;
        if !m.label.is_empty() {
            anno.label(m.label.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        }
    }
    Ok(())
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

    #[test]
    fn renders_svg_with_title_labels_and_legend() {
        let chart = Chart {
            title: "Response time".into(),
            x_label: "time [s]".into(),
            y_label: "latency [ms]".into(),
            y_from_zero: true,
            lines: vec![
                Line { name: "p50".into(), points: vec![(0.0, 1.0), (1.0, 2.0)], ci: vec![] },
                Line { name: "p99 <&>".into(), points: vec![(0.0, 3.0), (1.0, 5.0)], ci: vec![] },
            ],
            ..Chart::default()
        };
        let svg = render(&chart).expect("has points");
        assert!(svg.starts_with("<svg"), "{}", &svg[..80]);
        for t in ["Response time", "time [s]", "latency [ms]", "p50", "p99 &lt;&amp;&gt;", "<polyline"] {
            assert!(svg.contains(t), "missing {t}");
        }
        assert!(render(&Chart { lines: vec![Line::default()], ..chart }).is_none());
    }

    #[test]
    fn marks_draw_one_line_a_pixel_column_inside_the_x_range() {
        let x = 0.0..10.0;
        // 960 px over 10 s: 0.001 s apart is the same column; 11 and NaN are outside.
        assert_eq!(mark_positions(&[1.0, 1.001, 2.0, 11.0, f64::NAN, -1.0], &x), [1.0, 2.0]);
        let xs: Vec<f64> = (0..100_000).map(|i| f64::from(i) / 10_000.0).collect();
        assert!(mark_positions(&xs, &x).len() <= SIZE.0 as usize);
        let line = Line { name: "responses".into(), points: vec![(0.0, 1.0), (10.0, 2.0)], ci: vec![] };
        let chart = Chart {
            title: "t".into(),
            lines: vec![line],
            marks: vec![
                Marks { label: "fail-over <&>".into(), rgb: (0x22, 0x22, 0x22), xs: vec![3.0, 7.0] },
                Marks { label: "outside".into(), rgb: (0xd6, 0x27, 0x28), xs: vec![20.0] },
            ],
            ..Chart::default()
        };
        let svg = render(&chart).expect("has points");
        assert!(svg.contains("fail-over &lt;&amp;&gt;"), "the marks' legend entry");
        assert!(!svg.contains("outside"), "no legend entry for marks that are not drawn");
        let plain = render(&Chart { marks: Vec::new(), ..chart }).unwrap();
        assert_eq!(svg.matches("<polyline").count(), plain.matches("<polyline").count() + 2 + 1);
    }

    #[test]
    fn renders_log_axes_categories_error_bars_and_thresholds() {
        let chart = Chart {
            title: "t".into(),
            x_log: true,
            lines: vec![Line { name: "cdf".into(), points: vec![(0.5, 0.1), (50.0, 0.9)], ci: vec![] }],
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
            assert!(svg.contains(&format!("\n{t}\n</text>")), "missing {t} in {svg}");
        }
    }
}
