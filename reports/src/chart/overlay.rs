//! What plotters cannot write into SVG: the warm-up band, the event marks with their
//! labels, hover values as `<title>` elements (the browser shows them; no script), and the
//! legend in a panel right of the plot area. Every element has a class (`warmup`, `mark`,
//! `hover`, `legend`, `plot-area`) so that tests and style sheets can find it.

use std::fmt::Write as _;
use std::ops::Range;

use plotters::style::RGBColor;

use super::{Chart, LEGEND_W, Line, MAX_LEGEND, PALETTE, significant, stroke};
use crate::text::escape;

/// Most hover targets a line gets (evenly spaced among its points), and a chart: a
/// hundred servers' lines share the chart's budget (at least 20 each), so that a page
/// stays a few megabytes at most.
const MAX_HOVERS: usize = 400;
const MAX_CHART_HOVERS: usize = 2000;

/// Most marks of a group labelled with text over the plot (more would overlap).
const MAX_MARK_LABELS: usize = 8;

/// The plot area [px] and the overlay drawn over it.
pub(crate) struct Frame {
    x: Range<i32>,
    y: Range<i32>,
    body: String,
}

fn css((r, g, b): (u8, u8, u8)) -> String {
    format!("#{r:02x}{g:02x}{b:02x}")
}

fn rgb(c: RGBColor) -> (u8, u8, u8) {
    (c.0, c.1, c.2)
}

/// At most one mark a pixel column (a thousand fail-overs of active-active blocks draw as
/// a band, not as a thousand elements): the indices of the marks drawn.
pub(super) fn mark_positions(xs: &[f64], x: &Range<f64>, width_px: u32) -> Vec<usize> {
    let width = x.end - x.start;
    let mut seen = std::collections::BTreeSet::new();
    (0..xs.len())
        .filter(|&i| xs[i].is_finite() && x.contains(&xs[i]))
        .filter(|&i| seen.insert(((xs[i] - x.start) / width * f64::from(width_px)) as i64))
        .collect()
}

/// An x value as the reader knows it: the category's name, or the number.
fn x_text(c: &Chart, x: f64) -> String {
    match &c.x_categories {
        Some(cats) => cats.get(x.round().max(0.0) as usize).cloned().unwrap_or_default(),
        None => significant(x, 4),
    }
}

fn warmup(c: &Chart, f: &mut Frame, x: &Range<f64>, px: &dyn Fn(f64, f64) -> (i32, i32)) {
    let Some(w) = c.warmup.filter(|w| *w > x.start) else { return };
    let end = px(w.min(x.end), 0.0).0.clamp(f.x.start, f.x.end);
    let _ = writeln!(
        f.body,
        "<rect class=\"warmup\" data-x=\"{w}\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"#808080\" \
         fill-opacity=\"0.16\"><title>warm-up until {} s: not measured</title></rect>",
        f.x.start,
        f.y.start,
        end - f.x.start,
        f.y.end - f.y.start,
        significant(w, 4)
    );
}

/// A log axis's grid lines and labels at [`super::log_ticks`].
fn log_axes(
    c: &Chart,
    f: &mut Frame,
    (x, y): (&Range<f64>, &Range<f64>),
    px: &dyn Fn(f64, f64) -> (i32, i32),
) {
    let grid = "stroke=\"#d0d0d0\" stroke-width=\"1\"";
    // plotters writes its 13-point labels at 10.48 (its font estimate): the same size.
    let text = "font-family=\"sans-serif\" font-size=\"10.48\" fill=\"#000000\"";
    if c.y_log {
        for v in super::log_ticks(y) {
            let at = px(x.start, v).1;
            let _ = writeln!(
                f.body,
                "<g class=\"tick\"><line x1=\"{}\" x2=\"{}\" y1=\"{at}\" y2=\"{at}\" {grid}/><text x=\"{}\" \
                 y=\"{at}\" text-anchor=\"end\" dominant-baseline=\"middle\" {text}>{}</text></g>",
                f.x.start,
                f.x.end,
                f.x.start - 7,
                super::tick(v)
            );
        }
    }
    if c.x_log {
        for v in super::log_ticks(x) {
            let at = px(v, y.start).0;
            let _ = writeln!(
                f.body,
                "<g class=\"tick\"><line x1=\"{at}\" x2=\"{at}\" y1=\"{}\" y2=\"{}\" {grid}/><text x=\"{at}\" \
                 y=\"{}\" text-anchor=\"middle\" dominant-baseline=\"hanging\" {text}>{}</text></g>",
                f.y.start,
                f.y.end,
                f.y.end + 7,
                super::tick(v)
            );
        }
    }
}

fn marks(c: &Chart, f: &mut Frame, x: &Range<f64>, px: &dyn Fn(f64, f64) -> (i32, i32)) {
    for m in &c.marks {
        let shown = mark_positions(&m.xs, x, (f.x.end - f.x.start).max(1) as u32);
        let labelled = !m.titles.is_empty() && shown.len() <= MAX_MARK_LABELS;
        for (k, &i) in shown.iter().enumerate() {
            let v = m.xs[i];
            let at = px(v, 0.0).0;
            let what = m.titles.get(i).filter(|t| !t.is_empty()).unwrap_or(&m.label);
            let text = escape(&format!("{what} at {} s", significant(v, 4)));
            let _ = writeln!(
                f.body,
                "<g class=\"mark\" data-x=\"{v}\"><line x1=\"{at}\" x2=\"{at}\" y1=\"{}\" y2=\"{}\" stroke=\"{}\" \
                 stroke-width=\"1.5\" stroke-dasharray=\"6 3\"/><line x1=\"{at}\" x2=\"{at}\" y1=\"{}\" y2=\"{}\" \
                 stroke=\"transparent\" stroke-width=\"9\"><title>{text}</title></line></g>",
                f.y.start,
                f.y.end,
                css(m.rgb),
                f.y.start,
                f.y.end
            );
            if labelled {
                // Staggered, so that two close events do not print over each other.
                let y = f.y.start + 12 + 14 * (k as i32 % 2);
                // Right of the line, or left of it near the plot's right edge (about 7 px a
                // character at 12 px), so that it never runs into the legend.
                let wide = 7 * what.chars().count() as i32;
                let (x, anchor) = if at + 4 + wide > f.x.end { (at - 4, "end") } else { (at + 4, "start") };
                let _ = writeln!(
                    f.body,
                    "<text class=\"mark-label\" x=\"{x}\" y=\"{y}\" text-anchor=\"{anchor}\" font-family=\"sans-serif\" \
                     font-size=\"12\" fill=\"{}\">{}</text>",
                    css(m.rgb),
                    escape(what)
                );
            }
        }
    }
}

fn hovers(c: &Chart, f: &mut Frame, lines: &[Line], px: &dyn Fn(f64, f64) -> (i32, i32)) {
    let offsets = super::dodge(c, lines.len());
    for (i, l) in lines.iter().enumerate() {
        let idx: Vec<usize> = (0..l.points.len()).filter(|&k| l.points[k].1.is_finite()).collect();
        let per_line = (MAX_CHART_HOVERS / lines.len().max(1)).clamp(20, MAX_HOVERS);
        let step = idx.len().div_ceil(per_line).max(1);
        for &k in idx.iter().step_by(step) {
            let (x, y) = l.points[k];
            let (cx, cy) = px(x, y);
            if !f.x.contains(&cx) || !(f.y.start..=f.y.end).contains(&cy) {
                continue;
            }
            let ci =
                l.ci.get(k)
                    .filter(|e| **e > 0.0)
                    .map_or(String::new(), |e| format!(" ± {}", significant(*e, 3)));
            let name = if l.name.is_empty() { String::new() } else { format!("{}\n", l.name) };
            let text = format!(
                "{name}{}: {}\n{}: {}{ci}",
                c.x_label,
                x_text(c, x - offsets[i]),
                c.y_label,
                significant(y, 4)
            );
            let _ = writeln!(
                f.body,
                "<circle class=\"hover\" cx=\"{cx}\" cy=\"{cy}\" r=\"6\" fill=\"transparent\"><title>{}</title></circle>",
                escape(&text)
            );
        }
    }
}

/// The overlay of `c` over its plot area `(x, y)` [px]; `px` maps data to pixels.
pub(super) fn frame(
    c: &Chart,
    lines: &[Line],
    (x, y): (Range<i32>, Range<i32>),
    (x_range, y_range): (Range<f64>, Range<f64>),
    px: &dyn Fn(f64, f64) -> (i32, i32),
) -> Frame {
    let mut f = Frame { body: String::new(), x, y };
    let _ = writeln!(
        f.body,
        "<rect class=\"plot-area\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" pointer-events=\"none\"/>",
        f.x.start,
        f.y.start,
        f.x.end - f.x.start,
        f.y.end - f.y.start
    );
    log_axes(c, &mut f, (&x_range, &y_range), px);
    warmup(c, &mut f, &x_range, px);
    marks(c, &mut f, &x_range, px);
    hovers(c, &mut f, lines, px);
    f
}

/// How a legend entry is drawn.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Key {
    Line { rgb: (u8, u8, u8), width: u32 },
    Dot { rgb: (u8, u8, u8) },
    Dashed { rgb: (u8, u8, u8) },
    Mark { rgb: (u8, u8, u8) },
    Band,
    Shade { rgb: (u8, u8, u8), opacity: f64 },
}

/// The legend's entries; empty when a single unnamed or lone line needs none.
pub(super) fn legend_keys(c: &Chart, lines: &[Line], x: &Range<f64>) -> Vec<(Key, String)> {
    let mut keys = Vec::new();
    let drawn = |l: &Line| l.points.iter().any(|p| p.1.is_finite());
    if c.lines.len() <= MAX_LEGEND {
        for (i, l) in lines.iter().enumerate().filter(|(_, l)| !l.name.is_empty() && drawn(l)) {
            let rgb = rgb(PALETTE[i % PALETTE.len()]);
            let key =
                if c.dots { Key::Dot { rgb } } else { Key::Line { rgb, width: stroke(c, i, lines.len()) } };
            keys.push((key, l.name.clone()));
        }
    }
    // Nested bands darken where they overlap: each key shows its band over the earlier ones.
    let mut shade = 0.0;
    for b in c.bands.iter().filter(|b| b.points.iter().any(|p| p.2.is_finite())) {
        shade = 1.0 - (1.0 - shade) * (1.0 - b.opacity);
        if !b.name.is_empty() {
            let rgb = rgb(PALETTE[b.color % PALETTE.len()]);
            keys.push((Key::Shade { rgb, opacity: (shade * 1000.0f64).round() / 1000.0 }, b.name.clone()));
        }
    }
    let marks: Vec<_> =
        c.marks.iter().filter(|m| !m.label.is_empty() && m.xs.iter().any(|v| x.contains(v))).collect();
    let warmup = c.warmup.is_some_and(|w| w > x.start);
    let others = c.threshold.is_some() || warmup || !marks.is_empty() || !c.bands.is_empty();
    if keys.len() == 1 && !others {
        return Vec::new();
    }
    if let Some(t) = &c.threshold {
        keys.push((Key::Dashed { rgb: (0xc0, 0, 0) }, t.label.clone()));
    }
    for m in marks {
        keys.push((Key::Mark { rgb: m.rgb }, m.label.clone()));
    }
    if warmup {
        keys.push((Key::Band, "warm-up (not measured)".into()));
    }
    keys
}

/// Most characters of a legend label (the whole label is its hover text).
const LABEL_CHARS: usize = 24;

fn legend(keys: &[(Key, String)], x0: u32, y0: i32) -> String {
    let mut out = format!("<g class=\"legend\" transform=\"translate({x0},{y0})\">\n");
    let h = 12 + 22 * keys.len() as i32;
    let _ = writeln!(
        out,
        "<rect class=\"legend-box\" x=\"0\" y=\"0\" width=\"{}\" height=\"{h}\" fill=\"white\" stroke=\"#bbbbbb\"/>",
        LEGEND_W - 14
    );
    for (i, (key, label)) in keys.iter().enumerate() {
        let y = 17 + 22 * i as i32;
        let sample = match key {
            Key::Line { rgb, width } => {
                format!(
                    "<line x1=\"8\" x2=\"30\" y1=\"{y}\" y2=\"{y}\" stroke=\"{}\" stroke-width=\"{width}\"/>",
                    css(*rgb)
                )
            }
            Key::Dot { rgb } => format!(
                "<line x1=\"19\" x2=\"19\" y1=\"{}\" y2=\"{}\" stroke=\"{c}\" stroke-width=\"2\"/><circle cx=\"19\" \
                 cy=\"{y}\" r=\"4\" fill=\"{c}\"/>",
                y - 8,
                y + 8,
                c = css(*rgb)
            ),
            Key::Dashed { rgb } => format!(
                "<line x1=\"8\" x2=\"30\" y1=\"{y}\" y2=\"{y}\" stroke=\"{}\" stroke-width=\"2\" stroke-dasharray=\"6 3\"/>",
                css(*rgb)
            ),
            Key::Mark { rgb } => format!(
                "<line x1=\"19\" x2=\"19\" y1=\"{}\" y2=\"{}\" stroke=\"{}\" stroke-width=\"1.5\" stroke-dasharray=\"4 2\"/>",
                y - 9,
                y + 9,
                css(*rgb)
            ),
            Key::Shade { rgb, opacity } => format!(
                "<rect x=\"8\" y=\"{}\" width=\"22\" height=\"14\" fill=\"{}\" fill-opacity=\"{opacity}\"/>",
                y - 7,
                css(*rgb)
            ),
            Key::Band => format!(
                "<rect x=\"8\" y=\"{}\" width=\"22\" height=\"14\" fill=\"#808080\" fill-opacity=\"0.16\"/>",
                y - 7
            ),
        };
        // The end of a long label is what tells lines apart (`…forwarding=Nat`).
        let n = label.chars().count();
        let short: String = if n > LABEL_CHARS {
            std::iter::once('…').chain(label.chars().skip(n + 1 - LABEL_CHARS)).collect()
        } else {
            label.clone()
        };
        let _ = writeln!(
            out,
            "<g>{sample}<text x=\"38\" y=\"{}\" font-family=\"sans-serif\" font-size=\"13\">{}<title>{}</title></text></g>",
            y + 4,
            escape(&short),
            escape(label)
        );
    }
    out.push_str("</g>\n");
    out
}

/// The whole `<svg>`: plotters' drawing (`plot`, `plot_w` wide), the overlay, the legend.
pub(super) fn compose(
    c: &Chart,
    (w, h): (u32, u32),
    plot_w: u32,
    plot: &str,
    f: &Frame,
    keys: &[(Key, String)],
) -> String {
    let mut out = format!(
        "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" \
         viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"{}\">\n",
        escape(&c.title)
    );
    // plotters' own `<svg>` becomes a group: one `<svg>` element a chart.
    let inner = plot.trim_end().strip_suffix("</svg>").unwrap_or(plot);
    let inner = inner.find('>').filter(|_| inner.starts_with("<svg")).map_or(inner, |end| &inner[end + 1..]);
    out.push_str("<g class=\"plot\">");
    out.push_str(inner);
    out.push_str("</g>\n<g class=\"overlay\">\n");
    out.push_str(&f.body);
    out.push_str("</g>\n");
    if !keys.is_empty() {
        out.push_str(&legend(keys, plot_w + 4, f.y.start));
    }
    out.push_str("</svg>\n");
    out
}
