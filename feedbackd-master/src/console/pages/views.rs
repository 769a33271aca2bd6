//! The read-only pages: agents (`/agents`), recent weight changes (`/changes`) and the
//! audit log (`/audit`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::SystemTime;

use feedbackd_proto::Time;
use feedbackd_proto::types::{AdminState, RsKeyText};

use super::html::{self, Esc, Flash, QueryEnc};
use super::monitor::age;
use crate::console::history::WeightChange;
use crate::console::session::Session;
use crate::console::snapshot::Snapshot;

/// The agents page.
pub fn agents(snap: &Snapshot, session: &Session, flash: Option<&Flash>) -> String {
    let mut out = String::with_capacity(2048 + snap.agents.len() * 300);
    html::open(&mut out, "Agents", "agents", session, flash);
    // Each agent's capacities, from the servers it claims.
    let mut capacity: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for r in &snap.rows {
        if let (Some(a), Some(c)) = (&r.status.agent, r.status.capacity) {
            let v = capacity.entry(a.as_str()).or_default();
            let c = format!("{:.1}%", c * 100.0);
            if !v.contains(&c) && v.len() < 8 {
                v.push(c);
            }
        }
    }
    out.push_str(
        "<table id=\"agents\"><thead><tr><th>Agent</th><th>Address</th><th>State</th><th>Capacity</th>\
         <th>Metrics</th><th>Reports</th><th>Interval</th><th>Report age</th></tr></thead><tbody>\n",
    );
    for a in &snap.agents {
        let state = match (a.connected, a.admin) {
            (false, _) => format!("{} (disconnected)", a.liveness),
            (true, AdminState::Ready) => a.liveness.to_string(),
            (true, admin) => format!("{}/{admin}", a.liveness),
        };
        let mut metrics = String::new();
        for m in &a.metrics {
            let _ = write!(metrics, "<span class=\"metric\">{}={}</span> ", Esc(&m.name), m.value);
        }
        let caps = capacity.get(a.id.as_str()).map_or("-".to_owned(), |v| v.join(" "));
        let reported = Time(snap.at.as_nanos().saturating_sub(a.report_age.as_nanos()));
        let _ = writeln!(
            out,
            "<tr data-agent=\"{id}\"><td class=\"id\">{id}</td><td class=\"peer\">{}</td><td class=\"state\">{}</td>\
             <td class=\"capacity\">{caps}</td><td class=\"metrics\">{}</td><td class=\"reports\">{}</td>\
             <td class=\"interval\">{} ms</td><td class=\"age\">{}</td></tr>",
            a.peer,
            Esc(&state),
            metrics.trim_end(),
            a.reports,
            a.interval_ms,
            age(snap.at, Some(reported)),
            id = Esc(&a.id),
        );
    }
    if snap.agents.is_empty() {
        out.push_str("<tr><td colspan=\"8\">no agent yet</td></tr>\n");
    }
    out.push_str("</tbody></table>\n");
    html::close(&mut out);
    out
}

/// What a change did, in words: `100 → 80`, `added at 5`, `removed`.
pub fn change_what(c: &WeightChange) -> String {
    match (c.from, c.to) {
        (Some(f), Some(t)) => format!("{f} → {t}"),
        (None, Some(t)) => format!("added at {t}"),
        (_, None) => "removed".to_owned(),
    }
}

/// The time of day (UTC) of a time on the daemon's clock, from the snapshot's time and
/// the wall clock now: `14:02:11`.
fn time_of_day(snap_at: Time, t: Time, wall: SystemTime) -> String {
    let since = std::time::Duration::from_nanos(snap_at.saturating_since(t).as_nanos());
    let secs = wall.checked_sub(since).and_then(|w| w.duration_since(SystemTime::UNIX_EPOCH).ok());
    secs.map_or("-".to_owned(), |d| {
        let s = d.as_secs() % 86_400;
        format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    })
}

/// The recent changes page, newest first.
pub fn changes(snap: &Snapshot, session: &Session, flash: Option<&Flash>, wall: SystemTime) -> String {
    let mut out = String::with_capacity(2048 + snap.changes.len() * 300);
    html::open(&mut out, "Recent weight changes", "changes", session, flash);
    out.push_str(
        "<table id=\"changes\"><thead><tr><th>Time (UTC)</th><th>Real server</th><th>From</th><th>To</th>\
         <th>Agent</th><th>Why</th></tr></thead><tbody>\n",
    );
    for c in snap.changes.iter().rev() {
        let rs = RsKeyText(c.key).to_string();
        let opt = |v: Option<u32>| v.map_or("-".to_owned(), |v| v.to_string());
        let _ = writeln!(
            out,
            "<tr data-rs=\"{}\"><td class=\"time\" title=\"{} ago\">{}</td><td class=\"rs\"><a href=\"/server?rs={}\">{}</a></td>\
             <td class=\"from\">{}</td><td class=\"to\">{}</td><td class=\"agent\">{}</td><td class=\"why\">{}</td></tr>",
            Esc(&rs),
            age(snap.at, Some(c.at)),
            time_of_day(snap.at, c.at, wall),
            QueryEnc(&rs),
            Esc(&rs),
            opt(c.from),
            opt(c.to),
            Esc(&c.agent),
            Esc(&c.why),
        );
    }
    if snap.changes.is_empty() {
        out.push_str("<tr><td colspan=\"6\">no change yet</td></tr>\n");
    }
    out.push_str("</tbody></table>\n");
    html::close(&mut out);
    out
}

/// The audit fields shown, in order (wt-https's `AuditEntry`).
pub const AUDIT_FIELDS: [&str; 6] = ["time", "user", "role", "address", "change", "result"];

/// The audit page: the log's last entries (oldest first, each its [`AUDIT_FIELDS`]),
/// shown newest first.
pub fn audit(entries: Result<Vec<[String; 6]>, String>, session: &Session, flash: Option<&Flash>) -> String {
    let mut out = String::with_capacity(4096);
    html::open(&mut out, "Audit log", "audit", session, flash);
    let entries = match entries {
        Ok(l) => l,
        Err(e) => {
            let _ = writeln!(out, "<p class=\"error\">The audit log cannot be read: {}</p>", Esc(&e));
            Vec::new()
        }
    };
    out.push_str("<table id=\"audit\"><thead><tr>");
    for f in AUDIT_FIELDS {
        let _ = write!(out, "<th>{f}</th>");
    }
    out.push_str("</tr></thead><tbody>\n");
    for e in entries.iter().rev() {
        out.push_str("<tr class=\"entry\">");
        for (f, v) in AUDIT_FIELDS.iter().zip(e) {
            let _ = write!(out, "<td class=\"{f}\">{}</td>", Esc(v));
        }
        out.push_str("</tr>\n");
    }
    if entries.is_empty() {
        let _ = writeln!(out, "<tr><td colspan=\"{}\">no entry</td></tr>", AUDIT_FIELDS.len());
    }
    out.push_str("</tbody></table>\n");
    html::close(&mut out);
    out
}
