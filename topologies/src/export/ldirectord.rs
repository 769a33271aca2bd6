//! `ldirectord.cf`: one director's (or fail-over group's) virtual services with their
//! real servers and checks, in ldirectord's grammar (as `read_config` in
//! /usr/sbin/ldirectord 4.12.0 reads it: tests/real_ldirectord.rs runs it on every
//! export).

use std::fmt::Write as _;
use std::net::IpAddr;

use lvs_sched::Duration;
use sim_core::ha::{HealthCheckConfig, OnFailure};

use super::{Group, Target, addr_port, expanded, server, whole_seconds};
use lvs_ipvs::{Forwarding, Protocol};

use crate::{CheckKind, Flag, Service, Topology};

/// `ldirectord.cf` for one director (by name; `None` if there is none). With a
/// fail-over group, every member runs the same file (heartbeat starts ldirectord on the
/// active one).
///
/// The global settings (`checktimeout`, `negotiatetimeout`, `checkinterval`,
/// `failurecount` = retries + 1, `quiescent`) are those of the first service with a check
/// (ldirectord's defaults without one), `autoreload = no`; a service whose check differs
/// repeats the settings that differ in its own section (with `fork = yes`, without which
/// ldirectord ignores a service's own `checkinterval`). Per service: `virtual` (`virtual6`
/// for IPv6), `real`/`real6` lines (`gate`, `masq`, `ipip`, weight, `l:`/`u:` connection
/// thresholds), `fallback`/`fallback6`, `service`/`request`/`receive` for a negotiate
/// check, `scheduler`, `schedflags`, `ops`, `protocol`, `checktype` (`on` without a
/// check: the servers are taken as up), `persistent`, `netmask`. ldirectord takes whole
/// seconds: a fraction is rounded up, with a comment; what it cannot say (SCTP services,
/// keepalived's digest and delay before retry) becomes a comment.
///
/// `failurecount` is ldirectord's retry setting: `_service_down()` counts consecutive
/// failed checks of a real server and takes it out at the `failurecount`-th, as the
/// simulator takes a server down at its `retries + 1`-th failed check (`checkcount`
/// only repeats ping checks and is deprecated).
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
        let _ = writeln!(out, "# {}", group_comment(&g.ha.failover, &g.names(&topo)));
    }
    let global = d
        .services
        .iter()
        .find_map(|s| s.check.as_ref().map(|c| c.config()))
        .unwrap_or_else(HealthCheckConfig::ldirectord);
    out.push('\n');
    settings(&mut out, "", &global, None);
    out.push_str("autoreload = no\n");
    let own_interval =
        d.services.iter().filter_map(|s| s.check.as_ref()).any(|c| c.config().interval != global.interval);
    if own_interval {
        out.push_str(
            "# a service checks at its own checkinterval: ldirectord honours it with fork = yes only\n",
        );
        out.push_str("fork = yes\n");
    }
    for service in &d.services {
        out.push('\n');
        virtual_section(&mut out, &topo, service, &global);
    }
    Some(out)
}

/// The comment naming the group a file is for: `The same file on every member of the
/// heartbeat group (lb1, lb2): heartbeat starts ldirectord on the active one` (VRRP: each
/// member runs it; active-active: each member runs it on its share).
/// `lvsim import` reads the kind and the members back from it.
pub(crate) fn group_comment(f: &crate::Failover, names: &str) -> String {
    let (kind, how) = match f {
        crate::Failover::Heartbeat { .. } => ("heartbeat", "heartbeat starts ldirectord on the active one"),
        crate::Failover::Vrrp { .. } => ("VRRP", "ldirectord runs on each member"),
        crate::Failover::ActiveActive { .. } => ("active-active", "ldirectord runs on each member"),
        crate::Failover::Pulse { .. } => ("pulse", "ldirectord runs on each member"),
    };
    format!("The same file on every member of the {kind} group ({names}): {how}")
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
        lines.push(format!("failurecount = {}", u64::from(c.retries) + 1));
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

/// ldirectord's word for a forwarding method.
pub(crate) fn method(f: Forwarding) -> &'static str {
    match f {
        Forwarding::Masq => "masq",
        Forwarding::Local | Forwarding::DirectRouting => "gate",
        Forwarding::Tunnel => "ipip",
    }
}

/// The start of the comment before an SCTP service's section, which follows commented
/// out (so that the file still says everything, and `lvsim import` reads it back).
pub(crate) const SCTP_MARK: &str = "# SCTP: ldirectord runs TCP, UDP and firewall-mark services only (the ipvsadm script sets this one up); commented out:";

/// The service's `virtual` value (`virtual6` for IPv6: an IPv6 VIP, or a firewall mark
/// whose real servers are IPv6) and its `protocol` word; `None` for a service with
/// neither VIP nor mark.
fn virtual_line(topo: &Topology, service: &Service) -> Option<(String, bool, &'static str)> {
    match (service.fwmark, service.vip) {
        (Some(mark), _) => {
            let v6 = service
                .real_servers
                .iter()
                .filter_map(|rs| server(topo, &rs.server))
                .any(|s| s.address.is_ipv6());
            Some((mark.to_string(), v6, "fwm"))
        }
        (None, Some(vip)) => {
            let protocol = match service.protocol {
                Protocol::Tcp => "tcp",
                Protocol::Udp => "udp",
                Protocol::Sctp => "sctp",
            };
            Some((addr_port(vip, service.port), vip.is_ipv6(), protocol))
        }
        (None, None) => None,
    }
}

/// One `virtual = ...` section (commented out after [`SCTP_MARK`] for SCTP).
fn virtual_section(out: &mut String, topo: &Topology, service: &Service, global: &HealthCheckConfig) {
    let Some((virt, v6, protocol)) = virtual_line(topo, service) else {
        out.push_str("# a service with neither vip nor fwmark is left out\n");
        return;
    };
    if protocol == "sctp" {
        let mut body = String::new();
        section(&mut body, topo, service, global, (&virt, v6, protocol));
        let _ = writeln!(out, "{SCTP_MARK}");
        for l in body.lines() {
            let _ = writeln!(out, "#{l}");
        }
    } else {
        section(out, topo, service, global, (&virt, v6, protocol));
    }
}

/// The lines of a `virtual = ...` section.
fn section(
    out: &mut String,
    topo: &Topology,
    service: &Service,
    global: &HealthCheckConfig,
    (virt, v6, protocol): (&str, bool, &str),
) {
    let six = if v6 { "6" } else { "" };
    let _ = writeln!(out, "virtual{six} = {virt}");
    let t = "\t";
    for rs in &service.real_servers {
        let Some(s) = server(topo, &rs.server) else {
            let _ = writeln!(out, "{t}# real server {:?}: no server of that name", rs.server);
            continue;
        };
        let port = service.real_port(rs);
        let rip = if port == 0 { bracketed(s.address) } else { addr_port(s.address, port) };
        let mut line = format!("{t}real{six} = {rip} {} {}", method(rs.forwarding), rs.weight);
        if rs.lower != 0 {
            let _ = write!(line, " l:{}", rs.lower);
        }
        if rs.upper != 0 {
            let _ = write!(line, " u:{}", rs.upper);
        }
        let _ = writeln!(out, "{line}");
    }
    let check = service.check.as_ref();
    if let Some(fb) = check.and_then(|c| c.fallback.as_ref()) {
        match server(topo, &fb.server) {
            Some(s) => {
                let port = match fb.forwarding {
                    Forwarding::Masq => fb.port.unwrap_or(service.port),
                    _ => service.port,
                };
                let _ = writeln!(
                    out,
                    "{t}fallback{six} = {} {}",
                    addr_port(s.address, port),
                    method(fb.forwarding)
                );
            }
            None => {
                let _ = writeln!(out, "{t}# fallback {:?}: no server of that name", fb.server);
            }
        }
    }
    let checktype = negotiate_lines(out, service);
    let _ = writeln!(out, "{t}scheduler = {}", service.scheduler.name());
    flag_lines(out, service);
    let _ = writeln!(out, "{t}protocol = {protocol}");
    let _ = writeln!(out, "{t}checktype = {checktype}");
    if let Some(c) = check {
        settings(out, t, &c.config(), Some(global));
    }
    if let Some(p) = service.persistence_s {
        let _ = writeln!(out, "{t}persistent = {}", whole_seconds(p));
        if let Some(m) = service.netmask {
            // ldirectord passes `-M` on as written: a dotted mask, or for IPv6 a prefix
            // length (read_config refuses anything else).
            let mask = match m {
                IpAddr::V4(m) => m.to_string(),
                IpAddr::V6(m) => u128::from(m).leading_ones().to_string(),
            };
            let _ = writeln!(out, "{t}netmask = {mask}");
        }
    }
}

/// `[v6]` or `a.b.c.d`: a real server without a port.
fn bracketed(a: IpAddr) -> String {
    match a {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => format!("[{a}]"),
    }
}

/// `service`, `request` and `receive` for a negotiate check; the `checktype` word.
fn negotiate_lines(out: &mut String, service: &Service) -> &'static str {
    let t = "\t";
    match service.check.as_ref().map(|c| &c.kind) {
        None => "on",
        // nanny's send/expect (piranha) has no ldirectord form: a connect check.
        Some(CheckKind::Connect | CheckKind::SendExpect { .. }) => "connect",
        Some(CheckKind::Negotiate { request, receive, digest, .. }) => {
            let svc = if service.port == 443 { "https" } else { "http" };
            let _ = writeln!(out, "{t}service = {svc}");
            let _ = writeln!(out, "{t}request = \"{request}\"");
            match receive {
                // read_config cuts a line at `#`: such a string cannot be written.
                Some(r) if r.contains('#') => {
                    let _ = writeln!(
                        out,
                        "{t}# receive {r:?}: ldirectord cuts a line at '#', so it cannot match this string"
                    );
                }
                Some(r) => {
                    let _ = writeln!(out, "{t}receive = \"{r}\"");
                }
                None => {}
            }
            if let Some(d) = digest {
                let _ = writeln!(out, "{t}# digest {d}: ldirectord matches `receive`, not a digest");
            }
            "negotiate"
        }
    }
}

/// `schedflags` (ipvsadm's `-b` words) and `ops = yes` (one-packet scheduling, which
/// ldirectord passes on for UDP services only).
fn flag_lines(out: &mut String, service: &Service) {
    let t = "\t";
    let words: Vec<&str> = service.flags.iter().filter_map(|f| f.sched_flag()).map(|f| f.name()).collect();
    if !words.is_empty() {
        let _ = writeln!(out, "{t}schedflags = {}", words.join(","));
    }
    if service.flags.contains(&Flag::OnePacket) {
        if service.fwmark.is_none() && service.protocol == Protocol::Udp {
            let _ = writeln!(out, "{t}ops = yes");
        } else {
            let _ = writeln!(out, "{t}# one-packet scheduling: ldirectord sets it for UDP services only");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::tests::everything;

    fn lines(text: &str) -> Vec<&str> {
        text.lines().filter(|l| !l.trim_start().starts_with('#')).collect()
    }

    #[test]
    fn every_option_in_ldirectords_words() {
        let ld = ldirectord(&everything(), "lvs", Target::default()).unwrap();
        let l = lines(&ld);
        for want in [
            "failurecount = 1",
            "virtual = 10.0.1.1:80",
            "\treal = 10.0.0.11:8080 masq 3 l:50 u:100",
            "\treal = 10.9.0.5:80 ipip 1",
            "\tschedflags = sh-fallback,sh-port",
            "\tpersistent = 600",
            "\tnetmask = 255.255.255.0",
            "virtual = 10.0.1.1:53",
            "\tops = yes",
            "\tprotocol = udp",
            "virtual = 7",
            "\treal = 10.0.0.12 masq 1",
            "\tprotocol = fwm",
            "\tschedflags = mh-port",
            "virtual6 = [2001:db8::1]:443",
            "\treal6 = [2001:db8::10]:443 gate 1",
            "\tnetmask = 64",
        ] {
            assert!(l.contains(&want), "missing {want:?} in\n{ld}");
        }
        assert!(!ld.contains("checkcount"), "deprecated, and for ping checks only");
        assert!(!ld.contains("fork"), "one interval: no fork needed\n{ld}");
    }

    #[test]
    fn what_ldirectord_cannot_run_becomes_a_comment() {
        let mut t = everything();
        let s = &mut t.directors[0].services;
        s[0].protocol = Protocol::Sctp;
        s[2].flags.push(Flag::OnePacket);
        s[3].check = Some(crate::HealthCheck {
            kind: CheckKind::Negotiate {
                request: "/".into(),
                receive: Some("a#b".into()),
                digest: None,
                demand_ms: 1.0,
            },
            ..Default::default()
        });
        let ld = ldirectord(&t, "lvs", Target::default()).unwrap();
        assert!(
            ld.contains(&format!(
                "\n{SCTP_MARK}\n#virtual = 10.0.1.1:80\n#\treal = 10.0.0.11:8080 masq 3 l:50 u:100\n"
            )),
            "{ld}"
        );
        assert!(ld.contains("\n#\tprotocol = sctp\n"), "{ld}");
        assert!(!ld.contains("\nvirtual = 10.0.1.1:80"), "{ld}");
        assert!(ld.contains("\t# one-packet scheduling: ldirectord sets it for UDP services only\n"), "{ld}");
        assert!(ld.contains("\t# receive \"a#b\": ldirectord cuts a line at '#'"), "{ld}");
        assert!(!ld.contains("receive = "), "{ld}");
    }
}
