//! One real server (`/server?rs=RsKeyText`): its row, its last hour of weight and capacity
//! as inline SVG charts (no script needed), its recent changes, and for admins the action
//! forms (drain, maintenance, return, pin, unpin) and the edit form.

use std::fmt::Write as _;

use feedbackd_proto::Time;
use feedbackd_proto::types::{RsKey, RsKeyText};

use super::form::FORWARDING;
use super::html::{self, Esc, Flash, csrf_field};
use super::monitor::{Cells, age};
use crate::console::history::{Point, Series, WINDOW, per_mille};
use crate::console::session::{Role, Session};
use crate::console::snapshot::{ServerRow, Snapshot};

/// The charts' drawing area, in SVG user units.
const W: f64 = 600.0;
const H: f64 = 140.0;
/// Margins for the axis labels.
const LEFT: f64 = 48.0;
const BOTTOM: f64 = 20.0;

/// The server page; `None` when the master does not know the server.
pub fn page(
    snap: &Snapshot,
    key: &RsKey,
    series: Option<&Series>,
    session: &Session,
    flash: Option<&Flash>,
) -> Option<String> {
    let row = snap.row(key)?;
    let text = RsKeyText(*key).to_string();
    let mut out = String::with_capacity(16 * 1024);
    html::open(&mut out, &format!("Real server {text}"), "server", session, flash);
    details(&mut out, snap.at, row);
    // The samples, then the value now (a change since the last sample shows at once).
    let mut series = series.cloned().unwrap_or_default();
    let capacity = row.status.capacity.map(per_mille);
    series.points.push_back(Point::new(snap.at, row.status.weight, capacity));
    let series = &series;
    out.push_str("<h2>The last hour</h2>\n");
    chart(&mut out, "chart-weight", "Weight", &weight_points(series), snap.at);
    chart(&mut out, "chart-capacity", "Capacity (%)", &capacity_points(series), snap.at);
    changes(&mut out, snap, key);
    if session.role == Role::Admin {
        forms(&mut out, session, row, &text);
    }
    html::close(&mut out);
    Some(out)
}

fn details(out: &mut String, at: Time, row: &ServerRow) {
    let c = Cells::of(row);
    let k = row.kernel.as_ref();
    let _ = writeln!(
        out,
        "<table id=\"server\" class=\"details\"><tbody>\
         <tr><th>Weight</th><td class=\"weight\">{}</td></tr>\
         <tr><th>State</th><td class=\"state\">{}</td></tr>\
         <tr><th>Pinned weight</th><td class=\"pinned\">{}</td></tr>\
         <tr><th>Agent</th><td class=\"agent\">{}</td></tr>\
         <tr><th>Capacity</th><td class=\"capacity\">{}</td></tr>\
         <tr><th>Report age</th><td class=\"age\">{}</td></tr>\
         <tr><th>Forwarding</th><td>{}</td></tr>\
         <tr><th>ActiveConn / InActConn</th><td>{} / {}</td></tr>\
         <tr><th>Thresholds (upper / lower)</th><td>{} / {}</td></tr>\
         <tr><th>Rates (kernel)</th><td class=\"rates\">{}</td></tr>\
         <tr><th>Since added (kernel)</th><td class=\"stats\">{}</td></tr>\
         </tbody></table>",
        c.weight,
        c.state,
        row.status.pinned.map_or("-".to_owned(), |w| w.to_string()),
        Esc(&c.agent),
        c.capacity,
        age(at, row.reported_at),
        row.status.forwarding.ipvsadm_name(),
        c.active,
        c.inactive,
        k.map_or("-".to_owned(), |k| k.config.u_threshold.to_string()),
        k.map_or("-".to_owned(), |k| k.config.l_threshold.to_string()),
        k.map_or("-".to_owned(), |k| {
            let r = k.rates;
            format!(
                "{} conn/s; in {} packets/s, {} B/s; out {} packets/s, {} B/s",
                r.cps, r.inpps, r.inbps, r.outpps, r.outbps
            )
        }),
        k.map_or("-".to_owned(), |k| {
            let s = k.stats;
            format!(
                "{} connections; in {} packets, {} B; out {} packets, {} B",
                s.conns, s.inpkts, s.inbytes, s.outpkts, s.outbytes
            )
        }),
    );
}

/// The weight as a step function: (time, value) pairs.
pub fn weight_points(s: &Series) -> Vec<(Time, Option<f64>)> {
    s.points.iter().map(|p| (p.at(), Some(f64::from(p.weight)))).collect()
}

/// The capacity [%] as a step function; `None` where no agent reported one.
pub fn capacity_points(s: &Series) -> Vec<(Time, Option<f64>)> {
    s.points.iter().map(|p| (p.at(), p.capacity.map(|c| f64::from(c) / 10.0))).collect()
}

/// The polylines of a step function over the hour before `now`, in chart coordinates, and
/// the top of the scale; a `None` value breaks the line.
pub fn polylines(points: &[(Time, Option<f64>)], now: Time) -> (Vec<String>, f64) {
    let max = points.iter().filter_map(|p| p.1).fold(0.0_f64, f64::max);
    let top = if max <= 0.0 { 1.0 } else { max };
    // By age: now at the right edge, an hour ago (or earlier) at the left.
    let x = |t: Time| {
        let age = now.saturating_since(t).as_nanos().min(WINDOW.as_nanos());
        LEFT + (W - LEFT) * (1.0 - age as f64 / WINDOW.as_nanos() as f64)
    };
    let y = |v: f64| (H - BOTTOM) - (H - BOTTOM - 4.0) * (v / top);
    let mut lines = Vec::new();
    let mut cur = String::new();
    for (i, (t, v)) in points.iter().enumerate() {
        let end = points.get(i + 1).map_or(now, |n| n.0);
        match v {
            Some(v) => {
                let _ = write!(cur, "{:.1},{:.1} {:.1},{:.1} ", x(*t), y(*v), x(end), y(*v));
            }
            None if !cur.is_empty() => lines.push(std::mem::take(&mut cur).trim_end().to_owned()),
            None => {}
        }
    }
    if !cur.is_empty() {
        lines.push(cur.trim_end().to_owned());
    }
    (lines, top)
}

fn chart(out: &mut String, id: &str, label: &str, points: &[(Time, Option<f64>)], now: Time) {
    let (lines, top) = polylines(points, now);
    let _ = write!(
        out,
        "<figure><figcaption>{label}</figcaption>\
         <svg class=\"chart\" id=\"{id}\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"{label} over the last hour\">\
         <line class=\"axis\" x1=\"{LEFT}\" y1=\"{b}\" x2=\"{W}\" y2=\"{b}\"/>\
         <line class=\"axis\" x1=\"{LEFT}\" y1=\"4\" x2=\"{LEFT}\" y2=\"{b}\"/>\
         <text x=\"{lx}\" y=\"12\" text-anchor=\"end\">{top}</text>\
         <text x=\"{lx}\" y=\"{b}\" text-anchor=\"end\">0</text>\
         <text x=\"{LEFT}\" y=\"{H}\">-60 min</text><text x=\"{W}\" y=\"{H}\" text-anchor=\"end\">now</text>",
        b = H - BOTTOM,
        lx = LEFT - 4.0,
        top = (top * 10.0).round() / 10.0,
    );
    for l in &lines {
        let _ = write!(out, "<polyline points=\"{l}\"/>");
    }
    if lines.is_empty() {
        let _ = write!(out, "<text x=\"{}\" y=\"{}\">no data yet</text>", (LEFT + W) / 2.0, H / 2.0);
    }
    out.push_str("</svg></figure>\n");
}

fn changes(out: &mut String, snap: &Snapshot, key: &RsKey) {
    out.push_str("<h2>Recent changes</h2>\n<ul class=\"changes\">");
    let mut any = false;
    for c in snap.changes.iter().rev().filter(|c| c.key == *key).take(20) {
        any = true;
        let _ = write!(
            out,
            "<li>{} ago: {} (agent {}: {})</li>",
            age(snap.at, Some(c.at)),
            super::views::change_what(c),
            Esc(&c.agent),
            Esc(&c.why)
        );
    }
    if !any {
        out.push_str("<li>none remembered</li>");
    }
    out.push_str("</ul>\n");
}

fn forms(out: &mut String, session: &Session, row: &ServerRow, rs: &str) {
    let csrf = csrf_field(session);
    let rs = Esc(rs);
    out.push_str("<h2>Actions</h2>\n<div class=\"actions\">");
    for (action, label) in
        [("drain", "Drain"), ("maintenance", "Maintenance"), ("return", "Return"), ("unpin", "Unpin")]
    {
        let _ = write!(
            out,
            "<form class=\"action\" data-action=\"{action}\" method=\"post\" action=\"/server/action\">{csrf}\
             <input type=\"hidden\" name=\"rs\" value=\"{rs}\"><input type=\"hidden\" name=\"action\" value=\"{action}\">\
             <button type=\"submit\">{label}</button></form>"
        );
    }
    let _ = writeln!(
        out,
        "<form class=\"action\" data-action=\"pin\" method=\"post\" action=\"/server/action\">{csrf}\
         <input type=\"hidden\" name=\"rs\" value=\"{rs}\"><input type=\"hidden\" name=\"action\" value=\"pin\">\
         <label>Weight <input name=\"weight\" type=\"number\" min=\"0\" max=\"65535\" required value=\"{}\"></label>\
         <button type=\"submit\">Pin</button></form></div>",
        row.status.weight
    );
    let (fwd, u, l) = row.kernel.map_or((row.status.forwarding, 0, 0), |k| {
        (k.config.fwd, k.config.u_threshold, k.config.l_threshold)
    });
    let _ = write!(
        out,
        "<h2>Settings</h2>\n<form id=\"server-edit\" method=\"post\" action=\"/server/edit\">{csrf}\
         <input type=\"hidden\" name=\"rs\" value=\"{rs}\"><label>Forwarding <select name=\"forwarding\">"
    );
    for (name, switch, label) in FORWARDING {
        let sel = if fwd.ipvsadm_switch() == switch { " selected" } else { "" };
        let _ = write!(out, "<option value=\"{name}\"{sel}>{label}</option>");
    }
    let _ = writeln!(
        out,
        "</select></label> <label>Upper threshold <input name=\"u_threshold\" type=\"number\" min=\"0\" value=\"{u}\"></label> \
         <label>Lower threshold <input name=\"l_threshold\" type=\"number\" min=\"0\" value=\"{l}\"></label> \
         <button type=\"submit\">Save</button></form>"
    );
}
