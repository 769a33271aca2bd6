//! The monitor (`/`): every virtual service and its real servers with the kernel's counts,
//! and its live updates (`/api/snapshot?since=VERSION`, polled by console.js: only the rows
//! changed since the page's version).
//!
//! A row's cells are formatted here once ([`Cells`]) for both the page and the JSON, so the
//! page and its updates never disagree.

use std::fmt::Write as _;

use feedbackd_proto::Time;
use feedbackd_proto::master::{Hold, Liveness};
use feedbackd_proto::types::{AdminState, RsKeyText, ServiceText};
use lvs_ipvs::{AddrPort, ServiceConfig, SvcFlags};

use super::html::{self, Esc, Flash, QueryEnc};
use crate::console::session::Session;
use crate::console::snapshot::{ServerRow, ServiceEntry, Snapshot};

/// What a server's row shows, as text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cells {
    /// The weight.
    pub weight: String,
    /// ActiveConn.
    pub active: String,
    /// InActConn.
    pub inactive: String,
    /// Connections per second (the kernel's rate estimator).
    pub cps: String,
    /// The agent's id, or `-`.
    pub agent: String,
    /// The state word ([`state`]).
    pub state: &'static str,
    /// The reported capacity as a percentage, or `-`.
    pub capacity: String,
}

impl Cells {
    /// The cells of `row`.
    pub fn of(row: &ServerRow) -> Cells {
        let s = &row.status;
        let k = row.kernel.as_ref();
        Cells {
            weight: s.weight.to_string(),
            active: k.map_or("-".to_owned(), |k| k.active_conns.to_string()),
            inactive: k.map_or("-".to_owned(), |k| k.inactive_conns.to_string()),
            cps: cps(row),
            agent: s.agent.clone().unwrap_or_else(|| "-".to_owned()),
            state: state(row),
            capacity: s.capacity.map_or("-".to_owned(), |c| format!("{:.1}%", c * 100.0)),
        }
    }
}

/// The kernel's connection rate for the row (its 2-second estimator), `-` when the kernel
/// does not list the server.
fn cps(row: &ServerRow) -> String {
    row.kernel.map_or("-".to_owned(), |k| k.rates.cps.to_string())
}

/// A row's state word, the most telling first: the operator's hold (`maintenance`,
/// `drain`), `pending` (not in the kernel's table yet), the agent's silence (`quiesced`,
/// `left`) or admin state (`agent-drain`, `agent-maint`), the operator's pin (`pinned`),
/// else `adopted` (no agent) or `live`.
pub fn state(row: &ServerRow) -> &'static str {
    let s = &row.status;
    match (s.hold, s.in_table, s.liveness, s.admin) {
        (Some(Hold::Maintenance), ..) => "maintenance",
        (Some(Hold::Drain), ..) => "drain",
        (None, false, ..) => "pending",
        (None, true, Some(Liveness::Quiesced), _) => "quiesced",
        (None, true, Some(Liveness::Left), _) => "left",
        (None, true, Some(Liveness::Live), Some(AdminState::Drain)) => "agent-drain",
        (None, true, Some(Liveness::Live), Some(AdminState::Maint)) => "agent-maint",
        _ if s.pinned.is_some() => "pinned",
        (None, true, None, _) => "adopted",
        (None, true, Some(Liveness::Live), _) => "live",
    }
}

/// A report's age as shown (`2.4s`), from the snapshot's time.
pub fn age(at: Time, reported_at: Option<Time>) -> String {
    reported_at.map_or("-".to_owned(), |r| format!("{:.1}s", at.saturating_since(r).as_secs_f64()))
}

/// Milliseconds on the daemon's clock (what the page's script computes ages from).
pub fn ms(t: Time) -> u64 {
    t.as_nanos() / 1_000_000
}

/// A service's settings in a few words: `wlc`, `sh sh-port persistent 300s /24`.
pub fn service_summary(row: &ServiceEntry) -> String {
    let Some(c) = row.config else { return "(not in the kernel's table)".to_owned() };
    config_summary(&c)
}

/// [`service_summary`] of a configuration.
pub fn config_summary(c: &ServiceConfig) -> String {
    let mut out = c.scheduler.name().to_owned();
    for f in c.flags.sched_flags(c.scheduler) {
        let _ = write!(out, " {f}");
    }
    if c.flags.has(SvcFlags::ONEPACKET) {
        out.push_str(" one-packet");
    }
    if let Some(p) = c.persistence {
        let _ = write!(out, " persistent {}s", p.as_nanos() / 1_000_000_000);
        let _ = write!(out, " netmask {}", netmask(c));
    }
    out
}

/// The persistence netmask as ipvsadm writes it (dotted for IPv4, a prefix for IPv6).
pub fn netmask(c: &ServiceConfig) -> String {
    if c.netmask <= 128 { c.netmask.to_string() } else { std::net::Ipv4Addr::from(c.netmask).to_string() }
}

/// The monitor page.
pub fn page(snap: &Snapshot, session: &Session, flash: Option<&Flash>) -> String {
    let mut out = String::with_capacity(4096 + snap.rows.len() * 420);
    html::open(&mut out, "Monitor", "monitor", session, flash);
    let connected = snap.agents.iter().filter(|a| a.connected).count();
    let _ = writeln!(
        out,
        "<p class=\"summary\">{} virtual services, {} real servers, {} agents ({connected} connected). \
         <span id=\"updated\" data-state=\"ok\">live</span></p>",
        snap.services.len(),
        snap.rows.len(),
        snap.agents.len(),
    );
    let _ = writeln!(
        out,
        "<div id=\"monitor\" data-version=\"{}\" data-layout=\"{}\" data-at=\"{}\" data-count=\"{}\">",
        snap.version,
        snap.layout,
        ms(snap.at),
        snap.rows.len()
    );
    let mut rows = snap.rows.iter().peekable();
    for svc in &snap.services {
        service_open(&mut out, svc);
        while let Some(r) = rows.next_if(|r| r.status.key.service == svc.key) {
            server_row(&mut out, snap.at, r);
        }
        out.push_str("</tbody></table></section>\n");
    }
    out.push_str("</div>\n");
    html::close(&mut out);
    out
}

fn service_open(out: &mut String, svc: &ServiceEntry) {
    let text = ServiceText(svc.key).to_string();
    let _ = writeln!(
        out,
        "<section class=\"service\" data-service=\"{}\"><h2>{}</h2>\
         <p class=\"settings\">{}</p>\
         <table class=\"servers\"><thead><tr><th>Real server</th><th>Forward</th><th>Weight</th>\
         <th>ActiveConn</th><th>InActConn</th><th>Conn/s</th><th>Agent</th><th>State</th>\
         <th>Capacity</th><th>Report age</th></tr></thead><tbody>",
        Esc(&text),
        Esc(&svc.key.to_string()),
        Esc(&service_summary(svc)),
    );
}

fn server_row(out: &mut String, at: Time, r: &ServerRow) {
    let key = RsKeyText(r.status.key).to_string();
    let c = Cells::of(r);
    let _ = writeln!(
        out,
        "<tr data-rs=\"{k}\" data-state=\"{st}\"><td><a href=\"/server?rs={u}\">{addr}</a></td>\
         <td>{fwd}</td><td class=\"weight\">{w}</td><td class=\"active\">{a}</td>\
         <td class=\"inactive\">{i}</td><td class=\"cps\">{cps}</td><td class=\"agent\">{ag}</td>\
         <td class=\"state\">{st}</td><td class=\"capacity\">{cap}</td><td class=\"age\">{age}</td></tr>",
        k = Esc(&key),
        st = c.state,
        u = QueryEnc(&key),
        addr = AddrPort(r.status.key.addr, r.status.key.port),
        fwd = r.status.forwarding.ipvsadm_name(),
        w = c.weight,
        a = c.active,
        i = c.inactive,
        cps = c.cps,
        ag = Esc(&c.agent),
        cap = c.capacity,
        age = age(at, r.reported_at),
    );
}

/// `/api/snapshot?since=V`: `None` (204) when the page is current, else the rows changed
/// since `since` (all of them when `since` is not a version of this snapshot's past) and
/// every row's report age, in the page's row order:
/// `{"version","layout","at","count","rows":[[rs, weight, active, inactive, cps, agent,
/// state, capacity], ...],"ages":[deciseconds|null, ...]}`.
pub fn updates(snap: &Snapshot, since: u64) -> Option<String> {
    if since == snap.version {
        return None;
    }
    let all = since > snap.version;
    let mut out = String::with_capacity(128 + snap.rows.len() * 6);
    let _ = write!(
        out,
        "{{\"version\":{},\"layout\":{},\"at\":{},\"count\":{},\"rows\":[",
        snap.version,
        snap.layout,
        ms(snap.at),
        snap.rows.len()
    );
    let mut first = true;
    for r in snap.rows.iter().filter(|r| all || r.changed > since) {
        let c = Cells::of(r);
        let key = RsKeyText(r.status.key).to_string();
        let _ = write!(
            out,
            "{}[{},{},{},{},{},{},\"{}\",{}]",
            if first { "" } else { "," },
            json_str(&key),
            json_str(&c.weight),
            json_str(&c.active),
            json_str(&c.inactive),
            json_str(&c.cps),
            json_str(&c.agent),
            c.state,
            json_str(&c.capacity),
        );
        first = false;
    }
    out.push_str("],\"ages\":[");
    for (i, r) in snap.rows.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match r.reported_at {
            Some(t) => {
                let _ =
                    write!(out, "{}", (snap.at.saturating_since(t).as_nanos() + 50_000_000) / 100_000_000);
            }
            None => out.push_str("null"),
        }
    }
    out.push_str("]}");
    Some(out)
}

/// A JSON string literal.
fn json_str(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}
