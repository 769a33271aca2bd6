//! `ldirectord.cf`: one director's (or fail-over group's) virtual services with their
//! real servers and checks, in ldirectord's grammar.

use std::fmt::Write as _;

use lvs_sched::Duration;
use sim_core::ha::{HealthCheckConfig, OnFailure};

use super::{Group, Target, addr_port, expanded, server, whole_seconds};
use lvs_ipvs::{Forwarding, Protocol};

use crate::{CheckKind, Service, Topology};

/// `ldirectord.cf` for one director (by name; `None` if there is none). With a
/// fail-over group, every member runs the same file (heartbeat starts ldirectord on the
/// active one).
///
/// The global settings (`checktimeout`, `negotiatetimeout`, `checkinterval`,
/// `checkcount` = retries + 1, `quiescent`) are those of the first service with a check
/// (ldirectord's defaults without one), `autoreload = no`; a service whose check differs
/// repeats the settings that differ in its own section. Per service: `virtual`, `real`
/// lines (`gate`, `masq`, `ipip`, weight), `fallback`, `service`/`request`/`receive` for
/// a negotiate check, `scheduler`, `protocol`, `checktype` (`on` without a check: the
/// servers are taken as up), `persistent`, `netmask`. ldirectord takes whole seconds: a
/// fraction is rounded up, with a comment; what it cannot say (connection thresholds,
/// scheduler flags, keepalived's digest and delay before retry) becomes a comment.
pub fn ldirectord(topo: &Topology, director: &str, target: Target) -> Option<String> {
    let topo = expanded(topo);
    let d = topo.directors.iter().find(|d| d.name == director)?;
    let mut out = target.header("#", "ldirectord.cf", &[]);
    if !topo.description.is_empty() {
        let _ = writeln!(out, "# {}", topo.description);
    }
    let _ = writeln!(out, "# Director {} ({})", d.name, d.address);
    let di = topo.directors.iter().position(|x| x.name == d.name).expect("found above");
    if let Some(g) = Group::of(&topo).filter(|g| g.members.contains(&di)) {
        let _ = writeln!(
            out,
            "# The same file on every member of the fail-over group ({}); heartbeat starts ldirectord on the active one",
            g.names(&topo)
        );
    }
    let global = d
        .services
        .iter()
        .find_map(|s| s.check.as_ref().map(|c| c.config()))
        .unwrap_or_else(HealthCheckConfig::ldirectord);
    out.push('\n');
    settings(&mut out, "", &global, None);
    out.push_str("autoreload = no\n");
    for service in &d.services {
        out.push('\n');
        virtual_section(&mut out, &topo, service, &global);
    }
    Some(out)
}

/// Whole seconds, at least 1, with a note when `d` is not whole.
fn whole(d: Duration, field: &str, notes: &mut Vec<String>) -> u64 {
    let s = d.as_secs_f64();
    let w = whole_seconds(s.ceil());
    if s.fract() != 0.0 || s < 1.0 {
        notes.push(format!("{field}: {s} s rounded up to {w}: ldirectord takes whole seconds"));
    }
    w
}

/// The check settings that differ from `global` (all of them when `global` is `None`),
/// indented by `indent`.
fn settings(out: &mut String, indent: &str, c: &HealthCheckConfig, global: Option<&HealthCheckConfig>) {
    let mut notes = Vec::new();
    let timeout = whole(c.timeout, "timeout", &mut notes);
    let mut lines = Vec::new();
    let differs = |f: &dyn Fn(&HealthCheckConfig) -> Duration| global.is_none_or(|g| f(g) != f(c));
    if differs(&|x| x.timeout) {
        lines.push(format!("checktimeout = {timeout}"));
        lines.push(format!("negotiatetimeout = {timeout}"));
    }
    if differs(&|x| x.interval) {
        lines.push(format!("checkinterval = {}", whole(c.interval, "interval", &mut notes)));
    }
    if global.is_none_or(|g| g.retries != c.retries) {
        lines.push(format!("checkcount = {}", u64::from(c.retries) + 1));
    }
    if global.is_none_or(|g| g.on_failure != c.on_failure) {
        let q = if c.on_failure == OnFailure::Quiesce { "yes" } else { "no" };
        lines.push(format!("quiescent = {q}"));
    }
    if let Some(d) = c.delay_before_retry {
        notes.push(format!(
            "delay_before_retry {} s: ldirectord retries a failed check at the next checkinterval",
            d.as_secs_f64()
        ));
    }
    for n in notes {
        let _ = writeln!(out, "{indent}# {n}");
    }
    for l in lines {
        let _ = writeln!(out, "{indent}{l}");
    }
}

fn method(f: Forwarding) -> &'static str {
    match f {
        Forwarding::Masq => "masq",
        Forwarding::Local | Forwarding::DirectRouting => "gate",
        Forwarding::Tunnel => "ipip",
    }
}

/// One `virtual = ...` section.
fn virtual_section(out: &mut String, topo: &Topology, service: &Service, global: &HealthCheckConfig) {
    let (virt, protocol) = match (service.fwmark, service.vip) {
        (Some(mark), _) => (mark.to_string(), "fwm"),
        (None, Some(vip)) => {
            let protocol = match service.protocol {
                Protocol::Tcp => "tcp",
                Protocol::Udp => "udp",
                Protocol::Sctp => "sctp",
            };
            (addr_port(vip, service.port), protocol)
        }
        (None, None) => {
            out.push_str("# a service with neither vip nor fwmark is left out\n");
            return;
        }
    };
    let _ = writeln!(out, "virtual = {virt}");
    let t = "\t";
    for rs in &service.real_servers {
        let Some(s) = server(topo, &rs.server) else {
            let _ = writeln!(out, "{t}# real server {:?}: no server of that name", rs.server);
            continue;
        };
        let port = service.real_port(rs);
        let rip = if port == 0 { s.address.to_string() } else { addr_port(s.address, port) };
        if rs.upper != 0 || rs.lower != 0 {
            let _ = writeln!(
                out,
                "{t}# connection thresholds -x {} -y {}: ldirectord cannot set them (ipvsadm -e)",
                rs.upper, rs.lower
            );
        }
        let _ = writeln!(out, "{t}real = {rip} {} {}", method(rs.forwarding), rs.weight);
    }
    let check = service.check.as_ref();
    if let Some(fb) = check.and_then(|c| c.fallback.as_ref()) {
        match server(topo, &fb.server) {
            Some(s) => {
                let port = match fb.forwarding {
                    Forwarding::Masq => fb.port.unwrap_or(service.port),
                    _ => service.port,
                };
                let _ =
                    writeln!(out, "{t}fallback = {} {}", addr_port(s.address, port), method(fb.forwarding));
            }
            None => {
                let _ = writeln!(out, "{t}# fallback {:?}: no server of that name", fb.server);
            }
        }
    }
    let checktype = match check.map(|c| &c.kind) {
        None => "on",
        Some(CheckKind::Connect) => "connect",
        Some(CheckKind::Negotiate { request, receive, digest, .. }) => {
            let svc = if service.port == 443 { "https" } else { "http" };
            let _ = writeln!(out, "{t}service = {svc}");
            let _ = writeln!(out, "{t}request = \"{request}\"");
            if let Some(r) = receive {
                let _ = writeln!(out, "{t}receive = \"{r}\"");
            }
            if let Some(d) = digest {
                let _ = writeln!(out, "{t}# digest {d}: ldirectord matches `receive`, not a digest");
            }
            "negotiate"
        }
    };
    let _ = writeln!(out, "{t}scheduler = {}", service.scheduler.name());
    let flags: Vec<&str> = service
        .flags
        .iter()
        .map(|f| f.sched_flag().map_or("one-packet", lvs_ipvs::SchedFlag::name))
        .collect();
    if !flags.is_empty() {
        let _ = writeln!(out, "{t}# flags {}: ldirectord cannot set them (ipvsadm -E)", flags.join(","));
    }
    let _ = writeln!(out, "{t}protocol = {protocol}");
    let _ = writeln!(out, "{t}checktype = {checktype}");
    if let Some(c) = check {
        settings(out, t, &c.config(), Some(global));
    }
    if let Some(p) = service.persistence_s {
        let _ = writeln!(out, "{t}persistent = {}", whole_seconds(p));
    }
    if let Some(m) = service.netmask {
        let _ = writeln!(out, "{t}netmask = {m}");
    }
}
