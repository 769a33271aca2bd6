//! Text as people read it: terminal tables, millisecond figures, HTML escaping. Below
//! every other module of the crate (it imports none of them).

use std::fmt::Write as _;

/// A table with a header and a rule, columns sized to their widest cell; the first `left`
/// columns are left-aligned (names), the others right-aligned (numbers).
pub(crate) fn text_table(header: &[&str], left: usize, rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut l = String::new();
        for (i, (cell, w)) in cells.zip(&widths).enumerate() {
            let sep = if i == 0 { "" } else { "  " };
            if i < left {
                let _ = write!(l, "{sep}{cell:<w$}");
            } else {
                let _ = write!(l, "{sep}{cell:>w$}");
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&mut header.iter().copied());
    let rule: Vec<String> = widths.iter().map(|&w| "-".repeat(w)).collect();
    line(&mut rule.iter().map(String::as_str));
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

/// A millisecond figure with three significant decimals for small values.
pub(crate) fn fmt_ms(ms: f64) -> String {
    if ms >= 100.0 { format!("{ms:.1}") } else { format!("{ms:.3}") }
}

/// Escapes text for HTML element content and quoted attribute values.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
