//! The virtual services (`/services`): their settings, and for admins the forms to add,
//! edit or remove one (`ipvsadm -A/-E/-D`, as piranha's tool allowed).

use std::fmt::Write as _;

use feedbackd_proto::types::ServiceText;
use lvs_ipvs::{SchedulerKind, ServiceConfig, SvcFlags};

use super::form::Form;
use super::html::{self, Esc, Flash, csrf_field};
use super::monitor::{netmask, service_summary};
use crate::console::session::{Role, Session};
use crate::console::snapshot::Snapshot;

/// The services page; `submitted` refills the add form after a refusal.
pub fn page(snap: &Snapshot, session: &Session, flash: Option<&Flash>, submitted: Option<&Form>) -> String {
    let mut out = String::with_capacity(4096 + snap.services.len() * 1500);
    html::open(&mut out, "Virtual services", "services", session, flash);
    let admin = session.role == Role::Admin;
    out.push_str("<table id=\"services\"><thead><tr><th>Service</th><th>Settings</th><th>Real servers</th><th>ActiveConn</th><th>Conn/s</th>");
    out.push_str(if admin { "<th>Change</th></tr></thead><tbody>\n" } else { "</tr></thead><tbody>\n" });
    for s in &snap.services {
        let text = ServiceText(s.key).to_string();
        let rows = snap.rows.iter().filter(|r| r.status.key.service == s.key);
        let (n, active, cps) = rows.fold((0, 0u64, 0u64), |(n, a, c), r| {
            let k = r.kernel.as_ref();
            (n + 1, a + k.map_or(0, |k| u64::from(k.active_conns)), c + k.map_or(0, |k| k.rates.cps))
        });
        let _ = write!(
            out,
            "<tr data-service=\"{t}\"><td class=\"service\">{}</td><td class=\"settings\">{}</td>\
             <td class=\"servers\">{n}</td><td class=\"active\">{active}</td><td class=\"cps\">{cps}</td>",
            Esc(&s.key.to_string()),
            Esc(&service_summary(s)),
            t = Esc(&text),
        );
        if admin {
            out.push_str("<td>");
            if let Some(c) = &s.config {
                edit_form(&mut out, session, &text, c);
            }
            remove_form(&mut out, session, &text);
            out.push_str("</td>");
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table>\n");
    if admin {
        add_form(&mut out, session, submitted);
    }
    html::close(&mut out);
    out
}

/// The fields common to add and edit, filled with `v(name)`.
fn fields(out: &mut String, v: &dyn Fn(&str) -> String) {
    let sched = v("scheduler");
    out.push_str("<label>Scheduler <select name=\"scheduler\">");
    for k in SchedulerKind::ALL {
        let sel = if k.name() == sched { " selected" } else { "" };
        let _ = write!(out, "<option value=\"{0}\"{sel}>{0}</option>", k.name());
    }
    let _ = write!(
        out,
        "</select></label> <label>Persistence (s) <input name=\"persistence\" type=\"number\" min=\"1\" \
         placeholder=\"none\" value=\"{}\"></label> <label>Netmask <input name=\"netmask\" size=\"15\" \
         placeholder=\"255.255.255.255\" value=\"{}\"></label> <label>Flags <input name=\"flags\" size=\"20\" \
         placeholder=\"sh-port,one-packet\" value=\"{}\"></label> ",
        Esc(&v("persistence")),
        Esc(&v("netmask")),
        Esc(&v("flags")),
    );
}

fn edit_form(out: &mut String, session: &Session, text: &str, c: &ServiceConfig) {
    let mut flags: Vec<String> = c.flags.sched_flags(c.scheduler).map(|f| f.name().to_owned()).collect();
    if c.flags.has(SvcFlags::ONEPACKET) {
        flags.push("one-packet".to_owned());
    }
    let persistent = c.persistence.is_some();
    let value = |name: &str| match name {
        "scheduler" => c.scheduler.name().to_owned(),
        "persistence" => c.persistence.map_or(String::new(), |p| (p.as_nanos() / 1_000_000_000).to_string()),
        "netmask" if persistent => netmask(c),
        "flags" => flags.join(","),
        _ => String::new(),
    };
    let _ = write!(
        out,
        "<form class=\"service-edit\" data-service=\"{t}\" method=\"post\" action=\"/service/edit\">{}\
         <input type=\"hidden\" name=\"service\" value=\"{t}\">",
        csrf_field(session),
        t = Esc(text),
    );
    fields(out, &value);
    out.push_str("<button type=\"submit\">Save</button></form>");
}

fn remove_form(out: &mut String, session: &Session, text: &str) {
    let _ = write!(
        out,
        "<form class=\"service-remove\" data-service=\"{t}\" method=\"post\" action=\"/service/remove\">{}\
         <input type=\"hidden\" name=\"service\" value=\"{t}\">\
         <label><input type=\"checkbox\" name=\"confirm\" value=\"yes\" required> with its real servers</label> \
         <button type=\"submit\">Remove</button></form>",
        csrf_field(session),
        t = Esc(text),
    );
}

fn add_form(out: &mut String, session: &Session, submitted: Option<&Form>) {
    let value = |name: &str| submitted.and_then(|f| f.get(name)).unwrap_or("").to_owned();
    let value_or_wlc = |name: &str| match value(name) {
        s if s.is_empty() && name == "scheduler" => "wlc".to_owned(),
        s => s,
    };
    let _ = write!(
        out,
        "<h2>Add a virtual service</h2>\n<form id=\"service-add\" method=\"post\" action=\"/service/add\">{}\
         <label>Service <input name=\"service\" size=\"28\" required placeholder=\"tcp:10.0.0.1:80 or fwm:1\" value=\"{}\"></label> ",
        csrf_field(session),
        Esc(&value("service")),
    );
    fields(out, &value_or_wlc);
    out.push_str("<button type=\"submit\">Add</button></form>\n");
}
