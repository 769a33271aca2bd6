//! A self-contained HTML page: inline CSS, inline SVG, no scripts, no fetched resources.
//! Every piece of text put into the page goes through [`escape`].

use std::fmt::Write as _;

use crate::chart::{self, Chart};
use crate::text::escape;

const CSS: &str = "\
:root{--fg:#1d2330;--muted:#5b6475;--line:#d9dde5;--bg:#f6f7f9;--accent:#1f77b4}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:var(--fg);background:var(--bg)}
main{max-width:1040px;margin:0 auto;padding:24px 28px 48px;background:#fff;min-height:100vh}
h1{font-size:26px;margin:0 0 4px}
h2{font-size:19px;margin:36px 0 10px;padding-bottom:4px;border-bottom:1px solid var(--line)}
h3{font-size:16px;margin:20px 0 8px}
p.lead{color:var(--muted);margin:0 0 12px}
nav{margin:10px 0 0;font-size:14px}
nav a{color:var(--accent);text-decoration:none;margin-right:14px}
table{border-collapse:collapse;font-variant-numeric:tabular-nums;margin:6px 0 12px;font-size:14px}
th,td{padding:4px 8px;border-bottom:1px solid var(--line);text-align:right;white-space:nowrap}
th{background:#eef1f5;font-weight:600}
td.l,th.l{text-align:left}
table.kv th{text-align:left;background:none;font-weight:500;color:var(--muted)}
.scroll{overflow-x:auto}
figure{margin:18px 0;padding:0}
figure svg{width:100%;height:auto;display:block;border:1px solid var(--line);border-radius:4px}
figcaption{color:var(--muted);font-size:13px;margin-top:4px}
.pair{display:grid;grid-template-columns:1fr 1fr;gap:12px}
.legend span{display:inline-block;margin-right:12px}
.legend i{display:inline-block;width:18px;height:3px;vertical-align:middle;margin-right:4px}
pre{background:#0f1420;color:#e6e9ef;padding:12px 14px;border-radius:6px;overflow-x:auto;font-size:13px;line-height:1.35}
.note{color:var(--muted);font-style:italic}
.answer{border-left:6px solid #2ca02c;background:#eef8ee;padding:12px 16px;border-radius:4px;font-size:17px}
.answer.none{border-color:#d62728;background:#fbeeee}
.warning{border-left:6px solid #e6a700;background:#fff8e1;padding:8px 14px;border-radius:4px}
.ok{color:#2a7d2a;font-weight:600}.fail{color:#b22222;font-weight:600}
";

/// An HTML page under construction.
pub(crate) struct Page {
    body: String,
    title: String,
}

impl Page {
    /// A page titled `title` (plain text).
    pub fn new(title: &str) -> Self {
        Page { body: String::new(), title: title.to_string() }
    }

    /// Appends trusted markup (built here from escaped text).
    pub fn raw(&mut self, html: &str) {
        self.body.push_str(html);
    }

    /// A heading with an anchor `id`.
    pub fn h2(&mut self, id: &str, text: &str) {
        let _ = writeln!(self.body, "<h2 id=\"{}\">{}</h2>", escape(id), escape(text));
    }

    /// A sub-heading.
    pub fn h3(&mut self, text: &str) {
        let _ = writeln!(self.body, "<h3>{}</h3>", escape(text));
    }

    /// A paragraph of plain text with a CSS class (empty for none).
    pub fn p(&mut self, class: &str, text: &str) {
        let _ = writeln!(self.body, "<p class=\"{}\">{}</p>", escape(class), escape(text));
    }

    /// Preformatted text.
    pub fn pre(&mut self, text: &str) {
        let _ = writeln!(self.body, "<pre>{}</pre>", escape(text));
    }

    /// A table; the first `left` columns are left-aligned (names), the rest numbers.
    pub fn table(&mut self, header: &[&str], left: usize, rows: &[Vec<String>]) {
        self.body.push_str("<div class=\"scroll\"><table>\n<thead><tr>");
        for (i, h) in header.iter().enumerate() {
            let class = if i < left { " class=\"l\"" } else { "" };
            let _ = write!(self.body, "<th{class}>{}</th>", escape(h));
        }
        self.body.push_str("</tr></thead>\n<tbody>\n");
        for row in rows {
            self.body.push_str("<tr>");
            for (i, cell) in row.iter().enumerate() {
                let class = if i < left { " class=\"l\"" } else { "" };
                let _ = write!(self.body, "<td{class}>{}</td>", escape(cell));
            }
            self.body.push_str("</tr>\n");
        }
        self.body.push_str("</tbody></table></div>\n");
    }

    /// A two-column key/value table.
    pub fn key_values(&mut self, rows: &[(&str, String)]) {
        self.body.push_str("<table class=\"kv\"><tbody>\n");
        for (k, v) in rows {
            let _ = writeln!(self.body, "<tr><th>{}</th><td class=\"l\">{}</td></tr>", escape(k), escape(v));
        }
        self.body.push_str("</tbody></table>\n");
    }

    /// A chart with a caption, or the caption and `empty` when it has nothing to draw.
    pub fn chart(&mut self, chart: &Chart, caption: &str, empty: &str) {
        self.body.push_str("<figure>\n");
        match chart::render(chart) {
            Some(svg) => {
                self.body.push_str(&svg);
                if chart.lines.len() > chart::MAX_LEGEND {
                    self.body.push_str("<figcaption class=\"legend\">");
                    for (i, l) in chart.lines.iter().enumerate() {
                        let _ = write!(
                            self.body,
                            "<span><i style=\"background:{}\"></i>{}</span>",
                            chart::css_color(i),
                            escape(&l.name)
                        );
                    }
                    self.body.push_str("</figcaption>\n");
                }
            }
            None => {
                let _ =
                    writeln!(self.body, "<p class=\"note\">{}: {}</p>", escape(&chart.title), escape(empty));
            }
        }
        if !caption.is_empty() {
            let _ = writeln!(self.body, "<figcaption>{}</figcaption>", escape(caption));
        }
        self.body.push_str("</figure>\n");
    }

    /// Two narrow charts side by side (a distribution and its tail) under one caption;
    /// `empty` when the first has nothing to draw.
    pub fn chart_pair(&mut self, charts: [&Chart; 2], caption: &str, empty: &str) {
        self.body.push_str("<figure>\n");
        let svgs: Vec<String> = charts.iter().filter_map(|c| chart::render(c)).collect();
        if svgs.is_empty() {
            let _ =
                writeln!(self.body, "<p class=\"note\">{}: {}</p>", escape(&charts[0].title), escape(empty));
        } else {
            self.body.push_str("<div class=\"pair\">\n");
            for svg in &svgs {
                let _ = writeln!(self.body, "<div>{svg}</div>");
            }
            self.body.push_str("</div>\n");
        }
        if !caption.is_empty() {
            let _ = writeln!(self.body, "<figcaption>{}</figcaption>", escape(caption));
        }
        self.body.push_str("</figure>\n");
    }

    /// The whole document.
    pub fn finish(self) -> String {
        format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <title>{}</title>\n<style>\n{CSS}</style>\n</head>\n<body>\n<main>\n{}</main>\n</body>\n</html>\n",
            escape(&self.title),
            self.body
        )
    }
}

/// A navigation bar of in-page links `(anchor id, text)`.
pub(crate) fn nav(links: &[(&str, &str)]) -> String {
    let mut out = String::from("<nav>");
    for (id, text) in links {
        let _ = write!(out, "<a href=\"#{}\">{}</a>", escape(id), escape(text));
    }
    out.push_str("</nav>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_markup_and_quotes() {
        assert_eq!(escape(r#"<a href="x">&'</a>"#), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;");
        assert_eq!(escape("plain 1.5 ms"), "plain 1.5 ms");
    }

    #[test]
    fn page_escapes_every_text() {
        let mut p = Page::new("<title>");
        p.h2("x", "<h>");
        p.p("", "a & b");
        p.pre("<pre>");
        p.table(&["<th>"], 1, &[vec!["<td>".into()]]);
        p.key_values(&[("<k>", "<v>".into())]);
        let html = p.finish();
        for bad in ["<title><", "<h>", "<pre><", "<th><", "<td><", "<k>", "<v>"] {
            assert!(!html.contains(bad), "{bad} unescaped in {html}");
        }
        assert!(html.contains("<title>&lt;title&gt;</title>"));
    }
}
